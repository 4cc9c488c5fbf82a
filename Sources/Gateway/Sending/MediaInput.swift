import Foundation
import GStreamer
import Synchronization
import WebRTC

/// One kind of media (video or audio) the gateway sends, encoded once inside a pipeline:
///
/// ```
/// source slot ──► normalize ──────────────────────────────────────► encoder ──► tee ──► one branch per peer
/// (a pipelines/ file)  video: videorate ! videoconvert ! videoscale ! fixed caps ! queue ! vp8enc
///                      audio: audioconvert ! audioresample ! fixed caps ! volume ! opusenc
/// ```
///
/// Everything after the slot has fixed caps, so `swap(to:)` can replace the source mid-call (camera →
/// screen → black) without a new offer: the far side keeps decoding, and a keyframe follows each swap.
///
/// `none` at start: the gateway adds **no** `MediaInput` and no track for `--video none` / `--audio none`
/// (nothing to send, nothing to negotiate). A `MediaInput` created with `none` sends black frames or
/// silence, which is how to start "off" and still be able to switch on later without renegotiating;
/// `swap(to: "none")` mid-call does the same.
///
/// ```swift
/// let video = try MediaInput(kind: .video, source: "test", library: try PipelineLibrary(), pipeline: pipeline)
/// try await peer.addTrack(video.codec, from: video.tee)
/// try await video.swap(to: "screen")      // no renegotiation
/// ```
public final class MediaInput: Sendable {
    /// Encoding settings. The defaults suit a live call at 720p.
    public struct Options: Sendable {
        public var width = 1280
        public var height = 720
        public var framerate = 30
        /// VP8's target bitrate, in bits per second.
        public var videoBitrate = 1_500_000
        /// The longest run between keyframes, in seconds (peers ask for more with PLIs).
        public var keyframeIntervalSeconds = 3
        /// vp8enc's speed/quality trade-off (0…16; higher is faster).
        public var cpuUsed = 8
        /// vp8enc's threads. One below four cores: libvpx's threads wait for each other by spinning, so on a
        /// 2-core machine that is also busy with anything else (a browser, the peers' DTLS and SRTP, a
        /// recording) a frame now and then took 300–700 ms instead of 5 (p95 126–310 ms with two threads,
        /// 22–39 ms with one, measured while peers joined). Those stalls froze every peer's video and held
        /// back the keyframe a joining peer waits for. One thread encodes 720p in about 4 ms a frame.
        public var encoderThreads = ProcessInfo.processInfo.activeProcessorCount >= 4
            ? min(4, ProcessInfo.processInfo.activeProcessorCount / 2) : 1
        /// Opus's bitrate, in bits per second.
        public var audioBitrate = 64_000
        /// How long a swapped-in source may take to deliver its first buffer before the swap is rolled back.
        public var startTimeout: Duration = .seconds(3)
        /// Element name prefix (defaults to the kind): give two inputs of one kind in a pipeline different names.
        public var name: String?

        public init() {}
    }

    /// Counts of what left the encoder, for logs and tests.
    public struct Statistics: Sendable {
        public var encodedBuffers = 0
        public var keyframes = 0
        /// Encoded buffers whose timestamp was not after the previous one's.
        public var timestampRegressions = 0
        public var lastTimestamp: UInt64?
        /// Completed swaps (rolled-back ones excluded).
        public var swaps = 0
    }

    public let kind: MediaKind
    /// What the tee carries: VP8 for video, Opus for audio.
    public let codec: Codec
    /// Where peers take the encoded stream from (`WebRTCPeer.addTrack(codec, from: tee)`).
    public let tee: Element
    public let pipeline: Pipeline
    public let library: PipelineLibrary
    public let options: Options
    /// The element name prefix.
    public let name: String

    private let encoder: Element
    private let volume: Element?
    /// The sink pad sources link to: the first element of the normalize chain.
    private let slot: Pad

    private struct Source: Sendable {
        let name: String
        let bin: Bin
        let pad: Pad
    }
    private struct State {
        var current: Source
        var sources = 0
        var lastSwap: Task<Void, Never>?
        var statistics = Statistics()
        var muted = false
    }
    private let state: Mutex<State>

