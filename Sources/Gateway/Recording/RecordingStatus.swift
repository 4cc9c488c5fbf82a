import Foundation

/// What a recording is doing now.
public struct RecordingStatus: Sendable, CustomStringConvertible {
    public enum Phase: String, Sendable {
        /// Tracks are being linked; no data reaches the file yet.
        case waitingForTracks
        /// Media flows into the file.
        case recording
        case stopping
        case finished
        /// A write error stopped the recording; the file holds what was written before it.
        case failed
    }

    public var phase: Phase
    public var file: URL
    /// Seconds of media in the file so far.
    public var duration: Double
    /// The file's size in bytes.
    public var bytes: Int
    public var videoFrames: Int
    public var audioPackets: Int
    public var error: GatewayError?

    public var description: String {
        "\(file.lastPathComponent): \(phase.rawValue), \(String(format: "%.1f", duration)) s, \(bytes) bytes"
            + (error.map { " — \($0)" } ?? "")
    }
}
