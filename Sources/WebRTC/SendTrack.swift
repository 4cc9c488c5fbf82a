import GStreamer

/// One encoded stream sent to one peer: `tee ! queue ! payloader ! capsfilter ! webrtcbin`.
///
/// A track keeps its m-line for the whole call. It may change source (another tee, announced under
/// another stream id) or stop (no source: silent) and start again: a relay reuses the slot of a
/// participant who left for the next one, since webrtcbin never reuses an m-line.
struct SendTrack: Sendable {
    let codec: Codec
    /// Where the stream comes from; nil while the track is stopped.
    private(set) var tee: Element?
    /// The msid stream id announced for the track (the sink pad's `msid`); nil: webrtcbin's default.
    private(set) var streamID: String?
    /// Sends only (a relay's forwarded tracks): the transceiver is `sendonly` and prefers exactly the caps
    /// sent, so an offer never lists a codec that is not sent.
    let sendOnly: Bool
    /// The mid a send-only track's m-line takes in offers (webrtcbin reads `a-mid` from the codec preferences).
    let mid: String?
    private let keyframes = KeyframeWait()
    private var teePad: Pad?
    private var elements: [Element] = []
    private var webrtcPad: Pad?
    private var webrtc: Element?

    init(codec: Codec, tee: Element, streamID: String?, sendOnly: Bool, mid: String? = nil) {
        self.codec = codec
        self.tee = tee
        self.streamID = streamID
        self.sendOnly = sendOnly
        self.mid = mid
    }

    var isLinked: Bool { webrtcPad != nil }

    /// The track's transceiver, once linked.
    var transceiver: GLibObject? { try? webrtcPad?.get("transceiver").objectValue }

    /// Builds the branch and links it, downstream first, so data only flows once everything is ready.
    mutating func link(into pipeline: Pipeline, webrtc: Element, payloadType: Int, namePrefix: String,
                       counters: TrafficCounters, gate: SendGate) throws {
        // A slow peer drops its own oldest data instead of stalling the tee that feeds every peer.
        let queue = try Element.leakyQueue(name: "\(namePrefix)-\(codec.encodingName.lowercased())-queue", maxTime: .milliseconds(500))
        let payloader = try Element(factory: codec.payloaderName, name: "\(namePrefix)-\(codec.payloaderName)")
        try payloader.set("pt", payloadType)
        try payloader.set("mtu", 1200)
        if codec == .vp8 || codec == .vp9 { try payloader.set("picture-id-mode", "15-bit") }
        let filter = try Element(factory: "capsfilter", name: "\(namePrefix)-\(codec.encodingName.lowercased())-caps")
        // The SSRC is fixed here, before any data flows: webrtcbin announces the SSRCs it finds in these
        // caps in the answer (a=ssrc, msid), and the payloader takes the same one from them. Left to the
        // payloader, a branch linked while an answer is made may be announced with no or another SSRC, and
        // Chrome then decodes the stream without ever showing it on the track.
        let ssrc = UInt32.random(in: 1...UInt32.max)
        let caps = try Caps(codec.rtpCaps(payloadType: payloadType) + ",ssrc=(uint)\(ssrc)")
        try filter.set("caps", value: .caps(caps))
        try pipeline.add(queue, payloader, filter)
        elements = [queue, payloader, filter]
        try queue.link(payloader)
        try payloader.link(filter)
        let sink = try webrtc.requestPad("sink_%u")
        guard let filterSource = filter.staticPad("src"), let payloaderSink = payloader.staticPad("sink") else {
            throw GStreamerError.link("missing pads in send branch")
        }
        if let streamID { try sink.set("msid", streamID) }
        try filterSource.link(sink)
        self.webrtc = webrtc
        webrtcPad = sink
        if let transceiver = try? sink.get("transceiver").objectValue {
            if codec.kind == .video { try? transceiver.set("do-nack", true) }
            if sendOnly {
                try transceiver.set("direction", "sendonly")
                let preferences = try mid.map { try Caps(codec.rtpCaps(payloadType: payloadType) + ",ssrc=(uint)\(ssrc),a-mid=(string)\($0)") } ?? caps
                try transceiver.set("codec-preferences", value: .caps(preferences))
            }
        }
        let sent = counters.sentCounter(for: codec.kind)
        let kind = codec.kind
        let keyframes = self.keyframes
        if kind == .video { gate.addVideo(payloaderSink, wait: keyframes) }
        payloaderSink.addProbe(.buffer) { info in
            // The pad comes from `info`: captured, it would own the probe that owns it.
            guard gate.admit(info.buffer, kind: kind, wait: keyframes,
                             requestKeyframe: { _ = info.pad.pushEvent(.upstreamForceKeyUnit(allHeaders: true)) }) else {
                return .drop
            }
            sent.add(1)
            return .ok
        }
        for element in elements.reversed() { try element.syncStateWithParent() }
        if let tee { try attach(to: tee) }
    }

    private mutating func attach(to tee: Element) throws {
        guard let queueSink = elements.first?.staticPad("sink") else { throw GStreamerError.link("the send branch has no queue") }
        let source = try tee.requestPad("src_%u")
        do {
            try source.link(queueSink)
        } catch {
            tee.releaseRequestPad(source)
            throw error
        }
        teePad = source
    }

    /// Detaches the branch from its tee when the tee pad is idle (no buffer is inside the link).
    private mutating func detachFromTee() async {
        guard let tee, let teePad, let queueSink = elements.first?.staticPad("sink") else { return }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let token = teePad.addProbe(.idle) { _ in
                try? teePad.unlink(queueSink)
                done.resume()
                return .remove
            }
            _ = token // an idle pad runs the probe at once; either way it resumes exactly once
        }
        tee.releaseRequestPad(teePad)
        self.teePad = nil
    }

    /// Feeds the track from `tee`, announced as `streamID`, or stops it (`tee` nil). The m-line stays, with
    /// its direction: a stopped track is silent, and a restarted one sends again from a keyframe (with
    /// the same SSRC), announced under the new stream id in the next offer. The direction never changes
    /// because webrtcbin 1.22 refuses to make an m-line active again once it was `inactive` ("transceiver
    /// direction changes are not implemented"). Nothing is ever sent into webrtcbin to end the stream
    /// either: an EOS on one sink pad of a bundle ends every stream of it.
    mutating func setSource(_ newTee: Element?, streamID newStreamID: String?) async throws {
        if isLinked { await detachFromTee() }
        tee = newTee
        streamID = newStreamID
        guard isLinked, let newTee else { return }
        if let newStreamID { try webrtcPad?.set("msid", newStreamID) }
        keyframes.restart()
        try attach(to: newTee)
    }

    /// Detaches the branch from its tee, then removes its elements.
    mutating func unlink(from pipeline: Pipeline) async {
        await detachFromTee()
        for element in elements {
            _ = try? element.setState(.null)
            try? pipeline.remove(element)
        }
        if let webrtcPad, let webrtc { webrtc.releaseRequestPad(webrtcPad) }
        elements.removeAll()
        webrtcPad = nil
        webrtc = nil
    }
}
