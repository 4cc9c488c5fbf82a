import Foundation
import Recordings
import GStreamer
import Logging
import SignalingProtocol
import Synchronization
import WebRTC

/// The meeting as one file: every participant's video on a grid that re-flows as people come and go,
/// everyone's audio mixed, in `DIR/ROOM-composite-UTCSTART.webm` (plus its JSON report), inside the
/// gateway's own pipeline.
///
/// ```
/// videotestsrc (black, live) ─ compositor ! caps (W×H, 30 fps) ─[gate]─ queue (leaky) ! vp8enc ─ webmmux ! filesink
///        CompositeInput × N ─┘                                                                   │
/// audiotestsrc (silence) ─ audiomixer ! caps ─[gate]─ queue (leaky) ! opusenc ───────────────────┘
/// ```
///
/// - **Live and never in the way.** The black and silent sources keep both mixers producing on the
///   clock, with or without participants, so nobody's absence stalls the file. The mixers wait at most
///   `latency` for a participant's frame; what comes later is dropped by the mixer, not waited for. Every
///   input begins with a leaky queue (see `CompositeInput`), and the encoders sit behind leaky queues:
///   under overload composite frames are dropped (and counted in the report), never the call's.
/// - **Starts with the first picture.** Nothing is written until the first participant's first decoded
///   frame; the file's time zero is that frame's running time, and audio before it is left out. A
///   participant joining later appears at their moment in the file, since every input runs on the
///   pipeline's one clock.
/// - **Names, and no frozen pictures.** Each cell is labelled with its participant's name; a participant
///   whose camera is off (`media-state`) or whose video has not moved for `stallTimeout` shows a name
///   tile instead. While someone shares their screen, they get the large area and the others a strip.
/// - **Finalized and crash-safe** as the per-participant files: `WebMFormat`'s clusters and unbuffered
///   writes; `stop()` ends the file with EOS (bounded by `finalizeTimeout`); `vcall-gateway repair` mends a killed one.
public actor CompositeRecorder {
    public struct Options: Sendable {
        /// `grid` (everyone alike, a shared screen large) or `speaker` (whoever is talking large).
        public var layout = LayoutMode.grid
        /// The speaker layout: how long someone must be the loudest voice before they take the large
        /// area (so that a cough or two people talking at once does not make the picture flicker).
        public var speakerHold: Duration = .seconds(1)
        /// The speaker layout: a voice quieter than this (dBFS, smoothed over about 300 ms) is not talking.
        public var speakingThreshold = -50.0
        public var width = 1280
        public var height = 720
        public var framerate = 30
        public var videoBitrate = 2_500_000
        public var audioBitrate = 96_000
        /// vp8enc's speed/quality trade-off (0…16; higher is faster), realtime deadline.
        public var cpuUsed = 8
        /// A keyframe at least this often, so a player seeks within that much of any mark.
        public var keyframeIntervalSeconds = 2
        /// How long the mixers wait for a participant's frame or audio: above the receive jitterbuffer's
        /// latency (200 ms by default) plus decoding.
        public var latency: Duration = .milliseconds(400)
        /// A participant whose last frame is older than this shows their name tile.
        public var stallTimeout: Duration = .seconds(1)
        /// If nobody's picture has come this long after the first participant was added, the file starts
        /// anyway (with name tiles): an audio-only meeting is recorded too.
        public var startTimeout: Duration = .seconds(3)
        public var finalizeTimeout: Duration = .seconds(5)
        /// How long `stop()` waits past `latency` (and a second more) for the mix to reach the moment of
        /// the stop request, the file's end, before ending the file anyway.
        public var drain: Duration = .milliseconds(300)

        public init() {}
    }

    /// How the composite arranges people (`--layout`).
    public enum LayoutMode: String, Sendable, CaseIterable {
        /// A grid; someone sharing their screen gets the large area.
        case grid
        /// Whoever is talking gets the large area (a shared screen still comes first); a grid until
        /// someone talks.
        case speaker
    }

    static let audioCaps = "audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2"

    /// Every picture in the composite, the inputs' and the output's, in the colour space the VP8 decoder
    /// gives: the compositor then blends without converting (see `fixedVideoCaps`).
    static func pictureCaps(width: Int, height: Int, framerate: Int?) throws(GStreamerError) -> Caps {
        try fixedVideoCaps(width: width, height: height, framerate: framerate, colorimetry: "bt709", chromaSite: "mpeg2")
    }

    public nonisolated let file: URL
    public nonisolated var reportFile: URL { RecordingReport.url(for: file) }
    public nonisolated let room: String
    public nonisolated let started: Date

    private nonisolated let pipeline: Pipeline
    private nonisolated let options: Options
    private nonisolated let logger: Logger
    private nonisolated let prefix: String
    private nonisolated let layout: CompositeLayout
    private nonisolated let compositor: Element
    private nonisolated let mixer: Element
    private nonisolated let elements: [Element]
    private nonisolated let videoInput: Pad
    private nonisolated let audioInput: Pad
    private nonisolated let sink: Element
    private nonisolated let counts: CompositeCounts

    private var inputs: [CompositeInput] = []
    private var subscriptions: [String: (tracks: ParticipantTracks, id: Int)] = [:]
    /// Everyone who was in the composite, in order of arrival (for the report).
    private var everyone: [RecordingReport.Participant] = []
    /// The speaker layout: who has the large area, and who has been the loudest since when.
    private var speaker: String?
    private var speakerCandidate: (id: String, since: ContinuousClock.Instant)?
    /// The accounts of everyone logged in who was in the room while it recorded: the report's `accounts`.
    private var accounts: Set<String> = []
    private var watchTask: Task<Void, Never>?
    private var startTask: Task<Void, Never>?
    private var stopTask: Task<RecordingReport, Never>?
    private var inputNumber = 0
    private var observerToken: BusObserverToken?
    private nonisolated let bus: Bus?

    private static let counter = Atomic<Int>(0)

    /// Builds the composite's mixers, encoders and file in `pipeline` (which must be playing) and starts
    /// them. Participants are added with `add(_:)`.
    public init(pipeline: Pipeline, directory: URL, room: String, options: Options = Options(),
                logger: Logger = Logger(label: "vcall.composite")) throws {
        try GStreamer.initialize()
        self.pipeline = pipeline
        self.room = room
        self.options = options
        self.started = Date()
        var logger = logger
        logger[metadataKey: "recording"] = "\(room)/composite"
        self.logger = logger
        layout = CompositeLayout(width: options.width & ~1, height: options.height & ~1)
        prefix = "\(ParticipantRecorder.elementNamePrefix)-composite\(Self.counter.add(1, ordering: .relaxed).newValue)"
        file = try ParticipantRecorder.makeFile(in: directory, room: room, participant: "composite", start: started)
        let prefix = self.prefix
        func make(_ factory: String, _ role: String) throws -> Element { try Element(factory: factory, name: "\(prefix)-\(role)") }
        let latency = Int(options.latency.components.seconds) * 1_000_000_000 + Int(options.latency.components.attoseconds / 1_000_000_000)
        do {
            let videoCaps = try Self.pictureCaps(width: layout.width, height: layout.height, framerate: options.framerate)
            let background = try make("videotestsrc", "background")
            try background.set("is-live", true)
            try background.set("pattern", "black")
            let backgroundCaps = try make("capsfilter", "background-caps")
            try backgroundCaps.set("caps", value: .caps(videoCaps))
            compositor = try make("compositor", "compositor")
            try compositor.set("background", "black")
            try compositor.set("start-time-selection", "first")
            try compositor.set("min-upstream-latency", UInt(latency))
            try compositor.set("ignore-inactive-pads", true)
            let outputCaps = try make("capsfilter", "video-caps")
            try outputCaps.set("caps", value: .caps(videoCaps))
            // A second of pictures: the compositor gives frames in bursts (when a late input's frames arrive,
            // every output frame they were waited for goes at once), and the encoder catches up after one.
            // Only an encoder that stays behind for a second loses frames, the oldest first.
            let videoQueue = try Element.leakyQueue(name: "\(prefix)-video-encoder-queue", maxTime: .seconds(1))
            let videoEncoder = try make("vp8enc", "video-encoder")
            try videoEncoder.set("deadline", 1)
            try videoEncoder.set("cpu-used", options.cpuUsed)
            try videoEncoder.set("end-usage", "vbr")
            try videoEncoder.set("target-bitrate", options.videoBitrate)
            try videoEncoder.set("keyframe-max-dist", options.framerate * options.keyframeIntervalSeconds)
            try videoEncoder.set("lag-in-frames", 0)
            try videoEncoder.set("threads", 1)

            let silence = try make("audiotestsrc", "silence")
            try silence.set("is-live", true)
            try silence.set("wave", "silence")
            try silence.set("samplesperbuffer", 960)
            let silenceCaps = try make("capsfilter", "silence-caps")
            try silenceCaps.set("caps", value: .caps(try Caps(Self.audioCaps)))
            mixer = try make("audiomixer", "mixer")
            try mixer.set("start-time-selection", "first")
            try mixer.set("min-upstream-latency", UInt(latency))
            try mixer.set("ignore-inactive-pads", true)
            let mixedCaps = try make("capsfilter", "audio-caps")
            try mixedCaps.set("caps", value: .caps(try Caps(Self.audioCaps)))
            let audioQueue = try Element.leakyQueue(name: "\(prefix)-audio-encoder-queue", maxTime: .seconds(1))
            let audioEncoder = try make("opusenc", "audio-encoder")
            try audioEncoder.set("bitrate", options.audioBitrate)

            let mux = try make("webmmux", "webmmux")
            for property in WebMFormat.muxerProperties { try mux.set(property.name, value: property.value) }
            sink = try make("filesink", "filesink")
            try sink.set("location", file.path)
            for property in WebMFormat.sinkProperties { try sink.set(property.name, value: property.value) }

            elements = [sink, mux, videoEncoder, videoQueue, outputCaps, compositor, backgroundCaps, background,
                        audioEncoder, audioQueue, mixedCaps, mixer, silenceCaps, silence]
            for element in elements { try pipeline.add(element) }
            try mux.link(sink)
            for chain in [[background, backgroundCaps, compositor, outputCaps, videoQueue, videoEncoder],
                          [silence, silenceCaps, mixer, mixedCaps, audioQueue, audioEncoder]] {
                for (upstream, downstream) in zip(chain, chain.dropFirst()) { try upstream.link(downstream) }
            }
            try videoEncoder.staticPad("src")!.link(try mux.requestPad("video_%u"))
            try audioEncoder.staticPad("src")!.link(try mux.requestPad("audio_%u"))
            guard let videoInput = videoQueue.staticPad("sink"), let audioInput = audioQueue.staticPad("sink") else {
                throw GStreamerError.link("the composite's encoder queues have no pads")
            }
            self.videoInput = videoInput
            self.audioInput = audioInput
            // The gates: nothing before the first picture, nothing after stop; counted as it passes.
            let counts = CompositeCounts()
            self.counts = counts
            outputCaps.staticPad("src")?.addProbe(.buffer) { info in
                guard let buffer = info.buffer, let pts = buffer.pts else { return .drop }
                return counts.admitVideo(runningTime: info.pad.runningTime(of: pts)) ? .ok : .drop
            }
            mixedCaps.staticPad("src")?.addProbe(.buffer) { info in
                guard let buffer = info.buffer, let pts = buffer.pts else { return .drop }
                return counts.admitAudio(endRunningTime: info.pad.runningTime(of: pts + (buffer.duration ?? 0))) ? .ok : .drop
            }
            videoEncoder.staticPad("src")?.addProbe(.buffer) { info in
                if let buffer = info.buffer { counts.encodedVideo(keyframe: !buffer.isDeltaUnit) }
                return .ok
            }
            audioEncoder.staticPad("src")?.addProbe(.buffer) { _ in
                counts.encodedAudio()
                return .ok
            }
        } catch {
            try? FileManager.default.removeItem(at: file)
            throw GatewayError.recording("cannot set up the composite recording: \(error)")
        }
        do {
            for element in elements { try element.syncStateWithParent() }
        } catch {
            for element in elements { _ = try? element.setState(.null); try? pipeline.remove(element) }
            try? FileManager.default.removeItem(at: file)
            throw GatewayError.recording("cannot start the composite recording into \(file.path): \(error); check the folder's permissions or use --record DIR elsewhere")
        }
        bus = pipeline.bus
        writeProvisionalReport(accounts: [])
        logger.info("composite recording to \(file.path), \(layout.width)x\(layout.height) at \(options.framerate) fps")
    }

    /// Watches for errors of the composite's own elements (a full disk, a failed negotiation): from the
    /// first one, every input drops what it gets, so that no error flows back into the call's tracks,
    /// and the recording stops. Called once, right after init.
    public func watchForFailures() {
        let counts = self.counts
        let prefix = self.prefix
        observerToken = bus?.addSyncObserver { [weak self] message in
            // Runs on the posting thread: only flags and hands over, never blocks.
            guard case .error(let failure) = message, failure.source.hasPrefix(prefix + "-") else { return }
            if counts.fail(failure) { Task { await self?.handleFailure() } }
        }
    }

    private func handleFailure() async {
        guard let failure = counts.failure else { return }
        logger.error("the composite recording failed (\(failure.source): \(failure.message)); the call and the other recordings go on")
        await stop()
    }

    /// Notes accounts in the room. The provisional report is rewritten, so a file cut off later still says
    /// who may watch it.
    public func addAccounts(_ more: some Sequence<String>) {
        let before = accounts.count
        accounts.formUnion(more)
        if accounts.count != before, stopTask == nil { writeProvisionalReport(accounts: accounts) }
    }

    private nonisolated func writeProvisionalReport(accounts: Set<String>) {
        try? RecordingReport.provisional(participantID: RecordingReport.compositeParticipantID, displayName: "composite", room: room,
                                         file: file, start: started, accounts: accounts)
            .write(beside: file)
    }

    /// What the composite is doing now, for the status display.
    public nonisolated var status: RecordingStatus {
        let snapshot = counts.snapshot()
        let bytes = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        let failure = counts.failure
        return RecordingStatus(phase: failure != nil ? .failed : (counts.hasStarted ? .recording : .waitingForTracks), file: file,
                               duration: snapshot.duration, bytes: bytes, videoFrames: snapshot.videoFrames,
                               audioPackets: snapshot.audioPackets,
                               error: failure.map { GatewayError.recording("\($0.source): \($0.message)") })
    }

    /// How many participants are in the picture now.
    public var participantCount: Int { inputs.count }

    // MARK: Participants

    /// Adds a participant: a cell (with their name tile at once) and their tracks, now and as they come.
    public func add(_ tracks: ParticipantTracks) {
        guard stopTask == nil, subscriptions[tracks.participantID] == nil else { return }
        inputNumber += 1
        let input: CompositeInput
        do {
            input = try CompositeInput(participantID: tracks.participantID, displayName: tracks.displayName,
                                       cell: layout.cells(count: inputs.count + 1).last!, pipeline: pipeline,
                                       prefix: "\(prefix)-in\(inputNumber)", compositor: compositor, mixer: mixer, counts: counts,
                                       framerate: options.framerate)
        } catch {
            logger.error("cannot add \(tracks.displayName) to the composite: \(error)")
            return
        }
        inputs.append(input)
        everyone.append(.init(id: tracks.participantID, name: tracks.displayName))
        relayout()
        let subscription = tracks.subscribe { [weak self] track in
            Task { await self?.attach(track, of: tracks.participantID) }
        }
        subscriptions[tracks.participantID] = (tracks, subscription.id)
        for track in subscription.existing { attach(track, of: tracks.participantID) }
        if watchTask == nil { startWatching() }
        if startTask == nil {
            let timeout = options.startTimeout
            startTask = Task { [weak self] in
                try? await Task.sleep(for: timeout)
                await self?.startWithoutPicture()
            }
        }
        logger.info("\(tracks.displayName) is in the composite (\(inputs.count) participant(s))")
    }

    private func attach(_ track: ReceivedTrack, of participantID: String) {
        guard stopTask == nil, let input = inputs.first(where: { $0.participantID == participantID }) else { return }
        do {
            guard try input.attach(track) else {
                logger.warning("a second \(track.kind.rawValue) track of \(input.displayName) (\(track)) is not in the composite")
                return
            }
        } catch {
            logger.error("cannot put \(track) of \(input.displayName) into the composite: \(error)")
            return
        }
        if track.kind == .video, let output = input.videoOutput {
            let counts = self.counts
            output.addProbe(.buffer) { info in
                if let pts = info.buffer?.pts, let time = info.pad.runningTime(of: pts) { counts.picture(at: time) }
                return .remove
            }
        }
        logger.debug("composite: \(track) of \(input.displayName)")
    }

    /// Takes a participant out: their cell goes and the others re-flow.
    public func remove(participantID: String) {
        if let subscription = subscriptions.removeValue(forKey: participantID) {
            subscription.tracks.unsubscribe(subscription.id)
        }
        guard let index = inputs.firstIndex(where: { $0.participantID == participantID }) else { return }
        let input = inputs.remove(at: index)
        input.remove()
        relayout()
        logger.info("\(input.displayName) left the composite (\(inputs.count) participant(s))")
    }

    /// A participant's `media-state`: camera off shows their name tile; a shared screen gets the large area.
    public func setMediaState(_ state: MediaState, of participantID: String) {
        guard let input = inputs.first(where: { $0.participantID == participantID }) else { return }
        let wasScreen = input.mediaState?.screen ?? false
        input.mediaState = state
        if wasScreen != state.screen { relayout() }
        refreshVisibility()
    }

    private func relayout() {
        let featured = inputs.firstIndex { $0.mediaState?.screen == true }
            ?? speaker.flatMap { speaker in inputs.firstIndex { $0.participantID == speaker } }
        for (input, cell) in zip(inputs, layout.cells(count: inputs.count, featured: featured)) { input.move(to: cell) }
    }

    /// The speaker layout: the loudest voice above the threshold takes the large area once it has been the
    /// loudest for `speakerHold`; silence keeps the last speaker there.
    private func updateSpeaker() {
        guard options.layout == .speaker else { return }
        let loudest = inputs.map { ($0, $0.voiceLevel) }.filter { $0.1 > options.speakingThreshold }.max { $0.1 < $1.1 }?.0
        guard let loudest, loudest.participantID != speaker else {
            speakerCandidate = nil
            return
        }
        let now = ContinuousClock.now
        guard let candidate = speakerCandidate, candidate.id == loudest.participantID else {
            speakerCandidate = (loudest.participantID, now)
            return
        }
        guard now - candidate.since >= options.speakerHold else { return }
        speaker = loudest.participantID
        speakerCandidate = nil
        logger.info("composite: \(loudest.displayName) is speaking")
        relayout()
    }

    // MARK: Pictures or name tiles

    private func startWatching() {
        watchTask = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                await self?.refreshVisibility()
                await self?.updateSpeaker()
            }
        }
    }

    /// Shows each participant's picture while it moves and their camera is on; their name tile otherwise.
    private func refreshVisibility() {
        let now = UInt64(DispatchTime.now().uptimeNanoseconds)
        let (seconds, attoseconds) = options.stallTimeout.components
        let stall = UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
        for input in inputs {
            let last = input.lastFrame.load(ordering: .relaxed)
            // No frame yet draws nothing over the tile: keep the picture up, so the first frame shows at once.
            // A frame may land between reading `now` and `last` (its streaming thread stores it): then it is
            // newer than `now`, and moving.
            let moving = last == 0 || last >= now || now - last < stall
            input.showPicture(moving && (input.mediaState?.video != false || input.mediaState?.screen == true))
        }
    }

    private func startWithoutPicture() {
        guard stopTask == nil, let now = pipeline.currentRunningTime, counts.startIfNoPicture(at: now) else { return }
        logger.warning("no picture from anyone after \(options.startTimeout): the composite starts with name tiles")
    }

    // MARK: Stopping

    /// Finalizes the file and writes the report. Safe to call again: all callers get the same report.
    @discardableResult
    public func stop() async -> RecordingReport {
        if let stopTask { return await stopTask.value }
        let task = Task { await self.finish() }
        stopTask = task
        return await task.value
    }

    private func finish() async -> RecordingReport {
        let stopRequested = Date()
        startTask?.cancel()
        // The file ends at the moment of the stop request, by running time. The mixers produce `latency`
        // behind the clock, so what was shown and said just before it is still to come: wait for the
        // picture to pass that moment (bounded), then end.
        if counts.hasStarted, let now = pipeline.currentRunningTime {
            counts.end(at: now)
            let deadline = ContinuousClock.now + options.latency + options.drain + .seconds(1)
            while !counts.reachedEnd, counts.failure == nil, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        watchTask?.cancel()
        counts.close()
        var finalized = false
        if counts.hasStarted, counts.failure == nil {
            finalized = await WebMFormat.finalize(endingAt: sink, sendingEndOfStreamTo: [videoInput, audioInput],
                                                  timeout: options.finalizeTimeout)
            if !finalized {
                logger.warning("EOS did not reach \(file.lastPathComponent) within \(options.finalizeTimeout): run vcall-gateway repair \(file.path)")
            }
        }
        if let observerToken { bus?.removeSyncObserver(observerToken) }
        for (_, subscription) in subscriptions { subscription.tracks.unsubscribe(subscription.id) }
        subscriptions.removeAll()
        for input in inputs { input.remove() }
        inputs.removeAll()
        for element in elements {
            _ = try? element.setState(.null)
            try? pipeline.remove(element)
        }
        let snapshot = counts.snapshot()
        let written = finalized ? (try? WebMRepair.inspect(file))?.duration : nil
        let bytes = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        var report = RecordingReport(participantID: RecordingReport.compositeParticipantID, displayName: "composite", room: room, file: file.lastPathComponent,
                                     start: started, end: stopRequested, duration: written ?? snapshot.duration,
                                     videoCodec: snapshot.videoFrames > 0 ? "VP8" : nil, audioCodec: snapshot.audioPackets > 0 ? "OPUS" : nil,
                                     videoFrames: snapshot.videoFrames, keyframes: snapshot.keyframes, audioPackets: snapshot.audioPackets,
                                     videoGaps: [], bytes: bytes, finalizedCleanly: finalized,
                                     error: counts.failure.map { "\($0.source): \($0.message)" }
                                        ?? (counts.hasStarted ? nil : "nobody's media arrived: the file is empty"))
        report.participants = everyone
        report.accounts = accounts.isEmpty ? nil : accounts.sorted()
        report.framesDropped = max(0, snapshot.framesAdmitted - snapshot.videoFrames)
        if !counts.hasStarted {
            try? FileManager.default.removeItem(at: file)
            try? FileManager.default.removeItem(at: reportFile)
            logger.warning("nothing reached the composite; \(file.lastPathComponent) removed")
        } else {
            do {
                try report.write(beside: file)
            } catch {
                logger.error("cannot write \(reportFile.path): \(error.localizedDescription)")
            }
            logger.info("composite finished: \(String(format: "%.1f", report.duration)) s, \(report.videoFrames) frames, \(report.framesDropped ?? 0) dropped, \(everyone.count) participant(s)\(finalized ? "" : ", not finalized")")
        }
        return report
    }

    /// Stopped, or ended by a failure of its own.
    public var hasEnded: Bool { stopTask != nil }
}

