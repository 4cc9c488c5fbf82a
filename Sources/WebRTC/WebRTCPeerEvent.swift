import WebRTCTypes

/// `RTCPeerConnectionState`'s values.
public enum PeerConnectionState: String, Sendable {
    case new, connecting, connected, disconnected, failed, closed
}

/// `RTCIceConnectionState`'s values.
public enum ICEConnectionState: String, Sendable {
    case new, checking, connected, completed, failed, disconnected, closed
}

/// `RTCIceGatheringState`'s values.
public enum ICEGatheringState: String, Sendable {
    case new, gathering, complete
}

/// What a `WebRTCPeer` reports, in order, each once.
public enum WebRTCPeerEvent: Sendable {
    /// A local candidate to send to the remote peer; nil once gathering is complete (end of candidates).
    case localCandidate(RTCIceCandidateInit?)
    /// Tracks changed such that a new offer is needed.
    case negotiationNeeded
    case connectionState(PeerConnectionState)
    case iceConnectionState(ICEConnectionState)
    case iceGatheringState(ICEGatheringState)
    /// Media from the remote peer: `attach` a consumer to it (or `decode(in:)` it); unclaimed, it is dropped.
    case remoteTrack(ReceivedTrack)
}

/// A transceiver of a `WebRTCPeer` (one m-line): a track it sends, or a receive-only slot.
public struct TransceiverID: Hashable, Sendable, CustomStringConvertible {
    let serial: Int
    public var description: String { "transceiver \(serial)" }
}
