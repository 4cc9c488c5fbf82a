import GStreamer
import Synchronization

/// A track the remote peer sends, and its one owner: webrtcbin's source pad carrying RTP of one codec.
///
/// Consumers (a recorder, a decoder, next a relay or a compositor) `attach` a sink pad and later
/// `detach`; any number may come and go during the call. The track:
/// - **holds** its first data until the first consumer attaches, for up to `holdLimit`: those packets
///   carry the keyframe the sender made for the new connection, so a consumer that attaches within that
///   time starts with it instead of waiting for a requested one. After `holdLimit` an unclaimed track's
///   data is dropped, so nothing piles up in its jitterbuffer (each track has its own jitterbuffer
///   thread, so holding one never stalls the others of the bundle);
/// - **fans out** through a tee made at the first attachment (`allow-not-linked`, so it drops data while
///   nobody is attached);
/// - is the **only** place that asks the sender for a keyframe: `requestKeyframe()`, and every
///   force-key-unit request a consumer's elements send upstream (a depayloader waiting for a keyframe asks
///   on every frame) are caught at the tee and go through one `KeyframeRequestThrottle`: at most one PLI
///   per `keyframeRequestInterval`, the last one deferred, not dropped;
/// - is closed by its `WebRTCPeer` when the peer closes (the tee goes; later detaches do nothing).
///
/// ```swift
/// if case .remoteTrack(let track) = event {
///     let attachment = try track.attach(recorderQueue.staticPad("sink")!)   // releases the held data, asks for a keyframe
///     ...
///     attachment.detach()
/// }
/// ```
public final class ReceivedTrack: Sendable, CustomStringConvertible {
    public let kind: MediaKind
    /// The RTP encoding name, for example `VP8` or `OPUS`.
    public let encodingName: String
    public let payloadType: Int?
    /// The codec, if it is one vcall handles.
    public var codec: Codec? { Codec(encodingName: encodingName) }

    /// How long an unclaimed track's data is held before it is dropped instead.
    public static let holdLimit: Duration = .seconds(1)
    /// The shortest time between two keyframe requests to the sender.
    public static let keyframeRequestInterval: Duration = .seconds(1)

    /// webrtcbin's source pad.
    private let pad: Pad
    private let pipeline: Pipeline
    private let name: String
    private let keyframes: KeyframeRequestThrottle

    private enum Hold {
        case holding(PadProbeToken)
        case dropping(PadProbeToken)
        case released
    }
    private struct State {
        var hold: Hold
        var tee: Element?
        var attachments = 0
        var closed = false
    }
    private let state: Mutex<State>

    /// Wraps a webrtcbin source pad in its `pad-added` handler, before its first buffer: nothing passes
    /// until a consumer attaches. nil for a pad whose caps name no media kind.
    init?(pad: Pad, pipeline: Pipeline, namePrefix: String, counters: TrafficCounters) {
        guard let caps = pad.currentCaps ?? Optional(pad.queryCaps()), let structure = caps.structure(at: 0),
              let media = structure["media"]?.stringValue, let kind = MediaKind(rawValue: media) else { return nil }
        self.kind = kind
        self.encodingName = structure["encoding-name"]?.stringValue?.uppercased() ?? "?"
        self.payloadType = structure["payload"]?.intValue
        self.pad = pad
        self.pipeline = pipeline
        self.name = "\(namePrefix)-\(pad.name)"
        keyframes = KeyframeRequestThrottle(interval: Self.keyframeRequestInterval) { [weak pad] in
            guard kind == .video else { return }
            // Not all-headers: rtpsession then sends a PLI, as browsers do. With all-headers it sends a FIR
            // whenever the far side offered `ccm fir`, and some (Janus VideoRoom) offer it and ignore it.
            pad?.sendEvent(.upstreamForceKeyUnit(allHeaders: false))
        }
        let counter = counters.counter(for: kind)
        // Count frames as RTP timestamps change: every packet of one frame carries the same timestamp.
        pad.addProbe(.buffer) { info in
            if let header = info.rtpHeader { counter.observe(timestamp: header.timestamp) }
            return .ok
        }
        state = Mutex(State(hold: pad.addProbe(.blockDownstream) { _ in .ok }.map { .holding($0) } ?? .released))
        Task { [weak self] in
            try? await Task.sleep(for: Self.holdLimit)
            self?.stopHolding()
        }
    }

    /// The mid of the m-line the track arrives on (webrtcbin's transceiver of the pad).
    public var mid: String? {
        guard let transceiver = try? pad.get("transceiver").objectValue else { return nil }
        return try? transceiver.get("mid").stringValue
    }

    public var description: String { "\(kind) \(encodingName)/\(payloadType.map(String.init) ?? "?") on \(pad.name)" }

