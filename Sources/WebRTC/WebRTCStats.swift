import Foundation
import GStreamer

/// A typed snapshot of a peer's traffic, from webrtcbin's `get-stats` plus the peer's own frame counts.
public struct WebRTCStats: Sendable, Codable, CustomStringConvertible {
    public var bytesSent = 0
    public var packetsSent = 0
    /// Encoded frames handed to the payloaders once the connection was up (see `SendGate`).
    public var framesSent = 0
    /// The video part of `framesSent`.
    public var videoFramesSent = 0
    public var bytesReceived = 0
    public var packetsReceived = 0
    /// Frames received (RTP timestamps seen on the remote tracks).
    public var framesReceived = 0
    /// The video part of `framesReceived`.
    public var videoFramesReceived = 0
    public var packetsLost = 0
    /// The latest round-trip time the remote peer reported, in seconds.
    public var roundTripTime: Double?

    public init() {}

    /// Sums webrtcbin's stats structure: one field per stats object, each with a `type`.
    init(_ report: Structure?, counters: TrafficCounters) {
        framesSent = counters.sentVideo.frames + counters.sentAudio.frames
        framesReceived = counters.receivedVideo.frames + counters.receivedAudio.frames
        videoFramesSent = counters.sentVideo.frames
        videoFramesReceived = counters.receivedVideo.frames
        guard let report else { return }
        for (_, value) in report.fields {
            guard let entry = value.structureValue, let type = entry["type"]?.stringValue else { continue }
            switch type {
            case "outbound-rtp":
                bytesSent += entry["bytes-sent"]?.intValue ?? 0
                packetsSent += entry["packets-sent"]?.intValue ?? 0
            case "inbound-rtp":
                bytesReceived += entry["bytes-received"]?.intValue ?? 0
                packetsReceived += entry["packets-received"]?.intValue ?? 0
                packetsLost += max(0, entry["packets-lost"]?.intValue ?? 0)
            case "remote-inbound-rtp":
                if let rtt = entry["round-trip-time"]?.doubleValue, rtt > 0 { roundTripTime = rtt }
            default:
                break
            }
        }
    }

    public var description: String {
        let rtt = roundTripTime.map { String(format: "%.1f ms", $0 * 1000) } ?? "n/a"
        return "sent \(bytesSent) B / \(packetsSent) pkts / \(framesSent) frames; received \(bytesReceived) B / \(packetsReceived) pkts / \(framesReceived) frames; lost \(packetsLost); rtt \(rtt)"
    }
}