    /// Builds `source → normalize → encoder → tee` in `pipeline` and starts it if the pipeline runs.
    /// `parameters` fill the source's `${…}` (see `PipelineLibrary`); a missing camera or display throws
    /// `GatewayError.source` saying what to do.
    public init(kind: MediaKind, source: String, library: PipelineLibrary, pipeline: Pipeline,
                parameters: [String: String] = [:], options: Options = Options()) throws {
        try GStreamer.initialize()
        self.kind = kind
        self.codec = kind == .video ? .vp8 : .opus
        self.library = library
        self.pipeline = pipeline
        self.options = options
        let name = options.name ?? kind.rawValue
        self.name = name

        let chain: [Element]
        do {
            chain = try Self.makeChain(kind: kind, name: name, options: options)
        } catch {
            throw GatewayError.source("cannot build the \(kind) encoder: \(error)")
        }
        tee = chain.last!
        encoder = chain[chain.count - 2]
        volume = chain.first { $0.factoryName == "volume" }
        slot = chain.first!.staticPad("sink")!

        let resolved = try library.resolve(source, kind: kind, parameters: parameters)
        let first = try Self.makeSource(resolved, kind: kind, number: 0, prefix: name, slot: slot)
        state = Mutex(State(current: first, sources: 1))
        installCounters()

        var added: [Element] = []
        do {
            for element in chain { try pipeline.add(element); added.append(element) }
            try pipeline.add(first.bin)
            added.append(first.bin)
            for (upstream, downstream) in zip(chain, chain.dropFirst()) { try upstream.link(downstream) }
            try first.pad.link(slot)
            if pipeline.currentState != .null {
                for element in chain.reversed() { try element.syncStateWithParent() }
                try first.bin.setState(pipeline.currentState)
            }
        } catch {
            for element in added.reversed() {
                _ = try? element.setState(.null)
                try? pipeline.remove(element)
            }
            throw Self.startFailure(error, resolved: resolved, kind: kind, bin: first.bin, keeping: nil)
        }
    }

    // MARK: Building

    private static func makeChain(kind: MediaKind, name: String, options: Options) throws -> [Element] {
        func make(_ factory: String, _ role: String) throws -> Element { try Element(factory: factory, name: "\(name)-\(role)") }
        if kind == .video {
            let rate = try make("videorate", "rate")
            // Without it, a source that starts late would be preceded by duplicates from time 0.
            try rate.set("skip-to-first", true)
            let convert = try make("videoconvert", "convert")
            let scale = try make("videoscale", "scale")
            try scale.set("add-borders", true)
            let caps = try make("capsfilter", "caps")
            // Every field fixed: a swap to a source of another size, format or colour space changes nothing downstream.
            try caps.set("caps", value: .caps(try fixedVideoCaps(width: options.width, height: options.height, framerate: options.framerate)))
            // The encoder runs on its own thread; if it falls behind, old raw frames are dropped, not queued.
            let queue = try Element.leakyQueue(name: "\(name)-queue", maxBuffers: 2)
            let encoder = try make("vp8enc", "encoder")
            try encoder.set("deadline", 1)
            try encoder.set("cpu-used", options.cpuUsed)
            try encoder.set("end-usage", "cbr")
            try encoder.set("target-bitrate", options.videoBitrate)
            try encoder.set("keyframe-max-dist", options.framerate * options.keyframeIntervalSeconds)
            try encoder.set("error-resilient", "default+partitions")
            try encoder.set("lag-in-frames", 0)
            try encoder.set("threads", options.encoderThreads)
            let tee = try make("tee", "tee")
            try tee.set("allow-not-linked", true)
            return [rate, convert, scale, caps, queue, encoder, tee]
        } else {
            let convert = try make("audioconvert", "convert")
            let resample = try make("audioresample", "resample")
            let caps = try make("capsfilter", "caps")
            try caps.set("caps", value: .caps(try Caps("audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2")))
            let volume = try make("volume", "volume")
            let encoder = try make("opusenc", "encoder")
            try encoder.set("bitrate", options.audioBitrate)
            let tee = try make("tee", "tee")
            try tee.set("allow-not-linked", true)
            return [convert, resample, caps, volume, encoder, tee]
        }
    }

