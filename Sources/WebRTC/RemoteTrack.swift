import GStreamer
import Synchronization

/// A track the remote peer sends: a webrtcbin source pad carrying RTP of one codec.
///
/// Until it is linked its data waits, for up to `holdLimit`: the first packets carry the keyframe the
/// sender made for the new connection, and a consumer that links within that time (the gateway links
/// in milliseconds, from its own task) starts decoding or recording with it instead of waiting for a
/// requested one. After `holdLimit` an unlinked track's buffers are dropped, so a track nobody consumes
/// never piles up in its jitterbuffer. Each track has its own jitterbuffer thread, so holding one track
/// never stalls the others of the bundle. Linking also asks the sender for a keyframe.
public final class RemoteTrack: Sendable, CustomStringConvertible {
    public let kind: MediaKind
    /// The RTP encoding name, for example `VP8` or `OPUS`.
    public let encodingName: String
    public let payloadType: Int?
    /// The webrtcbin source pad to link.
    public let pad: Pad
    /// The codec, if it is one vcall decodes.
    public var codec: Codec? { Codec(encodingName: encodingName) }

    private enum Hold {
        case blocking(PadProbeToken)
        case dropping(PadProbeToken)
        case released
    }
    private let hold: Mutex<Hold>
    /// How long an unlinked track's data is held before it is dropped instead.
    public static let holdLimit: Duration = .seconds(1)
    private let rtpCounter: RTPFrameCounter

    init?(pad: Pad, counters: TrafficCounters) {
        guard let caps = pad.currentCaps ?? Optional(pad.queryCaps()), let structure = caps.structure(at: 0) else { return nil }
        guard let media = structure["media"]?.stringValue, let kind = MediaKind(rawValue: media) else { return nil }
        self.kind = kind
        self.encodingName = structure["encoding-name"]?.stringValue?.uppercased() ?? "?"
        self.payloadType = structure["payload"]?.intValue
        self.pad = pad
        rtpCounter = counters.counter(for: kind)
        let frames = rtpCounter
        // Count frames as RTP timestamps change: every packet of one frame carries the same timestamp.
        pad.addProbe(.buffer) { info in
            if let header = info.rtpHeader { frames.observe(timestamp: header.timestamp) }
            return .ok
        }
        // Added in the pad-added handler, before the first buffer is pushed: nothing passes unlinked.
        hold = Mutex(pad.addProbe(.blockDownstream) { _ in .ok }.map { .blocking($0) } ?? .released)
        Task { [weak self] in
            try? await Task.sleep(for: Self.holdLimit)
            self?.stopHolding()
        }
    }

    /// Nobody linked the track in time: drop its data from now on instead of holding it.
    private func stopHolding() {
        hold.withLock { state in
            guard case .blocking(let token) = state else { return }
            let dropping = pad.addProbe([.buffer, .bufferList]) { _ in .drop }
            pad.removeProbe(token)
            state = dropping.map { .dropping($0) } ?? .released
        }
    }

    public var description: String { "\(kind) \(encodingName)/\(payloadType.map(String.init) ?? "?") on \(pad.name)" }

    /// Links the track to a sink pad and lets its media through.
    ///
    /// With `releasing: false` the data keeps waiting (up to `holdLimit` from the track's arrival) until
    /// `release()`: for a consumer that sets up further elements behind `sink` first.
    public func link(to sink: Pad, releasing: Bool = true) throws(GStreamerError) {
        try pad.link(sink)
        if releasing { release() }
    }

    /// Lets media through to whatever the pad is linked to, and asks the sender for a keyframe.
    public func release() {
        let token = hold.withLock { state -> PadProbeToken? in
            defer { state = .released }
            switch state {
            case .blocking(let token), .dropping(let token): return token
            case .released: return nil
            }
        }
        if let token { pad.removeProbe(token) }
        requestKeyframe()
    }

    /// Asks the sender for a keyframe (webrtcbin sends it a PLI).
    public func requestKeyframe() {
        guard kind == .video else { return }
        pad.sendEvent(.upstreamForceKeyUnit(allHeaders: true))
    }

    /// Decodes the track into a sink that discards frames, counting them: `depay ! decoder ! fakesink`.
    /// The elements are added to `pipeline` and started.
    public func decode(in pipeline: Pipeline) throws(GStreamerError) -> DecodedFrameCounter {
        guard let codec else {
            throw .invalidArgument("cannot decode \(encodingName): vcall decodes \(Codec.allCases.map(\.encodingName).joined(separator: ", "))")
        }
        let depayloader = try Element(factory: codec.depayloader)
        if kind == .video {
            try depayloader.set("request-keyframe", true)
            try depayloader.set("wait-for-keyframe", true)
        }
        let decoder = try Element(factory: codec.decoder)
        let sink = try Element(factory: "fakesink")
        try sink.set("sync", false)
        try sink.set("async", false)
        try pipeline.add(depayloader, decoder, sink)
        try depayloader.link(decoder)
        try decoder.link(sink)
        for element in [sink, decoder, depayloader] { try element.syncStateWithParent() }
        let counter = DecodedFrameCounter(kind: kind)
        guard let decoded = decoder.staticPad("src"), let input = depayloader.staticPad("sink") else {
            throw .link("\(codec.decoder) has no src pad")
        }
        decoded.addProbe(.buffer) { [counter] info in
            if let buffer = info.buffer { counter.record(buffer) }
            return .ok
        }
        try link(to: input)
        return counter
    }
}

/// Counts decoded frames (or audio buffers) of one track.
public final class DecodedFrameCounter: Sendable {
    public let kind: MediaKind
    private let frames = Atomic<Int>(0)
    private let firstFrame = Mutex<ContinuousClock.Instant?>(nil)

    init(kind: MediaKind) { self.kind = kind }

    func record(_ buffer: BufferInfo) {
        if frames.add(1, ordering: .relaxed).newValue == 1 {
            firstFrame.withLock { $0 = .now }
        }
    }

    /// Frames decoded so far.
    public var count: Int { frames.load(ordering: .relaxed) }

    /// When the first frame was decoded.
    public var firstFrameTime: ContinuousClock.Instant? { firstFrame.withLock { $0 } }
}

/// Counts RTP frames: a frame ends where the RTP timestamp changes.
final class RTPFrameCounter: Sendable {
    private struct State { var lastTimestamp: UInt32?; var frames = 0 }
    private let state = Mutex(State())

    func observe(timestamp: UInt32) {
        state.withLock { state in
            if state.lastTimestamp != timestamp {
                state.lastTimestamp = timestamp
                state.frames += 1
            }
        }
    }

    func add(_ count: Int) { state.withLock { $0.frames += count } }

    var frames: Int { state.withLock { $0.frames } }
}

/// The frame counters of one peer, by direction and kind.
final class TrafficCounters: Sendable {
    let receivedVideo = RTPFrameCounter(), receivedAudio = RTPFrameCounter()
    let sentVideo = RTPFrameCounter(), sentAudio = RTPFrameCounter()

    func counter(for kind: MediaKind) -> RTPFrameCounter { kind == .video ? receivedVideo : receivedAudio }
    func sentCounter(for kind: MediaKind) -> RTPFrameCounter { kind == .video ? sentVideo : sentAudio }
}
