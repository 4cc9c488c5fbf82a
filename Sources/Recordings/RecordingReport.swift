import Foundation

/// What one recording holds, written as JSON next to its WebM file (`NAME.webm` → `NAME.json`) when the
/// recording is finalized.
///
/// Counts and gaps are measured on the data that entered the muxer, not on what the network delivered:
/// - `videoFrames`, `keyframes`, `audioPackets`: buffers handed to webmmux (frames before the first keyframe
///   and audio before it are not recorded and not counted).
/// - `videoGaps`: stretches of more than 0.5 s of media time between two consecutive recorded video frames
///   (a frozen or paused camera, heavy loss), plus a trailing stretch when no video arrived in the last
///   0.5 s before the recording stopped. RTP sequence gaps are not reported: webrtcbin's jitter buffer
///   retransmits and reorders before the recorder sees the packets, so what matters to a viewer is the
///   time without frames.
public struct RecordingReport: Codable, Sendable, Equatable {
    /// A stretch without video frames, in seconds from the start of the file.
    public struct Gap: Codable, Sendable, Equatable {
        public var start: Double
        public var end: Double
        public var duration: Double { end - start }

        public init(start: Double, end: Double) {
            self.start = start
            self.end = end
        }
    }

    /// The participant's peer id, or `compositeParticipantID` for the composite (the whole meeting).
    public var participantID: String
    public var displayName: String
    public var room: String
    /// The WebM file's name (in the same directory as the report).
    public var file: String
    /// When the recorder started and stopped (UTC; ISO 8601 in JSON).
    public var start: Date
    public var end: Date
    /// Media duration in seconds: from the first recorded frame to the end of the last.
    public var duration: Double
    /// RTP encoding names, for example `VP8` and `OPUS`; nil when that kind was not recorded.
    public var videoCodec: String?
    public var audioCodec: String?
    public var videoFrames: Int
    public var keyframes: Int
    public var audioPackets: Int
    public var videoGaps: [Gap]
    /// The file's size in bytes when finalized.
    public var bytes: Int
    /// True if the muxer wrote its index and duration (the file is seekable); false after a write error
    /// or a timeout (the file is readable; `WebMRepair.repair` makes it seekable).
    public var finalizedCleanly: Bool
    /// What went wrong, for the user.
    public var error: String?
    /// A composite's participants, in order of arrival (nil in a participant's own report).
    public var participants: [Participant]?
    /// Composite frames the encoder could not keep up with and skipped (a composite only).
    public var framesDropped: Int?
    /// True when `vcall-gateway repair` wrote this report, for a file cut off before it was finalized.
    public var repaired: Bool?
    /// The accounts (usernames) of everyone logged in who was in the room while this file recorded, sorted:
    /// who may watch it in the web app (see `RecordingCatalog`). Guests have none; nil or empty: admins only.
    public var accounts: [String]?

    public init(participantID: String, displayName: String, room: String, file: String, start: Date, end: Date, duration: Double,
                videoCodec: String?, audioCodec: String?, videoFrames: Int, keyframes: Int, audioPackets: Int, videoGaps: [Gap],
                bytes: Int, finalizedCleanly: Bool, error: String?, participants: [Participant]? = nil, framesDropped: Int? = nil,
                repaired: Bool? = nil, accounts: [String]? = nil) {
        self.participantID = participantID
        self.displayName = displayName
        self.room = room
        self.file = file
        self.start = start
        self.end = end
        self.duration = duration
        self.videoCodec = videoCodec
        self.audioCodec = audioCodec
        self.videoFrames = videoFrames
        self.keyframes = keyframes
        self.audioPackets = audioPackets
        self.videoGaps = videoGaps
        self.bytes = bytes
        self.finalizedCleanly = finalizedCleanly
        self.error = error
        self.participants = participants
        self.framesDropped = framesDropped
        self.repaired = repaired
        self.accounts = accounts
    }

    /// Someone in a composite recording.
    public struct Participant: Codable, Sendable, Equatable {
        public var id: String
        public var name: String

        public init(id: String, name: String) {
            self.id = id
            self.name = name
        }
    }

    /// `participantID` of a composite recording.
    public static let compositeParticipantID = "composite"

    /// The JSON the gateway writes: ISO 8601 dates, sorted keys, pretty-printed.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// Reads a report written by `json()`.
    public static func read(from url: URL) throws -> RecordingReport {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(RecordingReport.self, from: Data(contentsOf: url))
    }

    /// What a recording's report says from its first moment until it is finalized: who, where and when,
    /// and that the file is not finished. A recording cut off by `kill -9` keeps this one until
    /// `vcall-gateway repair` writes the repaired file's report.
    package static func provisional(participantID: String, displayName: String, room: String, file: URL, start: Date,
                                    accounts: Set<String> = []) -> RecordingReport {
        var report = RecordingReport(participantID: participantID, displayName: displayName, room: room, file: file.lastPathComponent,
                                     start: start, end: start, duration: 0, videoCodec: nil, audioCodec: nil, videoFrames: 0, keyframes: 0,
                                     audioPackets: 0, videoGaps: [], bytes: 0, finalizedCleanly: false,
                                     error: "not finalized: still recording, or cut off (run vcall-gateway repair \(file.lastPathComponent))")
        report.accounts = accounts.isEmpty ? nil : accounts.sorted()
        return report
    }

    /// Writes the report next to its recording (`NAME.webm` → `NAME.json`), atomically.
    public func write(beside file: URL) throws {
        try json().write(to: Self.url(for: file), options: .atomic)
    }

    /// The report's path for a recording file: the same name with `.json`.
    public static func url(for file: URL) -> URL { file.deletingPathExtension().appendingPathExtension("json") }
}
