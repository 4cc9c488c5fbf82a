import WebRTCTypes

/// How a `WebRTCPeer` is set up.
public struct WebRTCConfiguration: Sendable {
    /// STUN and TURN servers, as in `RTCConfiguration.iceServers`.
    public var iceServers: [RTCIceServer]
    /// The jitter buffer's latency in milliseconds (webrtcbin's `latency`).
    public var latencyMilliseconds: Int
    /// A name for logs and element names; unique within a pipeline.
    public var name: String
    /// The local UDP ports ICE may bind (webrtcbin's ICE agent `min-rtp-port`/`max-rtp-port`), so that a
    /// firewall can open just these; nil: any port the system gives.
    public var udpPorts: ClosedRange<UInt16>?

    public init(iceServers: [RTCIceServer] = [], latencyMilliseconds: Int = 200, name: String? = nil) {
        self.iceServers = iceServers
        self.latencyMilliseconds = latencyMilliseconds
        self.name = name ?? "peer\(UInt32.random(in: 0...UInt32.max))"
    }
}
