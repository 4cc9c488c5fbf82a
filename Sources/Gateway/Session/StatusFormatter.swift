import Foundation

/// The live status block: participants, connection state, bitrates, and each recording's time and size.
public enum StatusFormatter {
    public static func lines(_ status: GatewayStatus) -> [String] {
        let call = status.call
        var lines: [String] = []
        let signaling = call.signalingConnected ? "connected" : "reconnecting…"
        lines.append("room \(call.room) · me \(call.selfID ?? "?") · signaling \(signaling) · offers sent \(call.offersSent)")
        let audio = status.audio.map { $0 + (status.audioMuted ? " (muted)" : "") } ?? "off"
        lines.append("sending video \(status.video ?? "off") · audio \(audio) · recording \(status.recording ? "on" : "off")")
        if call.members.isEmpty {
            lines.append("  nobody else in the room yet")
        }
        for member in call.members {
            lines.append("  \(pad(member.name, 16)) \(pad(member.connectionState.rawValue, 12)) in \(rate(member.bitrateIn)) · out \(rate(member.bitrateOut))")
        }
        for recording in status.recordings {
            let problem = recording.error.map { "  ✗ \($0)" } ?? ""
            lines.append("  ● \(recording.file.lastPathComponent)  \(recording.phase.rawValue)  \(clock(recording.duration))  \(size(recording.bytes))\(problem)")
        }
        return lines
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? String(text.prefix(width)) : text + String(repeating: " ", count: width - text.count)
    }

    static func rate(_ bitsPerSecond: Double) -> String {
        bitsPerSecond >= 1_000_000 ? String(format: "%.1f Mbit/s", bitsPerSecond / 1_000_000)
            : String(format: "%.0f kbit/s", bitsPerSecond / 1000)
    }

    static func clock(_ seconds: Double) -> String {
        let whole = Int(seconds)
        return String(format: "%02d:%02d:%02d", whole / 3600, whole / 60 % 60, whole % 60)
    }

    static func size(_ bytes: Int) -> String {
        bytes >= 1_000_000 ? String(format: "%.1f MB", Double(bytes) / 1_000_000) : String(format: "%.0f kB", Double(bytes) / 1000)
    }
}