    /// Nobody attached in time: drop the track's data from now on instead of holding it.
    private func stopHolding() {
        state.withLock { state in
            guard case .holding(let token) = state.hold else { return }
            guard state.attachments == 0 else {
                // Attached, still gathering: let it through.
                pad.removeProbe(token)
                state.hold = .released
                return
            }
            let dropping = pad.addProbe([.buffer, .bufferList]) { _ in .drop }
            pad.removeProbe(token)
            state.hold = dropping.map { .dropping($0) } ?? .released
        }
    }

    /// Links `sink` to the track. The first attachment lets the held data through; every attachment asks
    /// the sender for a keyframe (throttled), so the new consumer does not wait for the next periodic one.
    ///
    /// `gathering`: a consumer that is one of several starting together (a participant's own recording
    /// and the composite) keeps the held data back that much longer, so that the others, attaching
    /// meanwhile, get its keyframe too instead of each waiting for a requested one.
    public func attach(_ sink: Pad, gathering: Duration = .zero) throws(GStreamerError) -> TrackAttachment {
        let teePad: Pad = try state.withLock { state throws(GStreamerError) -> Pad in
            guard !state.closed else { throw .invalidArgument("\(self) has ended: its peer connection is closed") }
            let tee: Element
            if let existing = state.tee {
                tee = existing
            } else {
                tee = try makeTee()
                state.tee = tee
            }
            let teePad = try tee.requestPad("src_%u")
            do throws(GStreamerError) {
                try teePad.link(sink)
            } catch {
                tee.releaseRequestPad(teePad)
                throw error
            }
            state.attachments += 1
            switch state.hold {
            case .holding where gathering > .zero:
                break
            case .holding(let token), .dropping(let token):
                pad.removeProbe(token)
                state.hold = .released
            case .released:
                break
            }
            return teePad
        }
        if gathering > .zero {
            Task { [weak self] in
                try? await Task.sleep(for: gathering)
                self?.releaseHold()
            }
        }
        requestKeyframe()
        return TrackAttachment(track: self, teePad: teePad, sink: sink)
    }

    /// Lets held data through (the end of an attachment's `gathering`).
    private func releaseHold() {
        state.withLock { state in
            guard !state.closed, state.attachments > 0, case .holding(let token) = state.hold else { return }
            pad.removeProbe(token)
            state.hold = .released
        }
    }

    /// `tee allow-not-linked=true`, started and linked to webrtcbin's pad; keyframe requests from consumers
    /// stop at its sink pad and go through the throttle.
    private func makeTee() throws(GStreamerError) -> Element {
        let tee = try Element(factory: "tee", name: "\(name)-tee")
        try tee.set("allow-not-linked", true)
        try pipeline.add(tee)
        guard let input = tee.staticPad("sink") else { throw .link("the tee of \(self) has no sink pad") }
        let keyframes = self.keyframes
        input.addProbe(.eventUpstream) { info in
            guard info.event?.isForceKeyUnit == true else { return .ok }
            keyframes.request()
            return .drop
        }
        try tee.syncStateWithParent()
        try pad.link(input)
        return tee
    }

    fileprivate func detach(_ teePad: Pad, from sink: Pad) {
        state.withLock { state in
            guard !state.closed, let tee = state.tee else { return }
            try? teePad.unlink(sink)
            tee.releaseRequestPad(teePad)
            state.attachments -= 1
        }
    }

    /// Consumers attached now.
    public var attachmentCount: Int { state.withLock { $0.attachments } }

    /// Asks the sender for a keyframe (webrtcbin sends it a PLI), at most once per `keyframeRequestInterval`.
    public func requestKeyframe() { keyframes.request() }

    /// PLIs sent for this track so far.
    public var keyframeRequestsSent: Int { keyframes.sentCount }

    /// Removes the tee, after webrtcbin stopped (`WebRTCPeer.close`). Consumers keep their own elements.
    func close() {
        keyframes.stop()
        let tee: Element? = state.withLock { state in
            state.closed = true
            defer { state.tee = nil }
            return state.tee
        }
        guard let tee else { return }
        if let input = tee.staticPad("sink") { try? pad.unlink(input) }
        _ = try? tee.setState(.null)
        try? pipeline.remove(tee)
    }
}

/// A consumer's link to a `ReceivedTrack`; `detach()` unlinks it (once; again does nothing).
public final class TrackAttachment: Sendable {
    public let track: ReceivedTrack
    private let teePad: Pad
    private let sink: Pad
    private let detached = Atomic<Bool>(false)

    fileprivate init(track: ReceivedTrack, teePad: Pad, sink: Pad) {
        self.track = track
        self.teePad = teePad
        self.sink = sink
    }

    /// Unlinks the consumer; the track goes on for the others. Data the consumer's elements hold stays theirs.
    public func detach() {
        guard !detached.exchange(true, ordering: .acquiringAndReleasing) else { return }
        track.detach(teePad, from: sink)
    }
}
