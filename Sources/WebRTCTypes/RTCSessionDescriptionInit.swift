/// An SDP offer or answer in the W3C `RTCSessionDescriptionInit` shape: `{type, sdp}`.
///
/// The one Swift value for a session description: the signaling messages carry it on the wire and
/// `WebRTCPeer` takes and returns it, so nothing converts between the two.
///
/// ```swift
/// let offer = try JSONDecoder().decode(RTCSessionDescriptionInit.self, from: Data(#"{"type":"offer","sdp":"v=0…"}"#.utf8))
/// ```
public struct RTCSessionDescriptionInit: Codable, Sendable, Equatable {
    /// Offer, answer, provisional answer or rollback.
    public var type: RTCSdpType
    /// The session description itself (RFC 8866 text, `\r\n` line ends).
    public var sdp: String

    public init(type: RTCSdpType, sdp: String) { (self.type, self.sdp) = (type, sdp) }
}

/// `RTCSdpType`: what a session description is.
public enum RTCSdpType: String, Codable, Sendable, CaseIterable {
    case offer, pranswer, answer, rollback

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let type = RTCSdpType(rawValue: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "type must be offer, answer, pranswer or rollback, not \"\(text.prefix(32))\"")
        }
        self = type
    }
}
