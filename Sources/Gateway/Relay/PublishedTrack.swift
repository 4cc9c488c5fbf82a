import GStreamer
import WebRTC

/// One participant's received track made ready to forward: `depayloader ! tee`, attached to the
/// `ReceivedTrack`. Every subscriber's send branch takes from `tee` and payloads again with its own
/// payload type and SSRC, so the media is depayloaded once and never decoded. Passing RTP from one
/// webrtcbin to another instead would mix up payload types, SSRCs and header extension ids.
///
/// Keyframe requests need no wiring here: a subscriber's PLI reaches its send branch's payloader as an
/// upstream force-key-unit, travels up through this tee and the depayloader, and stops at the received
/// track, whose throttle asks the publisher (at most once a second, the last request deferred).
final class PublishedTrack: Sendable {
    let publisher: String
    let codec: Codec
    /// Depayloaded frames (VP8, Opus), for subscribers' `WebRTCPeer.addTrack` and `setSource`.
    let tee: Element
    private let depayloader: Element
    private let attachment: TrackAttachment
    private let pipeline: Pipeline

    init(publisher: String, track: ReceivedTrack, codec: Codec, pipeline: Pipeline, name: String) throws {
        self.publisher = publisher
        self.codec = codec
        self.pipeline = pipeline
        depayloader = try codec.makeDepayloader(name: "\(name)-\(codec.depayloaderName)")
        tee = try Element(factory: "tee", name: "\(name)-forward-tee")
        // Nobody may be subscribed yet (a room of one): the tee drops its data meanwhile.
        try tee.set("allow-not-linked", true)
        try pipeline.add(depayloader, tee)
        try depayloader.link(tee)
        try tee.syncStateWithParent()
        try depayloader.syncStateWithParent()
        guard let input = depayloader.staticPad("sink") else {
            throw GStreamerError.link("\(codec.depayloaderName) has no sink pad")
        }
        attachment = try track.attach(input)
    }

    /// Detaches from the received track and removes the elements; subscribers' branches must have
    /// been moved off `tee` first (`WebRTCPeer.setSource`).
    func close() {
        attachment.detach()
        for element in [depayloader, tee] {
            _ = try? element.setState(.null)
            try? pipeline.remove(element)
        }
    }
}
