import WebRTCTypes
/// The limits and validation rules of the protocol.
///
/// ```swift
/// SignalingLimits.isValidRoomID("team-standup")   // true
/// SignalingLimits.isValidRoomID("../etc")         // false
/// ```
public enum SignalingLimits {
    /// Default largest accepted message (one text frame, or one fragmented message), in bytes.
    public static let defaultMaxMessageBytes = 64 * 1024
    /// Default room capacity.
    public static let defaultRoomCapacity = 8
    /// Longest room id.
    public static let maxRoomIDLength = 64
    /// Longest display name, in characters.
    public static let maxNameLength = 64
    /// Longest connection id accepted in `to`.
    public static let maxPeerIDLength = 64
    /// Most entries in one `track-map` (one per m-line of an offer).
    public static let maxTrackMapEntries = 256
    /// Longest `mid` in a `track-map` entry.
    public static let maxMidLength = 32

    /// A room id is 1–64 characters of `A–Z a–z 0–9 _ -`.
    public static func isValidRoomID(_ id: String) -> Bool {
        guard !id.isEmpty, id.utf8.count <= maxRoomIDLength else { return false }
        return id.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D
        }
    }

    /// A display name, trimmed; `nil` when it is empty, longer than 64 characters or holds control characters.
    public static func normalizedName(_ name: String) -> String? {
        let trimmed = name.trimmingWhitespace()
        guard !trimmed.isEmpty, trimmed.count <= maxNameLength else { return nil }
        guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return nil }
        return trimmed
    }

    /// The SDP types a session description may carry (`RTCSdpType`).
    public static let sdpTypes: Set<String> = Set(RTCSdpType.allCases.map(\.rawValue))
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
