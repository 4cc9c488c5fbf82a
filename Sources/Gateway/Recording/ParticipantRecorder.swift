import Foundation
import Recordings
import GStreamer
import Logging
import Synchronization
import WebRTC

/// Records one remote participant to `DIR/ROOM-PARTICIPANT-UTCSTART.webm`: VP8 (or VP9) video and Opus
/// audio muxed into WebM as received, without transcoding, with a JSON `RecordingReport` beside it.
///
/// Each of the participant's tracks gets a `RecorderBranch` into one webmmux:
/// ```
/// video track ─► queue (leaky) ─► rtpvp8depay wait-for-keyframe=true request-keyframe=true ─┐
/// audio track ─► queue (leaky) ─► rtpopusdepay ─► opusparse ───────────────────────────────┴► webmmux ─► filesink async=false
/// ```
/// - webmmux refuses caps that arrive after it wrote its headers, so every expected track is linked to
///   its own branch first; only then are the branches linked to the muxer and the data let in (until then
///   a blocking probe on each queue's src pad holds it, up to the queue's 3 s). If a track is missing after
///   `startTimeout`, the recording starts with what arrived (a video-only participant still records); a
///   track arriving later is not recorded.
/// - The file starts on a keyframe: the held data usually begins with the one the sender makes for a new
///   peer; if not, the depayloader asks for one (through its `ReceivedTrack`, which throttles); video
///   before the first keyframe is dropped, and so is audio timed before it, so audio and video line up
///   from the first cluster.
/// - `stop()` detaches the branches from their tracks and sends EOS into the recorder's branches only, waits
///   (bounded) until EOS reaches the filesink — webmmux has then written its Cues and duration — and
///   removes the recorder's elements. It may be called any number of times, from any task: when the
///   participant leaves, when the peer connection fails, on quit or SIGINT.
/// - A write error (a full disk) stops the recording without disturbing the call: a synchronous bus
///   observer sees the filesink's error before the flow error travels upstream, and from then on the
///   recorder's input probes drop everything, so the tee (and webrtcbin behind it) never sees the error.
///   The file keeps what was written; the report says what happened.
///
/// ```swift
/// let recorder = try await ParticipantRecorder.start(tracks: alice, pipeline: pipeline, directory: URL(filePath: "recordings"),
///                                                    room: "standup", expecting: [.video, .audio])
/// print(recorder.status)        // standup-Alice-20261121T203000Z.webm: recording, 4.2 s, 81234 bytes
/// let report = await recorder.stop()
/// ```
public actor ParticipantRecorder {
    /// Timing choices.
    public struct Options: Sendable {
        /// How long to wait for every expected track before recording what has arrived.
        public var startTimeout: Duration = .seconds(2)
        /// How long `stop()` waits for EOS to reach the file.
        public var finalizeTimeout: Duration = .seconds(5)
        /// How long `stop()` keeps recording first, so media still in the jitter buffer when it was called
        /// (webrtcbin's `latency`, 200 ms by default) reaches the file.
        public var drain: Duration = .milliseconds(300)

        public init() {}
    }

    /// Every element a recorder adds is named with this prefix; errors from such elements belong to a recorder,
    /// which handles them: a call's own bus watcher should not treat them as fatal to the call.
    public static let elementNamePrefix = "vcall-rec"

    /// Whether an element (by its name, as in `BusError.source`) belongs to a recorder.
    public static func owns(elementNamed name: String) -> Bool { name.hasPrefix(elementNamePrefix) }

    public nonisolated let file: URL
    public nonisolated var reportFile: URL { RecordingReport.url(for: file) }
    public nonisolated let room: String
    public nonisolated let participantID: String
    public nonisolated let displayName: String
    public nonisolated let expectedKinds: Set<MediaKind>
    public nonisolated let started: Date

    private nonisolated let tracks: ParticipantTracks
    private nonisolated let pipeline: Pipeline
    private nonisolated let options: Options
    private nonisolated let logger: Logger
    private nonisolated let prefix: String
    private nonisolated let shared: RecorderSharedState
    private nonisolated let mux: Element
    private nonisolated let sink: Element
    private nonisolated let bus: Bus?
    private nonisolated let lateTrack: @Sendable (ReceivedTrack) -> Void

    private var branches: [RecorderBranch] = []
    private var gateOpen = false
    private var startTimedOut = false
    private var stopping = false
    private var stopTask: Task<RecordingReport, Never>?
    /// The accounts of everyone logged in who was in the room while this file recorded: the report's `accounts`.
    private var accounts: Set<String> = []
    private var listenerID: Int?
    private var observerToken: BusObserverToken?
    private var timeoutTask: Task<Void, Never>?
    private var watchdogTask: Task<Void, Never>?

    private static let counter = Atomic<Int>(0)

    /// Starts recording the participant of `tracks` into a new file in `directory` (made if missing), with
    /// its elements in `pipeline` (the one holding the tracks' peer). `expecting` names the kinds the remote
    /// description announced; recording waits for them (bounded).
    ///
    /// `lateTrack` is called when a track of a kind the file does not hold arrives after the file began
    /// (a camera turned on later): webmmux cannot add a track to a started file, so the caller goes on in a
    /// new file (`GatewaySession` starts one with every track, then finalizes this one).
    public static func start(tracks: ParticipantTracks, pipeline: Pipeline, directory: URL, room: String, expecting kinds: Set<MediaKind>,
                             options: Options = Options(), logger: Logger = Logger(label: "vcall.recorder"),
                             lateTrack: @escaping @Sendable (ReceivedTrack) -> Void = { _ in }) async throws -> ParticipantRecorder {
        let recorder = try ParticipantRecorder(tracks: tracks, pipeline: pipeline, directory: directory, room: room, expecting: kinds,
                                               options: options, logger: logger, lateTrack: lateTrack)
        await recorder.begin()
        return recorder
    }

    private init(tracks: ParticipantTracks, pipeline: Pipeline, directory: URL, room: String, expecting kinds: Set<MediaKind>,
                 options: Options, logger: Logger, lateTrack: @escaping @Sendable (ReceivedTrack) -> Void) throws {
        try GStreamer.initialize()
        self.lateTrack = lateTrack
        self.tracks = tracks
        self.pipeline = pipeline
        self.room = room
        self.participantID = tracks.participantID
        self.displayName = tracks.displayName
        self.expectedKinds = kinds
        self.options = options
        self.started = Date()
        self.prefix = "\(Self.elementNamePrefix)\(Self.counter.add(1, ordering: .relaxed).newValue)"
        var logger = logger
        logger[metadataKey: "recording"] = "\(room)/\(tracks.displayName.isEmpty ? tracks.participantID : tracks.displayName)"
        self.logger = logger
        self.file = try Self.makeFile(in: directory, room: room, participant: tracks.displayName.isEmpty ? tracks.participantID : tracks.displayName,
                                      start: started)
        self.shared = RecorderSharedState()

        do {
            mux = try Element(factory: "webmmux", name: "\(prefix)-webmmux")
            for property in WebMFormat.muxerProperties { try mux.set(property.name, value: property.value) }
            sink = try Element(factory: "filesink", name: "\(prefix)-filesink")
            try sink.set("location", file.path)
            for property in WebMFormat.sinkProperties { try sink.set(property.name, value: property.value) }
            try pipeline.add(mux, sink)
            try mux.link(sink)
        } catch {
            try? FileManager.default.removeItem(at: file)
            throw GatewayError.recording("cannot set up the recording of \(tracks.participantID): \(error)")
        }
        do {
            try sink.syncStateWithParent()
            try mux.syncStateWithParent()
        } catch {
            for element in [mux, sink] { _ = try? element.setState(.null); try? pipeline.remove(element) }
            try? FileManager.default.removeItem(at: file)
            throw GatewayError.recording("cannot open \(file.path) for writing (\(error)); check the directory's permissions or use --record DIR elsewhere")
        }
        bus = pipeline.bus
    }

    /// Subscribes to the participant's tracks, attaches those already there, watches for write errors, arms the start timeout.
    private func begin() {
        let shared = self.shared
        let prefix = self.prefix
        observerToken = bus?.addSyncObserver { [weak self] message in
            // Runs on the thread that posts: only flags and hands over, never blocks.
            guard case .error(let failure) = message, failure.source.hasPrefix(prefix + "-") else { return }
            if shared.fail(failure) {
                Task { await self?.handleFailure() }
            }
        }
        let subscription = tracks.subscribe { [weak self] track in
            Task { await self?.attach(track) }
        }
        listenerID = subscription.id
        for track in subscription.existing { attach(track) }
        let timeout = options.startTimeout
        timeoutTask = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            await self?.startTimeoutElapsed()
        }
        writeProvisionalReport()
        logger.info("recording to \(file.path), waiting for \(expectedKinds.map(\.rawValue).sorted().joined(separator: " and "))")
    }

    /// Notes accounts in the room. The provisional report is rewritten, so a file cut off later still says
    /// who may watch it.
    public func addAccounts(_ more: some Sequence<String>) {
        let before = accounts.count
        accounts.formUnion(more)
        if accounts.count != before, stopTask == nil { writeProvisionalReport() }
    }

    private func writeProvisionalReport() {
        try? RecordingReport.provisional(participantID: participantID, displayName: displayName, room: room, file: file,
                                         start: started, accounts: accounts)
            .write(beside: file)
    }

    // MARK: Tracks

    private func attach(_ track: ReceivedTrack) {
        guard !stopping else { return }
        if gateOpen {
            if branches.contains(where: { $0.kind == track.kind }) {
                logger.warning("a second \(track.kind.rawValue) track (\(track)) is not recorded: a recording holds one of each kind")
            } else {
                // webmmux cannot add a track to a file it has begun: the caller goes on in a new file.
                logger.info("\(track) arrived after \(file.lastPathComponent) began: it goes into a new file")
                lateTrack(track)
            }
            return
        }
        guard !branches.contains(where: { $0.kind == track.kind }) else {
            logger.warning("a second \(track.kind.rawValue) track (\(track)) is not recorded: a recording holds one of each kind")
            return
        }
        do {
            branches.append(try RecorderBranch(track: track, pipeline: pipeline, namePrefix: prefix, shared: shared))
            logger.debug("linked \(track)")
        } catch {
            logger.error("cannot record \(track): \(error)")
            return
        }
        let kinds = Set(branches.map(\.kind))
        if expectedKinds.isSubset(of: kinds) || startTimedOut { openGate() }
    }

    private func startTimeoutElapsed() {
        guard !stopping, !gateOpen else { return }
        startTimedOut = true
        if branches.isEmpty {
            logger.warning("no track after \(options.startTimeout); recording starts with the first that arrives")
        } else {
            let missing = expectedKinds.subtracting(branches.map(\.kind)).map(\.rawValue).sorted()
            logger.warning("no \(missing.joined(separator: " or ")) track after \(options.startTimeout); recording \(branches.map(\.track.kind.rawValue).sorted().joined(separator: " and ")) only")
            openGate()
        }
    }

    /// Links every branch to the muxer, then lets data in and asks for a keyframe.
    private func openGate() {
        guard !gateOpen, !stopping else { return }
        timeoutTask?.cancel()
        let hasVideo = branches.contains { $0.kind == .video }
        shared.configure(audioWaitsForVideo: hasVideo,
                         videoCodec: branches.first { $0.kind == .video }?.track.encodingName,
                         audioCodec: branches.first { $0.kind == .audio }?.track.encodingName)
        for index in branches.indices {
            do {
                try branches[index].link(to: mux, shared: shared)
            } catch {
                logger.error("cannot link the \(branches[index].kind.rawValue) branch to the muxer: \(error)")
            }
        }
        gateOpen = true
        shared.openGate()
        for index in branches.indices { branches[index].release() }
        // The held data may start mid-GOP (a recording started during a call): the video depayloader then
        // asks for a keyframe on every frame it drops, and the track turns that into one request a second
        // until the keyframe comes. Asked here too, so the first request does not wait for the first frame.
        for branch in branches { branch.track.requestKeyframe() }
        logger.info("recording \(branches.map(\.track.description).joined(separator: ", "))")
        if branches.count > 1 {
            let wait = options.startTimeout
            watchdogTask = Task { [weak self] in
                try? await Task.sleep(for: wait)
                guard !Task.isCancelled else { return }
                await self?.retireSilentBranches()
            }
        }
    }

    /// webmmux writes nothing until every pad it has holds data: a track that sends nothing at all
    /// (a muted sender that stopped its packets) would hold back the whole file. After `startTimeout`,
    /// such a branch is ended (unlinked, EOS) so that the muxer goes on with the others.
    private func retireSilentBranches() {
        guard !stopping else { return }
        let seen = shared.kindsSeen
        guard !seen.isEmpty else { return }
        for index in branches.indices where branches[index].muxPad != nil && !seen.contains(branches[index].kind) {
            let kind = branches[index].kind
            logger.warning("\(participantID)'s \(kind.rawValue) track sent nothing for \(options.startTimeout) after recording began; the file goes on without it")
            shared.retire(kind)
            branches[index].retire()
        }
    }

    // MARK: Stopping

    /// Finalizes the file (EOS through the recorder's branches only), removes the recorder's elements and
    /// writes the JSON report. Safe to call again and from several tasks at once: all get the same report.
    @discardableResult
    public func stop() async -> RecordingReport {
        if let stopTask { return await stopTask.value }
        let task = Task { await self.finish() }
        stopTask = task
        return await task.value
    }

    private func handleFailure() async {
        guard let failure = shared.failure else { return }
        logger.error("\(failure); stopping this recording, the call goes on")
        await stop()
    }

    private func finish() async -> RecordingReport {
        stopping = true
        timeoutTask?.cancel()
        watchdogTask?.cancel()
        if let listenerID { tracks.unsubscribe(listenerID) }
        let stopRequested = Date()
        if gateOpen, shared.failure == nil, options.drain > .zero {
            try? await Task.sleep(for: options.drain)
        }
        // Detach: from now on every input probe drops, so nothing follows the EOS and no flow error (nor the
        // branch's EOS) ever reaches a track.
        shared.detach()
        for branch in branches where !branch.retired { branch.detach() }
        var finalized = false
        if gateOpen, shared.failure == nil, shared.hasMedia {
            let inputs = branches.filter { $0.muxPad != nil && !$0.retired }.map(\.input)
            finalized = await WebMFormat.finalize(endingAt: sink, sendingEndOfStreamTo: inputs, timeout: options.finalizeTimeout)
            if !finalized {
                shared.note("the file was not finalized within \(options.finalizeTimeout): it plays but cannot seek; run vcall-gateway repair \(file.path)")
                logger.warning("EOS did not reach \(file.lastPathComponent) within \(options.finalizeTimeout)")
            }
        }
        if let observerToken { bus?.removeSyncObserver(observerToken) }
        // Downstream first, so that no upstream element pushes into a stopped one.
        for element in [sink, mux] + branches.flatMap({ $0.elements.reversed() }) {
            _ = try? element.setState(.null)
            try? pipeline.remove(element)
        }
        branches.removeAll()
        let report = makeReport(end: stopRequested, finalized: finalized)
        if report.videoFrames + report.audioPackets == 0 {
            try? FileManager.default.removeItem(at: file)
            try? FileManager.default.removeItem(at: reportFile)
            logger.warning("no media from \(participantID) reached the recording; \(file.lastPathComponent) removed")
        } else {
            do {
                try report.write(beside: file)
            } catch {
                shared.note("cannot write \(reportFile.path): \(error.localizedDescription)")
                logger.error("cannot write \(reportFile.path): \(error.localizedDescription)")
            }
        }
        shared.finish()
        logger.info("recording finished: \(String(format: "%.1f", report.duration)) s, \(report.videoFrames) video frames, \(report.audioPackets) audio packets\(report.finalizedCleanly ? "" : ", not finalized")")
        return report
    }

    private func makeReport(end: Date, finalized: Bool) -> RecordingReport {
        let counts = shared.snapshot(now: .now)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        // A finalized file states its own duration: report that one, so the two never disagree.
        let written = finalized ? (try? WebMRepair.inspect(file))?.duration : nil
        return RecordingReport(participantID: participantID, displayName: displayName, room: room,
                               file: file.lastPathComponent, start: started, end: end, duration: written ?? counts.duration,
                               videoCodec: counts.videoFrames > 0 ? counts.videoCodec : nil,
                               audioCodec: counts.audioPackets > 0 ? counts.audioCodec : nil,
                               videoFrames: counts.videoFrames, keyframes: counts.keyframes, audioPackets: counts.audioPackets,
                               videoGaps: counts.gaps, bytes: bytes, finalizedCleanly: finalized,
                               error: counts.error, accounts: accounts.isEmpty ? nil : accounts.sorted())
    }

    // MARK: Status

    /// The recording's phase, media duration and file size, now.
    public nonisolated var status: RecordingStatus {
        let counts = shared.snapshot(now: .now)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        return RecordingStatus(phase: counts.phase, file: file, duration: counts.duration, bytes: bytes,
                               videoFrames: counts.videoFrames, audioPackets: counts.audioPackets,
                               error: counts.error.map { GatewayError.recording($0) })
    }

    /// Waits until media flows into the file (the first frame was muxed); throws on failure or timeout.
    public nonisolated func waitUntilRecording(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let status = self.status
            if status.phase == .recording, status.videoFrames + status.audioPackets > 0 { return }
            if let error = status.error { throw error }
            if status.phase == .finished || status.phase == .failed {
                throw GatewayError.recording("the recording of \(participantID) stopped before any media arrived")
            }
            if ContinuousClock.now >= deadline {
                throw GatewayError.recording("no media from \(participantID) reached \(file.lastPathComponent) within \(timeout); is the participant sending?")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