/// What passes the composite's gates and leaves its encoders; written from streaming threads.
final class CompositeCounts: Sendable {
    struct Snapshot {
        var framesAdmitted = 0
        var videoFrames = 0
        var keyframes = 0
        var audioPackets = 0
        var duration: Double = 0
    }
    private struct State {
        /// Running time of the first picture: the file's time zero. nil until then.
        var start: UInt64?
        var closed = false
        var failure: BusError?
        /// Running time at which the file ends (the stop request), and whether the picture got there.
        var end: UInt64?
        var reachedEnd = false
        var lastVideo: UInt64 = 0
        var snapshot = Snapshot()
    }
    private let state = Mutex(State())

    var hasStarted: Bool { state.withLock { $0.start != nil } }
    var failure: BusError? { state.withLock { $0.failure } }

    /// Whether a participant's branch takes data: not after a failure (nor after stop).
    var admitsInput: Bool { state.withLock { $0.failure == nil && !$0.closed } }

    /// The first failure (true); later ones are only the same trouble spreading (false).
    func fail(_ failure: BusError) -> Bool {
        state.withLock { state in
            guard state.failure == nil else { return false }
            state.failure = failure
            return true
        }
    }

    /// A participant's frame reached the compositor at `time`: the first one starts the file.
    func picture(at time: UInt64) {
        state.withLock { state in
            if state.start == nil { state.start = time }
        }
    }