    /// Builds a source bin (not yet added) from a resolved pipeline, after checking the camera or display it needs.
    private static func makeSource(_ resolved: PipelineLibrary.Resolved, kind: MediaKind, number: Int, prefix: String,
                                   slot: Pad) throws -> Source {
        let bin: Bin
        do {
            bin = try Bin(launch: resolved.description, ghostUnlinkedPads: true, name: "\(prefix)-source-\(number)")
        } catch {
            throw GatewayError.source("cannot build \(origin(resolved, kind)): \(error); fix the file or install the plugin it uses")
        }
        try preflight(bin, resolved: resolved, kind: kind)
        guard let pad = bin.staticPad("src"), bin.pads.count == 1 else {
            throw GatewayError.source("\(origin(resolved, kind)) must be a source with one unlinked output (it has \(bin.pads.count) unlinked pads): end it with the source's last element")
        }
        // A source swapped in continues the stream already flowing: its stream-start and segment are left out,
        // so downstream (videorate, the encoders, the payloaders) sees one continuous live stream. Live sources
        // stamp buffers in the pipeline's running time, so timestamps carry on where the old source stopped.
        // (Measured: letting them through makes every video swap produce one encoded frame whose PTS goes back.)
        pad.addProbe(.eventDownstream) { info in
            guard let type = info.event?.stickyType, type != .caps else { return .ok }
            return slot.hasStickyEvent(type) ? .drop : .ok
        }
        return Source(name: resolved.name, bin: bin, pad: pad)
    }

    /// Checks up front what GStreamer would only report vaguely: that a camera's device exists and a display is there.
    private static func preflight(_ bin: Bin, resolved: PipelineLibrary.Resolved, kind: MediaKind) throws {
        for element in bin.allElements {
            switch element.factoryName {
            case "v4l2src":
                let device = (try? element.get("device").stringValue) ?? "/dev/video0"
                guard FileManager.default.fileExists(atPath: device) else {
                    throw GatewayError.source("no camera at \(device): connect one or pass another device (--device), or use --video test or --video screen")
                }
            case "ximagesrc":
                let display = (try? element.get("display-name").stringValue).flatMap { $0.isEmpty ? nil : $0 }
                    ?? ProcessInfo.processInfo.environment["DISPLAY"].flatMap { $0.isEmpty ? nil : $0 }
                guard let display else {
                    throw GatewayError.source("no display to capture: $DISPLAY is not set; start an X server (for example Xvfb :99) and set DISPLAY, or use --video test")
                }
                if let socket = localDisplaySocket(display), !FileManager.default.fileExists(atPath: socket) {
                    throw GatewayError.source("no X server at display \(display) (no \(socket)): start one or set DISPLAY to a running one, or use --video test")
                }
            default:
                break
            }
        }
    }

    /// The Unix socket of a local X display (`:99`, `:99.0`, `unix:99`), or nil for a remote one.
    static func localDisplaySocket(_ display: String) -> String? {
        guard let colon = display.lastIndex(of: ":") else { return nil }
        let host = display[..<colon]
        guard host.isEmpty || host == "unix" else { return nil }
        let number = display[display.index(after: colon)...].prefix { $0.isNumber }
        guard !number.isEmpty else { return nil }
        return "/tmp/.X11-unix/X\(number)"
    }

    private static func origin(_ resolved: PipelineLibrary.Resolved, _ kind: MediaKind) -> String {
        PipelineLibrary.isPath(resolved.name) ? resolved.file.path : "the \(kind) source '\(resolved.name)'"
    }

    /// A user-facing error for a source (of `bin`) that failed to start, with what to do about it.
    private static func startFailure(_ error: Error, resolved: PipelineLibrary.Resolved, kind: MediaKind, bin: Bin,
                                     keeping current: String?) -> GatewayError {
        if let error = error as? GatewayError { return error }
        var reason = "\(error)"
        switch error {
        case let failure as WaitFailure:
            reason = failure.message
        case GStreamerError.stateChange(_, _, let cause?):
            // GStreamer's own words, without the element and debug text that follow in its description.
            reason = cause.message
        case GStreamerError.padLink(.noFormat, _):
            reason = "its output is not raw \(kind.rawValue)"
        default:
            break
        }
        let factories = Set(bin.allElements.compactMap(\.factoryName))
        let advice: String
        if factories.contains("v4l2src") {
            advice = "check the camera (--device) or use --video test or --video screen"
        } else if factories.contains("ximagesrc") {
            advice = "check that DISPLAY names a running X server, or use --video test"
        } else if factories.contains("pulsesrc") {
            advice = "check that PulseAudio (or PipeWire) runs and the device exists (pactl list short sources), or use --audio test"
        } else {
            advice = kind == .video ? "fix the pipeline or use --video test" : "fix the pipeline or use --audio test"
        }
        let keeping = current.map { "; still sending '\($0)'" } ?? ""
        return .source("\(origin(resolved, kind)) did not start (\(reason)): \(advice)\(keeping)")
    }

