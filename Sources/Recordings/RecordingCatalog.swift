import Foundation

/// The recordings in a folder as the web app lists them: one entry per WebM file that has a report beside
/// it (`NAME.webm` + `NAME.json`, as the gateway writes them), newest first, and who may see each one.
///
/// The folder is read on every call (a directory listing and a few small JSON files; for one file, only its
/// report): recordings appear as the gateway starts them and change as it finalizes them, and nothing needs
/// to be kept in step.
///
/// ```swift
/// let catalog = RecordingCatalog(directory: URL(fileURLWithPath: "./recordings"))
/// let mine = catalog.entries(visibleTo: RecordingViewer(username: "ada", isAdmin: false))
/// ```
public struct RecordingCatalog: Sendable {
    public let directory: URL

    public init(directory: URL) {
        self.directory = directory.standardizedFileURL
    }

    /// Every listed recording, newest first.
    ///
    /// A report that does not decode, or whose file is gone, is left out. A file cut off by `kill -9` whose
    /// repaired copy exists (`NAME.repaired.webm` with its report) is listed once, as the repaired copy.
    public func entries() -> [RecordingEntry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let present = Set(names)
        return names.filter { $0.hasSuffix(".json") }
            .compactMap { entry(reportNamed: $0, exists: present.contains) }
            .sorted { ($0.start, $0.file) > ($1.start, $1.file) }
    }

    /// The recordings `viewer` may see, newest first.
    public func entries(visibleTo viewer: RecordingViewer) -> [RecordingEntry] {
        entries().filter { $0.isVisible(to: viewer) }
    }

    /// The recording whose file is `name`, if `viewer` may see it; nil for a name that is not a listed
    /// recording (another folder, `..`, a report, a partial file) or one the viewer may not see. Only the
    /// report beside `name` is read: a player asks for many ranges of one file.
    public func entry(named name: String, visibleTo viewer: RecordingViewer) -> RecordingEntry? {
        guard Self.isPlainFileName(name), name.hasSuffix(".webm") else { return nil }
        let reportName = RecordingReport.url(for: directory.appendingPathComponent(name)).lastPathComponent
        let entry = entry(reportNamed: reportName) { FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) }
        return entry.flatMap { $0.file == name && $0.isVisible(to: viewer) ? $0 : nil }
    }

    /// The entry of the report `name` in the folder, if it is listed: the report decodes and names the
    /// `.webm` beside it, which `exists`, and it is not a cut-off file whose repaired copy is listed instead.
    private func entry(reportNamed name: String, exists: (String) -> Bool) -> RecordingEntry? {
        guard let report = try? RecordingReport.read(from: directory.appendingPathComponent(name)),
              Self.isPlainFileName(report.file), report.file.hasSuffix(".webm"), exists(report.file),
              // The report names the file beside it, never another one.
              RecordingReport.url(for: directory.appendingPathComponent(report.file)).lastPathComponent == name
        else { return nil }
        let stem = String(report.file.dropLast(".webm".count))
        if report.repaired != true, exists(stem + ".repaired.json"), exists(stem + ".repaired.webm") { return nil }
        let attributes = try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(report.file).path)
        return RecordingEntry(report: report, bytes: (attributes?[.size] as? Int) ?? report.bytes)
    }

    /// A name inside the folder itself: no separator, not `.` or `..`, no hidden file, no NUL.
    static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && !name.contains("/") && !name.contains("\\") && !name.contains("\0")
    }
}

/// Who asks for the listing: a logged-in account, and whether it may see everything.
public struct RecordingViewer: Sendable, Equatable {
    public var username: String
    /// Set by `vcall-server user admin NAME`: sees every recording.
    public var isAdmin: Bool

    public init(username: String, isAdmin: Bool) {
        self.username = username
        self.isAdmin = isAdmin
    }
}

/// One recording as the web app lists it (`GET /api/recordings`).
public struct RecordingEntry: Codable, Sendable, Equatable {
    /// The WebM file's name in the folder; played and downloaded at `/recordings/FILE`.
    public var file: String
    public var room: String
    /// The participant's display name, or nil for the composite (the whole meeting).
    public var participant: String?
    public var composite: Bool
    public var start: Date
    /// Seconds of media; 0 while still recording.
    public var duration: Double
    /// The file's size now.
    public var bytes: Int
    /// The file has its index and duration (it seeks); false while recording or after a cut-off.
    public var finalized: Bool
    /// `vcall-gateway repair` made this copy of a file that was cut off.
    public var repaired: Bool
    /// The accounts that were in the room (who may see it besides admins).
    public var accounts: [String]

    init(report: RecordingReport, bytes: Int) {
        file = report.file
        room = report.room
        composite = report.participantID == RecordingReport.compositeParticipantID
        participant = composite ? nil : report.displayName
        start = report.start
        duration = report.duration
        self.bytes = bytes
        finalized = report.finalizedCleanly
        repaired = report.repaired ?? false
        accounts = report.accounts ?? []
    }

    /// Admins see everything; an account sees the recordings of rooms it was in while they recorded.
    /// Usernames compare without case, as the server's accounts do.
    public func isVisible(to viewer: RecordingViewer) -> Bool {
        viewer.isAdmin || accounts.contains { $0.caseInsensitiveCompare(viewer.username) == .orderedSame }
    }
}