    /// Nobody's picture came: start at `time` with what there is. False if the file had started.
    func startIfNoPicture(at time: UInt64) -> Bool {
        state.withLock { state in
            guard state.start == nil else { return false }
            state.start = time
            return true
        }
    }

    func admitVideo(runningTime: UInt64?) -> Bool {
        state.withLock { state in
            guard !state.closed, state.failure == nil, let start = state.start, let time = runningTime, time >= start else { return false }
            if let end = state.end, time > end {
                state.reachedEnd = true
                return false
            }
            state.snapshot.framesAdmitted += 1
            state.lastVideo = time
            state.snapshot.duration = Double(time - start) / 1e9
            return true
        }
    }

    func admitAudio(endRunningTime: UInt64?) -> Bool {
        state.withLock { state in
            guard !state.closed, state.failure == nil, let start = state.start, let bufferEnd = endRunningTime, bufferEnd > start else { return false }
            return state.end.map { bufferEnd <= $0 + 20_000_000 } ?? true
        }
    }

    func encodedVideo(keyframe: Bool) {
        state.withLock { state in
            state.snapshot.videoFrames += 1
            if keyframe { state.snapshot.keyframes += 1 }
        }
    }

    func encodedAudio() { state.withLock { $0.snapshot.audioPackets += 1 } }

    /// The file ends at running time `time`: later frames and audio are left out.
    func end(at time: UInt64) { state.withLock { $0.end = time } }

    var reachedEnd: Bool { state.withLock { $0.reachedEnd } }

    /// From now on nothing passes the gates (EOS follows).
    func close() { state.withLock { $0.closed = true } }

    func snapshot() -> Snapshot { state.withLock { $0.snapshot } }
}