    private func installCounters() {
        guard let output = encoder.staticPad("src") else { return }
        output.addProbe(.buffer) { [weak self] info in
            guard let self, let buffer = info.buffer else { return .ok }
            self.state.withLock { state in
                state.statistics.encodedBuffers += 1
                if !buffer.isDeltaUnit { state.statistics.keyframes += 1 }
                if let pts = buffer.pts {
                    if let last = state.statistics.lastTimestamp, pts <= last { state.statistics.timestampRegressions += 1 }
                    state.statistics.lastTimestamp = pts
                }
            }
            return .ok
        }
    }

    // MARK: Using

    /// The source sending now: a library name (`test`, `screen`, …) or a file's path.
    public var currentSource: String { state.withLock { $0.current.name } }

    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// The caps the tee carries (nil before the first buffer). They stay the same across swaps.
    public var encodedCaps: Caps? { tee.staticPad("sink")?.currentCaps }

    /// Asks the encoder for a keyframe now (video; audio has none).
    public func forceKeyframe() {
        guard kind == .video else { return }
        encoder.staticPad("src")?.sendEvent(.upstreamForceKeyUnit(allHeaders: true))
    }

    /// Mutes or unmutes audio (silence is still sent, so the track and its timing stay).
    public func mute(_ muted: Bool) throws {
        guard let volume else {
            throw GatewayError.usage("only audio can be muted: to stop sending video, swap to the 'none' source")
        }
        try volume.set("mute", muted)
        state.withLock { $0.muted = muted }
    }

    public var isMuted: Bool { state.withLock { $0.muted } }

    /// Replaces the source while media flows: the old source's pad is blocked, the new source is linked
    /// into the slot in its place and started; once its first buffer arrives the old one is stopped and
    /// removed, and the encoder makes a keyframe. If the new source fails (no camera, no display, an error
    /// or no data within `options.startTimeout`), everything is put back, the old source carries on and
    /// this throws `GatewayError.source`. Swaps run one at a time, in call order.
    public func swap(to source: String, parameters: [String: String] = [:]) async throws {
        let task: Task<Void, Error> = state.withLock { state in
            let previous = state.lastSwap
            let task = Task {
                await previous?.value
                try await self.performSwap(to: source, parameters: parameters)
            }
            state.lastSwap = Task { _ = await task.result }
            return task
        }
        try await task.value
    }

