import GStreamer
import WebRTC

/// One track's way into a recording: `queue (leaky, 3 s) ! depayloader [! opusparse]`, attached to the
/// `ReceivedTrack`, its output held until the recorder links every branch to the muxer.
///
/// - The queue comes first so that webrtcbin's thread only enqueues: depayloading, the muxer's wait for
///   its other pad and disk writes run on the recorder's own threads, and a stalled disk drops the oldest
///   recorder data (leaky) instead of stalling the call.
/// - Until `release()`, a blocking probe on the queue's output holds what arrives (up to the queue's 3 s,
///   dropping the oldest), so the participant's first keyframe, sent as the connection came up, is still
///   there when the recording opens: no waiting for a requested one.
/// - Input passes only while `shared.admitsInput(kind)`: after a failure or a detach nothing more enters,
///   so nothing follows the EOS and no flow error reaches the track.
struct RecorderBranch {
    /// How long a recording's first attachment to a track keeps the track's held data back, so that
    /// the participant's own recording and the composite, starting together, both begin with the
    /// keyframe the participant sent as the connection came up (see `ReceivedTrack.attach`).
    static let gathering: Duration = .milliseconds(200)

    let track: ReceivedTrack
    var kind: MediaKind { track.kind }
    /// The queue's sink pad: where EOS is sent to end the branch.
    let input: Pad
    /// The last element's src pad, linked to the muxer by `link(to:)`.
    let output: Pad
    let elements: [Element]
    private(set) var muxPad: Pad?
    private var attachment: TrackAttachment?
    private var hold: (pad: Pad, token: PadProbeToken)?
    /// Ended early (its track sent nothing), detached from its track.
    private(set) var retired = false

    /// Builds the branch in `pipeline`, starts it and attaches it to `track` (which lets the track's held
    /// data in, into this branch's held queue).
    init(track: ReceivedTrack, pipeline: Pipeline, namePrefix: String, shared: RecorderSharedState) throws {
        guard let codec = track.codec else {
            throw GatewayError.recording("\(track.encodingName) cannot go into WebM without transcoding; vcall records VP8, VP9 and Opus")
        }
        let kind = track.kind
        let queue = try Element.leakyQueue(name: "\(namePrefix)-\(kind.rawValue)-queue", maxTime: .seconds(3))
        var elements = [queue, try codec.makeDepayloader(name: "\(namePrefix)-\(kind.rawValue)-depay")]
        // webmmux needs the rate, which opusparse adds to rtpopusdepay's caps.
        if kind == .audio { elements.append(try Element(factory: "opusparse", name: "\(namePrefix)-\(kind.rawValue)-parse")) }
        for element in elements { try pipeline.add(element) }
        for (upstream, downstream) in zip(elements, elements.dropFirst()) { try upstream.link(downstream) }
        guard let input = queue.staticPad("sink"), let output = elements.last?.staticPad("src") else {
            throw GatewayError.recording("the recorder's \(kind.rawValue) branch has no pads")
        }
        input.addProbe([.buffer, .bufferList]) { _ in shared.admitsInput(kind) ? .ok : .drop }
        if let queueOutput = queue.staticPad("src"), let token = queueOutput.addProbe(.blockDownstream, { _ in .ok }) {
            hold = (queueOutput, token)
        }
        for element in elements.reversed() { try element.syncStateWithParent() }
        self.track = track
        self.input = input
        self.output = output
        self.elements = elements
        attachment = try track.attach(input, gathering: Self.gathering)
    }

    /// Links the branch's output to a new pad of `mux`, counting what passes into `shared`.
    mutating func link(to mux: Element, shared: RecorderSharedState) throws {
        let kind = self.kind
        let muxPad = try mux.requestPad(kind == .video ? "video_%u" : "audio_%u")
        try output.link(muxPad)
        self.muxPad = muxPad
        output.addProbe(.buffer) { info in
            guard let buffer = info.buffer else { return .ok }
            return (kind == .video ? shared.videoFrame(buffer) : shared.audioPacket(buffer)) ? .ok : .drop
        }
    }

    /// Lets the held data through to the muxer.
    mutating func release() {
        if let hold { hold.pad.removeProbe(hold.token) }
        hold = nil
    }

    /// Unlinks the branch from its track; the track goes on for its other consumers.
    func detach() { attachment?.detach() }

    /// Ends the branch early: detached, then EOS, so that the muxer goes on with the others.
    mutating func retire() {
        detach()
        input.sendEvent(.endOfStream)
        retired = true
    }
}
