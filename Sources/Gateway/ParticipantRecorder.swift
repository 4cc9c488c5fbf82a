import Foundation
import GStreamer
import Logging
import Synchronization
import WebRTC

/// What a recording is doing now.
public struct RecordingStatus: Sendable, CustomStringConvertible {
    public enum Phase: String, Sendable {
        /// Tracks are being linked; no data reaches the file yet.
        case waitingForTracks
        /// Media flows into the file.
        case recording
        case stopping
        case finished
        /// A write error stopped the recording; the file holds what was written before it.
        case failed
    }

    public var phase: Phase
    public var file: URL
    /// Seconds of media in the file so far.
    public var duration: Double
    /// The file's size in bytes.
    public var bytes: Int
    public var videoFrames: Int
    public var audioPackets: Int
    public var error: GatewayError?

    public var description: String {
        "\(file.lastPathComponent): \(phase.rawValue), \(String(format: "%.1f", duration)) s, \(bytes) bytes"
            + (error.map { " — \($0)" } ?? "")
    }
}

/// Records one remote participant to `DIR/ROOM-PARTICIPANT-UTCSTART.webm`: VP8 (or VP9) video and Opus
/// audio muxed into WebM as received, without transcoding, with a JSON `RecordingReport` beside it.
///
/// Each track of the participant's `ParticipantTap` gets a branch into one webmmux:
/// ```
/// tee ─► queue (leaky) ─► rtpvp8depay wait-for-keyframe=true request-keyframe=true ─┐
/// tee ─► queue (leaky) ─► rtpopusdepay ─► opusparse ───────────────────────────────┴► webmmux ─► filesink async=false
/// ```
/// - The queue comes first so that webrtcbin's thread only enqueues: depayloading, the muxer's wait for
///   its other pad and disk writes run on the recorder's own threads, and a stalled disk drops the oldest
///   recorder data (leaky) instead of stalling the call.
/// - webmmux refuses caps that arrive after it wrote its headers, so every expected track is linked to
///   its own branch first; only then are the branches linked to the muxer and the data let in (until then
///   a blocking probe on each queue's src pad holds it, up to the queue's 3 s). If a track is missing after
///   `startTimeout`, the recording starts with what arrived (a video-only participant still records); a
///   track arriving later is not recorded.
/// - The file starts on a keyframe: the held data usually begins with the one the sender makes for a new
///   peer, and a keyframe is requested when data is let in; video before the first keyframe is dropped,
///   and so is audio timed before it, so audio and video line up from the first cluster.
/// - `stop()` detaches the branches from the tees and sends EOS into the recorder's branches only, waits
///   (bounded) until EOS reaches the filesink — webmmux has then written its Cues and duration — and
///   removes the recorder's elements. It may be called any number of times, from any task: when the
///   participant leaves, when the peer connection fails, on quit or SIGINT.
/// - A write error (a full disk) stops the recording without disturbing the call: a synchronous bus
///   observer sees the filesink's error before the flow error travels upstream, and from then on the
///   recorder's input probes drop everything, so the tee (and webrtcbin behind it) never sees the error.
///   The file keeps what was written; the report says what happened.
///
/// ```swift
/// let recorder = try await ParticipantRecorder.start(tap: tap, directory: URL(filePath: "recordings"),
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

    /// Whether an element (by its name, as in `BusMessage.error(source:…)`) belongs to a recorder.
    public static func owns(elementNamed name: String) -> Bool { name.hasPrefix(elementNamePrefix) }

    public nonisolated let file: URL
    public nonisolated var reportFile: URL { RecordingReport.url(for: file) }
    public nonisolated let room: String
    public nonisolated let participantID: String
    public nonisolated let displayName: String
    public nonisolated let expectedKinds: Set<MediaKind>
    public nonisolated let started: Date

    private nonisolated let tap: ParticipantTap
    private nonisolated let pipeline: Pipeline
    private nonisolated let options: Options
    private nonisolated let logger: Logger
    private nonisolated let prefix: String
    private nonisolated let shared: RecorderSharedState
    private nonisolated let mux: Element
    private nonisolated let sink: Element
    private nonisolated let bus: Bus?

    private struct Branch {
        let track: TeedTrack
        let teePad: Pad
        let input: Pad
        let output: Pad
        let elements: [Element]
        var muxPad: Pad?
        /// Holds the queue's output until the gate opens (a blocking probe on the queue's src pad).
        var hold: (pad: Pad, token: PadProbeToken)?
        /// Ended early (its track sent nothing), unlinked from its tee.
        var retired = false
    }
    private var branches: [Branch] = []
    private var gateOpen = false
    private var startTimedOut = false
    private var stopping = false
    private var stopTask: Task<RecordingReport, Never>?
    private var listenerID: Int?
    private var observerToken: BusObserverToken?
    private var timeoutTask: Task<Void, Never>?
    private var watchdogTask: Task<Void, Never>?
    private var keyframeTask: Task<Void, Never>?

    private static let counter = Atomic<Int>(0)

    /// Starts recording `tap`'s participant into a new file in `directory` (made if missing).
    /// `expecting` names the kinds the remote description announced; recording waits for them (bounded).
    public static func start(tap: ParticipantTap, directory: URL, room: String, expecting kinds: Set<MediaKind>,
                             options: Options = Options(), logger: Logger = Logger(label: "vcall.recorder")) async throws -> ParticipantRecorder {
        let recorder = try ParticipantRecorder(tap: tap, directory: directory, room: room, expecting: kinds,
                                               options: options, logger: logger)
        await recorder.begin()
        return recorder
    }

    private init(tap: ParticipantTap, directory: URL, room: String, expecting kinds: Set<MediaKind>,
                 options: Options, logger: Logger) throws {
        try GStreamer.initialize()
        self.tap = tap
        self.pipeline = tap.pipeline
        self.room = room
        self.participantID = tap.participantID
        self.displayName = tap.displayName
        self.expectedKinds = kinds
        self.options = options
        self.started = Date()
        self.prefix = "\(Self.elementNamePrefix)\(Self.counter.add(1, ordering: .relaxed).newValue)"
        var logger = logger
        logger[metadataKey: "recording"] = "\(room)/\(tap.displayName.isEmpty ? tap.participantID : tap.displayName)"
        self.logger = logger
        self.file = try Self.makeFile(in: directory, room: room, participant: tap.displayName.isEmpty ? tap.participantID : tap.displayName,
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
            throw GatewayError.recording("cannot set up the recording of \(tap.participantID): \(error)")
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

    /// Subscribes to the tap, attaches the tracks already there, watches for write errors, arms the start timeout.
    private func begin() {
        let shared = self.shared
        let prefix = self.prefix
        observerToken = bus?.addSyncObserver { [weak self] message in
            // Runs on the thread that posts: only flags and hands over, never blocks.
            guard case .error(let source, let text, let debug) = message, source.hasPrefix(prefix + "-") else { return }
            if shared.fail(source: source, message: text, debug: debug) {
                Task { await self?.handleFailure() }
            }
        }
        let subscription = tap.subscribe { [weak self] track in
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
        logger.info("recording to \(file.path), waiting for \(expectedKinds.map(\.rawValue).sorted().joined(separator: " and "))")
    }

    // MARK: Tracks

    private func attach(_ track: TeedTrack) {
        guard !stopping else { return }
        if gateOpen {
            logger.warning("\(track) arrived after the recording started; webmmux cannot add a track to a file it has begun, so it is not recorded")
            return
        }
        guard !branches.contains(where: { $0.track.kind == track.kind }) else {
            logger.warning("a second \(track.kind.rawValue) track (\(track)) is not recorded: a recording holds one of each kind")
            return
        }
        do {
            branches.append(try makeBranch(for: track))
        } catch {
            logger.error("cannot record \(track): \(error)")
            return
        }
        let kinds = Set(branches.map(\.track.kind))
        if expectedKinds.isSubset(of: kinds) || startTimedOut { openGate() }
    }

    /// `queue ! depayloader [! opusparse]`, linked to the tee; the queue holds the data until the gate opens.
    private func makeBranch(for track: TeedTrack) throws -> Branch {
        let kind = track.kind.rawValue
        guard let codec = Codec(encodingName: track.encodingName) else {
            throw GatewayError.recording("\(track.encodingName) cannot go into WebM without transcoding; vcall records VP8, VP9 and Opus")
        }
        let queue = try Element(factory: "queue", name: "\(prefix)-\(kind)-queue")
        try queue.set("leaky", "downstream")
        try queue.set("max-size-buffers", 0)
        try queue.set("max-size-bytes", 0)
        try queue.set("max-size-time", 3_000_000_000)
        let depayloader = try Element(factory: "rtp\(codec.rawValue.lowercased())depay", name: "\(prefix)-\(kind)-depay")
        var elements = [queue, depayloader]
        if codec.kind == .video {
            try depayloader.set("wait-for-keyframe", true)
            try depayloader.set("request-keyframe", true)
        } else {
            // webmmux needs the rate, which opusparse adds to rtpopusdepay's caps.
            elements.append(try Element(factory: "opusparse", name: "\(prefix)-\(kind)-parse"))
        }
        for element in elements { try pipeline.add(element) }
        for (upstream, downstream) in zip(elements, elements.dropFirst()) { try upstream.link(downstream) }
        guard let input = queue.staticPad("sink"), let output = elements.last?.staticPad("src") else {
            throw GatewayError.recording("the recorder's \(kind) branch has no pads")
        }
        let shared = self.shared
        // Data is let in unless the recorder failed, detached or retired this kind.
        let trackKind = track.kind
        input.addProbe([.buffer, .bufferList]) { _ in shared.admitsInput(trackKind) ? .ok : .drop }
        // Until every expected track is linked to the muxer the queue holds what arrives (up to its 3 s,
        // dropping the oldest), so the participant's first keyframe, sent as the connection came up, is
        // still there when the gate opens: no waiting for a requested one.
        var hold: (pad: Pad, token: PadProbeToken)?
        if let queueOutput = queue.staticPad("src"), let token = queueOutput.addProbe(.blockDownstream, { _ in .ok }) {
            hold = (queueOutput, token)
        }
        for element in elements.reversed() { try element.syncStateWithParent() }
        let teePad = try track.tee.requestPad("src_%u")
        try teePad.link(input)
        // The tap holds a new track until a consumer attaches: this branch is one.
        track.track.release()
        logger.debug("linked \(track)")
        return Branch(track: track, teePad: teePad, input: input, output: output, elements: elements, hold: hold)
    }

    private func startTimeoutElapsed() {
        guard !stopping, !gateOpen else { return }
        startTimedOut = true
        if branches.isEmpty {
            logger.warning("no track after \(options.startTimeout); recording starts with the first that arrives")
        } else {
            let missing = expectedKinds.subtracting(branches.map(\.track.kind)).map(\.rawValue).sorted()
            logger.warning("no \(missing.joined(separator: " or ")) track after \(options.startTimeout); recording \(branches.map(\.track.kind.rawValue).sorted().joined(separator: " and ")) only")
            openGate()
        }
    }

    /// Links every branch to the muxer, then lets data in and asks for a keyframe.
    private func openGate() {
        guard !gateOpen, !stopping else { return }
        timeoutTask?.cancel()
        let hasVideo = branches.contains { $0.track.kind == .video }
        shared.configure(audioWaitsForVideo: hasVideo,
                         videoCodec: branches.first { $0.track.kind == .video }?.track.encodingName,
                         audioCodec: branches.first { $0.track.kind == .audio }?.track.encodingName)
        for index in branches.indices {
            let kind = branches[index].track.kind
            do {
                let muxPad = try mux.requestPad(kind == .video ? "video_%u" : "audio_%u")
                try branches[index].output.link(muxPad)
                branches[index].muxPad = muxPad
                let shared = self.shared
                branches[index].output.addProbe(.buffer) { info in
                    guard let buffer = info.buffer else { return .ok }
                    return (kind == .video ? shared.videoFrame(buffer) : shared.audioPacket(buffer)) ? .ok : .drop
                }
            } catch {
                logger.error("cannot link the \(kind.rawValue) branch to the muxer: \(error)")
            }
        }
        gateOpen = true
        shared.openGate()
        for index in branches.indices {
            if let hold = branches[index].hold { hold.pad.removeProbe(hold.token) }
            branches[index].hold = nil
        }
        // The held data may start mid-GOP (a recording started during a call): ask for a keyframe too.
        for branch in branches { branch.track.track.requestKeyframe() }
        logger.info("recording \(branches.map(\.track.description).joined(separator: ", "))")
        if let video = branches.first(where: { $0.track.kind == .video }) {
            // The sender may drop a PLI that follows another closely (webrtcbin rate-limits them, and the tap
            // already asked once when the track was linked): ask again until the first keyframe is in.
            let shared = self.shared
            keyframeTask = Task {
                for _ in 0..<10 {
                    try? await Task.sleep(for: .milliseconds(400))
                    guard !Task.isCancelled, !shared.hasVideoStarted else { return }
                    video.track.track.requestKeyframe()
                }
            }
        }
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
        for index in branches.indices where branches[index].muxPad != nil && !seen.contains(branches[index].track.kind) {
            let kind = branches[index].track.kind
            logger.warning("\(participantID)'s \(kind.rawValue) track sent nothing for \(options.startTimeout) after recording began; the file goes on without it")
            shared.retire(kind)
            try? branches[index].teePad.unlink(branches[index].input)
            branches[index].track.tee.releaseRequestPad(branches[index].teePad)
            branches[index].input.sendEvent(.endOfStream)
            branches[index].retired = true
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
        logger.error("\(failure.message) (from \(failure.source)); stopping this recording, the call goes on")
        await stop()
    }

    private func finish() async -> RecordingReport {
        stopping = true
        timeoutTask?.cancel()
        watchdogTask?.cancel()
        keyframeTask?.cancel()
        if let listenerID { tap.unsubscribe(listenerID) }
        let stopRequested = Date()
        if gateOpen, shared.failure == nil, options.drain > .zero {
            try? await Task.sleep(for: options.drain)
        }
        // Detach: from now on every input probe drops, so nothing follows the EOS and no flow error (nor the
        // branch's EOS) ever reaches a tee.
        shared.detach()
        for branch in branches where !branch.retired {
            try? branch.teePad.unlink(branch.input)
            branch.track.tee.releaseRequestPad(branch.teePad)
        }
        var finalized = false
        if gateOpen, shared.failure == nil, shared.hasMedia, let sinkPad = sink.staticPad("sink") {
            let endOfStream = OneShot()
            let token = sinkPad.addProbe(.eventDownstream) { info in
                if info.event?.isEndOfStream == true { endOfStream.succeed() }
                return .ok
            }
            for branch in branches where branch.muxPad != nil && !branch.retired { branch.input.sendEvent(.endOfStream) }
            finalized = (try? await endOfStream.wait(timeout: options.finalizeTimeout, what: "the end of the file")) != nil
            if let token { sinkPad.removeProbe(token) }
            if !finalized {
                shared.note("the file was not finalized within \(options.finalizeTimeout): it plays but cannot seek; run WebMRepair on it")
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
            logger.warning("no media from \(participantID) reached the recording; \(file.lastPathComponent) removed")
        } else {
            do {
                try report.json().write(to: reportFile, options: .atomic)
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
                               error: counts.error)
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

    // MARK: File names

    /// `DIR/ROOM-PARTICIPANT-20261121T203000Z.webm`, with `-2`, `-3`… if that name is taken.
    static func makeFile(in directory: URL, room: String, participant: String, start: Date) throws -> URL {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw GatewayError.recording("cannot create the recording directory \(directory.path): \(error.localizedDescription); use --record DIR elsewhere")
        }
        guard FileManager.default.isWritableFile(atPath: directory.path) else {
            throw GatewayError.recording("cannot write in \(directory.path): permission denied; use --record DIR elsewhere")
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let base = "\(fileNameComponent(room))-\(fileNameComponent(participant))-\(formatter.string(from: start))"
        var candidate = directory.appendingPathComponent("\(base).webm")
        var suffix = 2
        // O_EXCL creation claims the name, so two recorders starting in the same second never share a file.
        while !createExclusively(candidate.path) {
            candidate = directory.appendingPathComponent("\(base)-\(suffix).webm")
            suffix += 1
            guard suffix < 1000 else { throw GatewayError.recording("cannot create a file named \(base)….webm in \(directory.path)") }
        }
        return candidate
    }

    /// A name part safe on every common file system and in a shell: letters and digits of any script, `-`
    /// and `_`; any run of other characters (dots and slashes too) becomes one `_`; at most 60 characters; never empty.
    public static func fileNameComponent(_ text: String) -> String {
        var result = ""
        for character in text {
            if character.isLetter || character.isNumber || character == "-" {
                result.append(character)
            } else if !result.hasSuffix("_") {
                result.append("_")
            }
        }
        result = String(result.prefix(60))
        return result.isEmpty ? "unnamed" : result
    }
}

/// Creates an empty file with O_EXCL; false if it exists (or cannot be made).
private func createExclusively(_ path: String) -> Bool {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    guard descriptor >= 0 else { return false }
    close(descriptor)
    return true
}

/// What the recorder's pad probes share with it: gates, counters and the first failure.
/// `Sendable` through its Atomics and Mutex; probes only take the Mutex briefly and never block otherwise.
final class RecorderSharedState: Sendable {
    struct Failure: Sendable {
        var source: String
        var message: String
        var debug: String?
    }

    struct Counts: Sendable {
        var phase: RecordingStatus.Phase = .waitingForTracks
        var videoCodec: String?
        var audioCodec: String?
        var audioWaitsForVideo = false
        var videoSeen = false
        var audioSeen = false
        var videoStart: UInt64?
        var firstTime: UInt64?
        var endTime: UInt64?
        var videoFrames = 0
        var keyframes = 0
        var audioPackets = 0
        var lastVideoTime: UInt64?
        var lastVideoArrival: ContinuousClock.Instant?
        var gapTimes: [(UInt64, UInt64)] = []
        var failure: Failure?
        var notes: [String] = []
    }

    struct Snapshot: Sendable {
        var phase: RecordingStatus.Phase
        var duration: Double
        var videoCodec: String?
        var audioCodec: String?
        var videoFrames: Int
        var keyframes: Int
        var audioPackets: Int
        var gaps: [RecordingReport.Gap]
        var error: String?
    }

    private let isBlocked = Atomic<Bool>(false)
    /// Kinds whose branch ended early (bit 0 video, bit 1 audio).
    private let retiredKinds = Atomic<Int>(0)
    private let counts = Mutex(Counts())
    private static let gapThreshold: UInt64 = 500_000_000

    /// Input probes let data in only while this is true (before the gate opens, into the holding queue).
    func admitsInput(_ kind: MediaKind) -> Bool {
        !isBlocked.load(ordering: .acquiring)
            && retiredKinds.load(ordering: .acquiring) & Self.bit(kind) == 0
    }

    private static func bit(_ kind: MediaKind) -> Int { kind == .video ? 1 : 2 }

    /// Ends a kind's branch early: its input drops everything, and audio no longer waits for video.
    func retire(_ kind: MediaKind) {
        retiredKinds.bitwiseOr(Self.bit(kind), ordering: .releasing)
        if kind == .video { counts.withLock { $0.audioWaitsForVideo = false } }
    }

    /// The kinds that delivered at least one buffer to the muxer's side of their branch.
    var kindsSeen: Set<MediaKind> {
        counts.withLock { counts in
            var kinds: Set<MediaKind> = []
            if counts.videoSeen { kinds.insert(.video) }
            if counts.audioSeen { kinds.insert(.audio) }
            return kinds
        }
    }

    func configure(audioWaitsForVideo: Bool, videoCodec: String?, audioCodec: String?) {
        counts.withLock {
            $0.audioWaitsForVideo = audioWaitsForVideo
            $0.videoCodec = videoCodec
            $0.audioCodec = audioCodec
        }
    }

    func openGate() {
        counts.withLock { if $0.phase == .waitingForTracks { $0.phase = .recording } }
    }

    func detach() {
        isBlocked.store(true, ordering: .releasing)
        counts.withLock { if $0.phase != .failed { $0.phase = .stopping } }
    }

    func finish() { counts.withLock { if $0.phase != .failed { $0.phase = .finished } } }

    /// Records the first failure and blocks the inputs at once; true for the first one.
    func fail(source: String, message: String, debug: String?) -> Bool {
        isBlocked.store(true, ordering: .releasing)
        return counts.withLock { counts in
            guard counts.failure == nil else { return false }
            counts.failure = Failure(source: source, message: message, debug: debug)
            counts.phase = .failed
            return true
        }
    }

    var failure: Failure? { counts.withLock { $0.failure } }
    var hasVideoStarted: Bool { counts.withLock { $0.videoStart != nil } }
    var hasMedia: Bool { counts.withLock { $0.videoFrames + $0.audioPackets > 0 } }

    func note(_ text: String) { counts.withLock { $0.notes.append(text) } }

    /// A video frame on its way into the muxer; false drops it (before the first keyframe).
    func videoFrame(_ buffer: BufferInfo) -> Bool {
        counts.withLock { counts in
            counts.videoSeen = true
            guard let time = buffer.pts else {
                if counts.videoStart != nil { counts.videoFrames += 1; return true }
                return false
            }
            if counts.videoStart == nil {
                guard !buffer.isDeltaUnit else { return false }
                counts.videoStart = time
            }
            guard let start = counts.videoStart, time >= start else { return false }
            counts.videoFrames += 1
            if !buffer.isDeltaUnit { counts.keyframes += 1 }
            if let last = counts.lastVideoTime, time > last, time - last > Self.gapThreshold {
                counts.gapTimes.append((last, time))
            }
            counts.lastVideoTime = time
            counts.lastVideoArrival = .now
            counts.firstTime = min(counts.firstTime ?? time, time)
            counts.endTime = max(counts.endTime ?? 0, time + (buffer.duration ?? 33_333_333))
            return true
        }
    }

    /// An audio packet on its way into the muxer; false drops it (timed before the first video keyframe).
    func audioPacket(_ buffer: BufferInfo) -> Bool {
        counts.withLock { counts in
            counts.audioSeen = true
            guard let time = buffer.pts else {
                if counts.firstTime != nil { counts.audioPackets += 1; return true }
                return false
            }
            if counts.audioWaitsForVideo {
                guard let start = counts.videoStart, time >= start else { return false }
            }
            counts.audioPackets += 1
            counts.firstTime = min(counts.firstTime ?? time, time)
            counts.endTime = max(counts.endTime ?? 0, time + (buffer.duration ?? 20_000_000))
            return true
        }
    }

    func snapshot(now: ContinuousClock.Instant) -> Snapshot {
        counts.withLock { counts in
            let first = counts.firstTime ?? 0
            let seconds = { (time: UInt64) in Double(time &- first) / 1e9 }
            var gaps = counts.gapTimes.map { RecordingReport.Gap(start: seconds($0.0), end: seconds($0.1)) }
            // No video in the last half second before now (or the stop): a trailing gap, by arrival time.
            if counts.phase != .waitingForTracks, let last = counts.lastVideoTime, let arrival = counts.lastVideoArrival {
                let silence = now - arrival
                if silence > .milliseconds(500) {
                    let start = seconds(last)
                    gaps.append(RecordingReport.Gap(start: start, end: start + Double(silence.components.seconds)
                                                        + Double(silence.components.attoseconds) / 1e18))
                }
            }
            var error = counts.failure.map { Self.describe($0) }
            if !counts.notes.isEmpty { error = ([error].compactMap { $0 } + counts.notes).joined(separator: "; ") }
            return Snapshot(phase: counts.phase,
                            duration: counts.endTime.map { Double($0 &- first) / 1e9 } ?? 0,
                            videoCodec: counts.videoCodec, audioCodec: counts.audioCodec,
                            videoFrames: counts.videoFrames, keyframes: counts.keyframes, audioPackets: counts.audioPackets,
                            gaps: gaps, error: error)
        }
    }

    /// A write error as the user should read it.
    static func describe(_ failure: Failure) -> String {
        let text = failure.message.lowercased()
        if text.contains("no space") {
            return "the disk is full (no space left on device), so the recording stopped; what was written before stays readable: free space or use --record DIR on another disk"
        }
        if failure.source.hasSuffix("-filesink") {
            return "cannot write the recording: \(failure.message); check the disk or use --record DIR elsewhere"
        }
        return "the recording stopped: \(failure.message) (\(failure.source))"
    }
}
