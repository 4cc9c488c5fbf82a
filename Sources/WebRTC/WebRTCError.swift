/// Errors of the WebRTC layer, saying what happened and what to do.
public enum WebRTCError: Error, CustomStringConvertible, Sendable {
    case negotiation(String)
    case invalidDescription(String)
    /// A remote candidate of another ICE generation than the remote description's (sent before an ICE
    /// restart, or for an offer that lost a collision): it is not applied.
    case staleCandidate(String)
    case closed

    public var description: String {
        switch self {
        case .negotiation(let message): "negotiation failed: \(message)"
        case .invalidDescription(let message): "invalid session description: \(message)"
        case .staleCandidate(let message): "stale ICE candidate: \(message)"
        case .closed: "the peer connection is closed"
        }
    }
}