    private func performSwap(to source: String, parameters: [String: String]) async throws {
        let resolved = try library.resolve(source, kind: kind, parameters: parameters)
        let (old, number) = state.withLock { state in
            defer { state.sources += 1 }
            return (state.current, state.sources)
        }
        let new = try Self.makeSource(resolved, kind: kind, number: number, prefix: name, slot: slot)
        let slot = self.slot

        guard old.bin.currentState == .playing else {
            // Nothing flows (the pipeline is not playing): relink directly; the new source follows the
            // pipeline's state when it starts. On failure the old source stays linked.
            do {
                try pipeline.add(new.bin)
                try old.pad.unlink(slot)
                do {
                    try new.pad.link(slot)
                } catch {
                    try? old.pad.link(slot)
                    throw error
                }
                if pipeline.currentState != .null { try new.bin.setState(pipeline.currentState) }
            } catch {
                if !old.pad.isLinked { try? new.pad.unlink(slot); try? old.pad.link(slot) }
                _ = try? new.bin.setState(.null)
                try? pipeline.remove(new.bin)
                throw Self.startFailure(error, resolved: resolved, kind: kind, bin: new.bin, keeping: old.name)
            }
            _ = try? old.bin.setState(.null)
            try? pipeline.remove(old.bin)
            state.withLock { $0.current = new; $0.statistics.swaps += 1 }
            return
        }

        try pipeline.add(new.bin)
        let newElements = Set(new.bin.allElements.map(\.name) + [new.bin.name])
        let started = OneShot()
        new.pad.addProbe([.buffer, .bufferList]) { _ in
            started.succeed()
            return .remove
        }
        let errors = pipeline.messages()
        let errorWatch = Task {
            for await message in errors {
                if case .error(let failure) = message, newElements.contains(failure.source) {
                    started.fail(failure.message)
                    return
                }
            }
        }
        defer { errorWatch.cancel() }

        // 1. Block the old source: a blocking probe holds its streaming thread at its next buffer or event
        //    (until the probe is removed or the pad flushes). An idle probe then swaps the links, at once if
        //    the pad is idle (between buffers, already held, or a stalled source) or right after the push in
        //    progress, on the streaming thread. An idle probe alone would not hold data back afterwards.
        guard let blocking = old.pad.addProbe(.blockDownstream, { _ in .ok }) else {
            try? pipeline.remove(new.bin)
            throw GatewayError.source("could not block \(old.name) to swap it: try again")
        }
        let relinked = OneShot()
        let kind = self.kind
        old.pad.addProbe(.idle) { info in
            let oldPad = info.pad
            do throws(GStreamerError) {
                try oldPad.unlink(slot)
                try new.pad.link(slot)
                relinked.succeed()
            } catch .padLink(.noFormat, _) {
                if !oldPad.isLinked { try? oldPad.link(slot) }
                relinked.fail("its output is not raw \(kind.rawValue)")
            } catch {
                if !oldPad.isLinked { try? oldPad.link(slot) }
                relinked.fail("\(error)")
            }
            return .remove
        }
        do {
            try await relinked.wait(timeout: .seconds(3), what: "the old source's pad to become idle")
        } catch {
            // The links are as they were (or the idle probe is still waiting: then nothing changed yet).
            old.pad.removeProbe(blocking)
            try? pipeline.remove(new.bin)
            throw Self.startFailure(error, resolved: resolved, kind: kind, bin: new.bin, keeping: old.name)
        }

        // 2. Start the new source (from here, not a streaming thread) and wait for its first buffer.
        do {
            try new.bin.setState(.playing)
            try await started.wait(timeout: options.startTimeout, what: "the first buffer")
        } catch {
            // 3a. Roll back: the old source, held and still PLAYING, takes the slot again and is released;
            //     its stream-start and segment are left out again, its caps are sent again.
            _ = try? new.bin.setState(.null)
            try? new.pad.unlink(slot)
            try? old.pad.link(slot)
            old.pad.removeProbe(blocking)
            try? pipeline.remove(new.bin)
            throw Self.startFailure(error, resolved: resolved, kind: kind, bin: new.bin, keeping: old.name)
        }

        // 3b. Done: a keyframe for the new picture; the old source is released into a probe that drops
        //     everything (it is unlinked: a push would fail as not-linked and post an error), then stopped.
        forceKeyframe()
        state.withLock { $0.current = new; $0.statistics.swaps += 1 }
        old.pad.addProbe(.dataDownstream) { _ in .drop }
        old.pad.removeProbe(blocking)
        _ = try? old.bin.setState(.null)
        try? pipeline.remove(old.bin)
    }
}

/// Raw video caps with every field fixed (size, rate, format, colour space, …): whatever the source or
/// the mix changes upstream, an encoder behind them never sees new caps, and a muxer never has to
/// refuse a caps change (webmmux cannot take one).
///
/// `colorimetry` and `chromaSite`: what the pictures are converted to. The sources' default is BT.601 with
/// JPEG siting; the composite takes what the VP8 decoder gives (BT.709, MPEG-2 siting), since converting
/// every decoded picture nearly doubled the compositor's cost.
func fixedVideoCaps(width: Int, height: Int, framerate: Int?, colorimetry: String = "bt601",
                    chromaSite: String = "jpeg") throws(GStreamerError) -> Caps {
    try Caps("""
        video/x-raw,format=I420,width=\(width),height=\(height)\(framerate.map { ",framerate=\($0)/1" } ?? ""),\
        pixel-aspect-ratio=1/1,interlace-mode=progressive,colorimetry=\(colorimetry),chroma-site=\(chromaSite),\
        multiview-mode=mono,multiview-flags=(GstVideoMultiviewFlagsSet)0:ffffffff
        """)
}
