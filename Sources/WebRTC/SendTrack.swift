import GStreamer
import Synchronization

/// Holds a peer's outgoing media back until its connection is up, then starts video on a keyframe.
///
/// Before DTLS completes, webrtcbin blocks the RTP it is given; the per-peer queue fills and drops its
/// oldest frames, so the first packets a new peer would get are stale delta frames, undecodable without
/// the keyframe the queue dropped. Dropping everything before the payloader until `connected` and then
/// asking the encoder for a keyframe (dropping delta frames until it comes) gives the peer a fresh
/// picture at once and makes the sent-frame counts mean frames that could be decoded.
final class SendGate: Sendable {
    private let isOpen = Atomic<Bool>(false)
    /// Video frames seen since the gate opened while still waiting for a keyframe.
    private let deltasWhileWaiting = Atomic<Int>(-1)
    /// The video payloaders' sink pads, until the gate opens and asks through them for a keyframe.
    private let videoPads = Mutex<[Pad]>([])
    private let askedAtOpen = Atomic<Bool>(false)

    /// Registers a video branch's payloader sink pad, through which the keyframe is asked for on opening.
    func addVideo(_ pad: Pad) {
        videoPads.withLock { $0.append(pad) }
    }

    func open() {
        guard !isOpen.exchange(true, ordering: .acquiringAndReleasing) else { return }
        deltasWhileWaiting.store(0, ordering: .releasing)
        // Asked now, not at the next frame: the far side waits a frame interval less for its first picture,
        // more when frames come late. (An upstream force-key-unit only queues a request in the encoder.)
        let pads = videoPads.withLock { pads in
            defer { pads.removeAll() }
            return pads
        }
        for pad in pads {
            if pad.pushEvent(.upstreamForceKeyUnit(allHeaders: true)) { askedAtOpen.store(true, ordering: .releasing) }
        }
    }

    /// Decides for one buffer entering a payloader; asks `pad`'s upstream for a keyframe when needed.
    func admit(_ buffer: BufferInfo?, kind: MediaKind, pad: Pad) -> Bool {
        guard isOpen.load(ordering: .acquiring) else { return false }
        guard kind == .video, let buffer else { return true }
        let waited = deltasWhileWaiting.load(ordering: .acquiring)
        if waited < 0 { return true }
        if !buffer.isDeltaUnit {
            deltasWhileWaiting.store(-1, ordering: .releasing)
            return true
        }
        // Ask (unless opening did) and again every 15 frames in case the request was lost.
        let ask = waited == 0 ? !askedAtOpen.load(ordering: .acquiring) : waited % 15 == 0
        if ask { _ = pad.pushEvent(.upstreamForceKeyUnit(allHeaders: true)) }
        deltasWhileWaiting.store(waited + 1, ordering: .releasing)
        return false
    }
}

/// One encoded stream sent to one peer: `tee ! queue ! payloader ! capsfilter ! webrtcbin`.
struct SendTrack: Sendable {
    let codec: Codec
    let tee: Element
    private var teePad: Pad?
    private var elements: [Element] = []
    private var webrtcPad: Pad?
    private var webrtc: Element?

    init(codec: Codec, tee: Element) {
        self.codec = codec
        self.tee = tee
    }

    var isLinked: Bool { teePad != nil }

    /// Builds the branch and links it, downstream first, so data only flows once everything is ready.
    mutating func link(into pipeline: Pipeline, webrtc: Element, payloadType: Int, namePrefix: String,
                       counters: TrafficCounters, gate: SendGate) throws {
        let queue = try Element(factory: "queue", name: "\(namePrefix)-\(codec.encodingName.lowercased())-queue")
        // A slow peer drops its own oldest data instead of stalling the tee that feeds every peer.
        try queue.set("leaky", "downstream")
        try queue.set("max-size-buffers", 0)
        try queue.set("max-size-bytes", 0)
        try queue.set("max-size-time", 500_000_000)
        let payloader = try Element(factory: codec.payloader, name: "\(namePrefix)-\(codec.payloader)")
        try payloader.set("pt", payloadType)
        try payloader.set("mtu", 1200)
        if codec == .vp8 || codec == .vp9 { try payloader.set("picture-id-mode", "15-bit") }
        let filter = try Element(factory: "capsfilter", name: "\(namePrefix)-\(codec.encodingName.lowercased())-caps")
        // The SSRC is fixed here, before any data flows: webrtcbin announces the SSRCs it finds in these
        // caps in the answer (a=ssrc, msid), and the payloader takes the same one from them. Left to the
        // payloader, a branch linked while an answer is made may be announced with no or another SSRC, and
        // Chrome then decodes the stream without ever showing it on the track.
        let ssrc = UInt32.random(in: 1...UInt32.max)
        try filter.set("caps", value: .caps(try Caps(codec.rtpCaps(payloadType: payloadType) + ",ssrc=(uint)\(ssrc)")))
        try pipeline.add(queue, payloader, filter)
        elements = [queue, payloader, filter]
        try queue.link(payloader)
        try payloader.link(filter)
        let sink = try webrtc.requestPad("sink_%u")
        guard let filterSource = filter.staticPad("src"), let queueSink = queue.staticPad("sink"),
              let payloaderSink = payloader.staticPad("sink") else { throw GStreamerError.link("missing pads in send branch") }
        try filterSource.link(sink)
        if codec.kind == .video, let transceiver = try? sink.get("transceiver").objectValue {
            try? transceiver.set("do-nack", true)
        }
        webrtcPad = sink
        let sent = counters.sentCounter(for: codec.kind)
        let kind = codec.kind
        if kind == .video { gate.addVideo(payloaderSink) }
        payloaderSink.addProbe(.buffer) { info in
            guard gate.admit(info.buffer, kind: kind, pad: payloaderSink) else { return .drop }
            sent.add(1)
            return .ok
        }
        for element in elements.reversed() { try element.syncStateWithParent() }
        let source = try tee.requestPad("src_%u")
        try source.link(queueSink)
        teePad = source
    }

    /// Detaches the branch from its tee when the tee pad is idle, then removes its elements.
    mutating func unlink(from pipeline: Pipeline) async {
        if let teePad, let queueSink = elements.first?.staticPad("sink") {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                let token = teePad.addProbe(.idle) { _ in
                    try? teePad.unlink(queueSink)
                    done.resume()
                    return .remove
                }
                _ = token // an idle pad runs the probe at once; either way it resumes exactly once
            }
            tee.releaseRequestPad(teePad)
        }
        for element in elements {
            _ = try? element.setState(.null)
            try? pipeline.remove(element)
        }
        if let webrtcPad, let webrtc { webrtc.releaseRequestPad(webrtcPad) }
        elements.removeAll()
        teePad = nil
        webrtcPad = nil
    }
}
