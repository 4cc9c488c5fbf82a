import Foundation
import Recordings
import Testing

@Suite("The recordings folder as the web app lists it")
struct RecordingCatalogTests {
    /// A folder with reports as the gateway writes them (and a few it never would).
    static func folder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vcall-catalog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        func add(_ name: String, participant: String, start: TimeInterval, accounts: [String]?, repaired: Bool? = nil, file: String? = nil) throws {
            let webm = folder.appendingPathComponent(name)
            try Data(repeating: 1, count: 1000).write(to: webm)
            var report = RecordingReport(participantID: participant, displayName: participant == "composite" ? "composite" : "Ada",
                                         room: "standup", file: file ?? name, start: Date(timeIntervalSince1970: start),
                                         end: Date(timeIntervalSince1970: start + 10), duration: 10, videoCodec: "VP8", audioCodec: "OPUS",
                                         videoFrames: 300, keyframes: 4, audioPackets: 500, videoGaps: [], bytes: 1000,
                                         finalizedCleanly: repaired != nil || participant == "composite", error: nil, accounts: accounts)
            report.repaired = repaired
            try report.write(beside: webm)
        }
        try add("standup-Ada-1.webm", participant: "p1", start: 100, accounts: ["ada", "bob"])
        try add("standup-composite-2.webm", participant: "composite", start: 200, accounts: ["ada"])
        // Cut off, then repaired: listed once, as the repaired copy.
        try add("standup-Ada-3.webm", participant: "p1", start: 300, accounts: ["ada"])
        try add("standup-Ada-3.repaired.webm", participant: "p1", start: 300, accounts: ["ada"], repaired: true)
        // Recorded while only guests were there: admins only.
        try add("standup-guest-4.webm", participant: "p2", start: 400, accounts: nil)
        // A report that names a file elsewhere is not believed.
        try add("standup-evil-5.webm", participant: "p3", start: 500, accounts: ["ada"], file: "../vcall-data/vcall.sqlite")
        // A report whose file is gone is not listed.
        try add("standup-gone-6.webm", participant: "p4", start: 600, accounts: ["ada"])
        try FileManager.default.removeItem(at: folder.appendingPathComponent("standup-gone-6.webm"))
        try Data("not json".utf8).write(to: folder.appendingPathComponent("broken.json"))
        return folder
    }

    @Test("an account sees the recordings of rooms it was in, newest first; an admin sees all")
    func visibility() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let catalog = RecordingCatalog(directory: folder)
        let ada = RecordingViewer(username: "Ada", isAdmin: false)   // usernames compare without case
        #expect(catalog.entries(visibleTo: ada).map(\.file) == [
            "standup-Ada-3.repaired.webm", "standup-composite-2.webm", "standup-Ada-1.webm",
        ])
        #expect(catalog.entries(visibleTo: RecordingViewer(username: "bob", isAdmin: false)).map(\.file) == ["standup-Ada-1.webm"])
        #expect(catalog.entries(visibleTo: RecordingViewer(username: "carol", isAdmin: false)).isEmpty)
        #expect(catalog.entries(visibleTo: RecordingViewer(username: "carol", isAdmin: true)).map(\.file) == [
            "standup-guest-4.webm", "standup-Ada-3.repaired.webm", "standup-composite-2.webm", "standup-Ada-1.webm",
        ])
        let composite = try #require(catalog.entries().first { $0.composite })
        #expect(composite.participant == nil && composite.bytes == 1000 && composite.duration == 10 && composite.finalized)
    }

    @Test("a file is found only by the exact name of a listed recording the viewer may see")
    func lookup() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let catalog = RecordingCatalog(directory: folder)
        let ada = RecordingViewer(username: "ada", isAdmin: false)
        #expect(catalog.entry(named: "standup-Ada-1.webm", visibleTo: ada) != nil)
        for name in ["standup-Ada-1.json", "../standup-Ada-1.webm", "..", ".", "", "standup-guest-4.webm", "standup-Ada-3.webm",
                     "standup-evil-5.webm", "../vcall-data/vcall.sqlite", "standup-gone-6.webm"] {
            #expect(catalog.entry(named: name, visibleTo: ada) == nil, "\(name)")
        }
        #expect(RecordingCatalog(directory: folder.appendingPathComponent("missing")).entries().isEmpty)
    }
}
