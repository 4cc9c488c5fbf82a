import GStreamer
import WebRTC

/// An encoded stream the gateway sends to every participant: a tee after the encoder.
public struct OutgoingTrack: Sendable {
    public let codec: Codec
    public let tee: Element
    public init(codec: Codec, tee: Element) {
        self.codec = codec
        self.tee = tee
    }
}
