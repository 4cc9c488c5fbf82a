import GStreamer

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
        try filter.set("caps", value: .caps(try Caps(codec.rtpCaps(payloadType: payloadType) + ",ssrc=(uint)\(ssrc)")))
        try pipeline.add(queue, payloader, filter)
        elements = [queue, payloader, filter]
        try queue.link(payloader)
        try payloader.link(filter)
        let sink = try webrtc.requestPad("sink_%u")
        guard let filterSource = filter.staticPad("src"), let queueSink = queue.staticPad("sink"),
              let payloaderSink = payloader.staticPad("sink") else { throw GStreamerError.link("missing pads in send branch") }
        try filterSource.link(sink)
        self.webrtc = webrtc
        if codec.kind == .video, let transceiver = try? sink.get("transceiver").objectValue {
            try? transceiver.set("do-nack", true)
        }
        webrtcPad = sink
        let sent = counters.sentCounter(for: codec.kind)
        let kind = codec.kind
        if kind == .video { gate.addVideo(payloaderSink) }
        payloaderSink.addProbe(.buffer) { info in
            // The pad comes from `info`: captured, it would own the probe that owns it.
            guard gate.admit(info.buffer, kind: kind, requestKeyframe: { _ = info.pad.pushEvent(.upstreamForceKeyUnit(allHeaders: true)) }) else {
                return .drop
            }
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
        webrtc = nil
    }
}
