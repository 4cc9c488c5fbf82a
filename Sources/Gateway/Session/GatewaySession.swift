import Foundation
import Recordings
import GStreamer
import Logging
import SignalingProtocol
import Synchronization
import WebRTC

/// Everything `vcall-gateway` is asked to do in one room.
public struct GatewayOptions: Sendable {
    public var call: CallConfiguration
    /// A source name from `pipelines/video` (test, camera, screen, none) or a `.pipeline` file;
    /// `none` at start sends no video track at all.
    public var video = "test"
    public var audio = "test"
    /// Where recordings go (`--record DIR`, or the folder `record start` uses).
    public var recordDirectory: URL?
    /// Start recording everyone as soon as they send media.
    public var recordFromStart = false
    /// Record the meeting as one file too (`--composite`), from the start with `recordFromStart`.
    public var composite = false
    /// The composite's size, rate and encoder settings.
    public var compositeOptions = CompositeRecorder.Options()
    /// Values for the sources' `${…}` parameters (device, display, …).
    public var sourceParameters: [String: String] = [:]
    public var pipelinesDirectory: URL?
    public var media = MediaInput.Options()

    public init(call: CallConfiguration) { self.call = call }
}

/// A snapshot for the status display.
public struct GatewayStatus: Sendable {
    public let call: CallStatus
    public let video: String?
    public let audio: String?
    public let audioMuted: Bool
    public let recording: Bool
    public let recordings: [RecordingStatus]
}

/// The gateway in one room: the call pipeline (sources, encoders, one webrtcbin per participant,
/// recorders), the `Call` that negotiates, and the commands a user gives while it runs.
public actor GatewaySession {
    public nonisolated let options: GatewayOptions
    public nonisolated let pipeline: Pipeline
    public nonisolated let call: Call
    public nonisolated let video: MediaInput?
    public nonisolated let audio: MediaInput?

    private let logger: Logger
    private var recording: Bool
    /// Every remote participant's received tracks, so `record start` can begin (and `record stop` end)
    /// a recording at any time during the call.
    private var received: [String: ParticipantTracks] = [:]
    private var recorders: [String: ParticipantRecorder] = [:]
    /// Recorders whose participant left (or whose recording was stopped) and that are still finalizing:
    /// quitting waits for them too, or their file would lose its end and its report.
    private var finalizing: [ObjectIdentifier: ParticipantRecorder] = [:]
    private var finished: [RecordingReport] = []
    private var composite: CompositeRecorder?
    /// The meeting is to be recorded as one file: from `--composite`, `record start composite` or the record
    /// button until `record stop composite`. The file ends when the room empties and a new one starts with
    /// the next participant, so an empty room is not recorded as hours of black.
    private var compositeWanted: Bool
    /// The latest media-state of each participant, for a composite started later.
    private var mediaStates: [String: MediaState] = [:]
    private var busWatch: Task<Void, Never>?
    private var stopped = false
    /// Why signaling stopped for good, if it did (see `CallEvent.signalingFailed`).
    public private(set) var signalingFailure: String?

    /// Builds the pipeline and the sources; throws a `GatewayError` a user can act on
    /// (no camera, no display, a bad pipeline file).
    public init(options: GatewayOptions, logger: Logger = Logger(label: "vcall.gateway")) throws {
        try GStreamer.initialize()
        self.options = options
        self.logger = logger
        recording = options.recordFromStart
        compositeWanted = options.composite && options.recordFromStart
        if options.recordFromStart || options.composite, options.recordDirectory == nil {
            throw GatewayError.usage("recording needs a folder: --record DIR")
        }
        let pipeline = try Pipeline(name: "vcall-call")
        self.pipeline = pipeline
        // A gateway that sends nothing (a recorder, a worker) needs no sources, so no pipelines folder either.
        let library = options.video == "none" && options.audio == "none" ? nil : try PipelineLibrary(directory: options.pipelinesDirectory)
        video = try library.flatMap { library in
            options.video == "none" ? nil
                : try MediaInput(kind: .video, source: options.video, library: library, pipeline: pipeline,
                                 parameters: options.sourceParameters, options: options.media)
        }
        audio = try library.flatMap { library in
            options.audio == "none" ? nil
                : try MediaInput(kind: .audio, source: options.audio, library: library, pipeline: pipeline,
                                 parameters: options.sourceParameters, options: options.media)
        }
        let tracks = [video, audio].compactMap { $0 }.map { OutgoingTrack(codec: $0.codec, tee: $0.tee) }
        call = Call(configuration: options.call, pipeline: pipeline, tracks: tracks, logger: logger)
        do {
            try pipeline.setState(.playing)
        } catch {
            _ = try? pipeline.setState(.null)
            throw GatewayError.source("the media pipeline did not start: \(error)")
        }
    }

    /// Takes part in the call until `stop()`.
    public func run() async {
        let call = self.call
        watchBus()
        // Before joining, so the first participant's negotiation does not load plugins on the way.
        await WebRTCPeer.warmUp(udpPorts: options.call.udpPorts)
        if compositeWanted { await resumeComposite() }
        await call.announceMediaState(ownMediaState)
        await announceRecordingState()
        async let taking: Void = call.run()
        for await event in call.events {
            await handle(event)
        }
        await taking
    }

    private func handle(_ event: CallEvent) async {
        switch event {
        case .remoteTrack(let participant, let name, let track):
            let tracks = received[participant] ?? ParticipantTracks(participantID: participant, displayName: name)
            received[participant] = tracks
            tracks.add(track)
            logger.debug("receiving \(track) from \(name)")
            // A recorder picks up the participant's later tracks by itself (it subscribes to them).
            if recording { await record(participant) }
            if let composite {
                await addToComposite(tracks, composite)
            } else if compositeWanted {
                await resumeComposite()
            }
            await noteRoomAccounts()
        case .participantLeft(let participant, _):
            await stopRecording(participant)
            await composite?.remove(participantID: participant)
            received.removeValue(forKey: participant)
            mediaStates.removeValue(forKey: participant)
            if let composite, await composite.participantCount == 0 {
                logger.info("the room is empty: the composite ends here, and a new one starts with the next participant")
                _ = await stopComposite()
                await announceRecordingState()
            }
        case .mediaState(let participant, let state):
            mediaStates[participant] = state
            await composite?.setMediaState(state, of: participant)
        case .connectionState(let participant, let state):
            // A new peer decodes nothing until a keyframe: make one now rather than at the next interval
            // (or after its PLI's round trip), so its first picture and its recording start at once.
            if state == .connected { video?.forceKeyframe() }
            // A failed connection carries no more media: finalize what was recorded.
            if state == .failed || state == .closed { await stopRecording(participant) }
        case .problem(let text):
            logger.warning("\(text)")
        case .signalingFailed(let reason):
            signalingFailure = reason
        case .joined, .participantJoined:
            await noteRoomAccounts()
        case .recordingRequested(let from, let name, let action):
            await recordingRequested(by: name, id: from, action)
        case .offerSent, .signalingLost:
            break
        }
    }

    // MARK: Commands

    /// Carries out a command; returns what to tell the user.
    public func perform(_ command: GatewayCommand) async -> String {
        let answer = await carryOut(command)
        switch command {
        case .record, .composite: await announceRecordingState()
        default: break
        }
        return answer
    }

    private func carryOut(_ command: GatewayCommand) async -> String {
        do {
            switch command {
            case .video(let source):
                guard let video else { return "video is off for this call (started with --video none); restart with a video source" }
                try await video.swap(to: source, parameters: options.sourceParameters)
                await call.announceMediaState(ownMediaState)
                return "video: \(video.currentSource)"
            case .audio(let source):
                guard let audio else { return "audio is off for this call (started with --audio none); restart with an audio source" }
                try await audio.swap(to: source, parameters: options.sourceParameters)
                await call.announceMediaState(ownMediaState)
                return "audio: \(audio.currentSource)"
            case .mute(let muted):
                guard let audio else { return "audio is off for this call" }
                try audio.mute(muted)
                await call.announceMediaState(ownMediaState)
                return muted ? "audio muted" : "audio unmuted"
            case .record(true):
                guard let directory = options.recordDirectory else { return "no recording folder: start the gateway with --record DIR" }
                recording = true
                for participant in received.keys { await record(participant) }
                return "recording \(recorders.count) participant(s) to \(directory.path)"
                    + (recorders.isEmpty ? "; each one who sends media is recorded" : "")
            case .record(false):
                recording = false
                let count = recorders.count
                for participant in Array(recorders.keys) { await stopRecording(participant) }
                return "recording stopped; \(count) file(s) finalized"
            case .composite(true):
                guard options.recordDirectory != nil else { return "no recording folder: start the gateway with --record DIR" }
                if let composite {
                    guard await composite.hasEnded else { return "already recording the composite to \(composite.file.path)" }
                    _ = await stopComposite()   // it failed by itself: its report is kept, and a new one starts
                }
                let started = try await startComposite()
                compositeWanted = true
                return "recording the composite to \(started.file.path)"
            case .composite(false):
                let wanted = compositeWanted
                compositeWanted = false
                guard composite != nil else { return wanted ? "composite stopped (the room was empty)" : "no composite recording to stop" }
                let report = await stopComposite()
                return "composite stopped: \(report.file), \(String(format: "%.1f", report.duration)) s"
            case .status:
                return Self.describe(await status())
            case .help:
                return GatewayCommand.usage
            case .quit:
                return "quitting"
            }
        } catch {
            return "\(error)"
        }
    }

    /// The room page's record button (`recording-request`): starts or stops what this gateway records
    /// (every participant, and the composite with `--composite`), as `record start|stop` would.
    private func recordingRequested(by name: String, id: String, _ action: RecordingAction) async {
        guard options.recordDirectory != nil else {
            logger.warning("\(name) (\(id)) asked to \(action.rawValue) recording, but this gateway has no recording folder (--record DIR)")
            return
        }
        logger.notice("\(name) (\(id)) asked to \(action.rawValue) recording")
        switch action {
        case .start:
            let answer = await perform(.record(true))
            logger.info("\(answer)")
            if options.composite, !compositeWanted {
                let answer = await perform(.composite(true))
                logger.info("\(answer)")
            }
        case .stop:
            let answer = await perform(.record(false))
            logger.info("\(answer)")
            if compositeWanted {
                let answer = await perform(.composite(false))
                logger.info("\(answer)")
            }
        }
    }

    /// Tells the room whether this gateway records (`recording-state`): pages show it and offer the record
    /// button. A gateway without a recording folder says nothing.
    private func announceRecordingState() async {
        guard options.recordDirectory != nil else { return }
        await call.announceRecordingState(recording || compositeWanted)
    }

    /// What this gateway sends, for `media-state`: `none` (black frames or silence, sent so that nobody
    /// renegotiates) counts as off, and so does muted audio; the `screen` source is a shared screen.
    private var ownMediaState: MediaState {
        let videoSource = video?.currentSource
        let audioOn = audio.map { $0.currentSource != "none" && !$0.isMuted } ?? false
        return MediaState(audio: audioOn, video: videoSource.map { $0 != "none" && $0 != "screen" } ?? false,
                          screen: videoSource == "screen")
    }

    // MARK: Recording

    private func record(_ participant: String) async {
        guard recorders[participant] == nil, let directory = options.recordDirectory, let tracks = received[participant],
              !tracks.tracks.isEmpty else { return }
        // Wait for the kinds the participant said it sends (a browser without a microphone sends video only).
        let announced = await call.sendingKinds(of: participant)
        let expected = announced.isEmpty ? Set(tracks.tracks.map(\.kind)) : announced
        do {
            let recorder = try await ParticipantRecorder.start(tracks: tracks, pipeline: pipeline, directory: directory,
                                                               room: options.call.room, expecting: expected, logger: logger,
                                                               lateTrack: { [weak self] _ in
                                                                   Task { await self?.rollOver(participant) }
                                                               })
            recorders[participant] = recorder
            await recorder.addAccounts(await call.roomAccounts())
            logger.info("recording \(tracks.displayName) to \(recorder.file.path)")
            let logger = self.logger
            Task {
                // The moment the file starts (on a keyframe, audio aligned to it): the figure a user waits for.
                if (try? await recorder.waitUntilRecording(timeout: .seconds(30))) != nil {
                    logger.info("first frames of \(tracks.displayName) written to \(recorder.file.lastPathComponent)")
                }
            }
        } catch {
            logger.error("cannot record \(tracks.displayName): \(error)")
        }
    }

    /// Tells every running recording which accounts are in the room: its report lists everyone logged in
    /// who was there while it recorded (the people who may watch it in the web app).
    private func noteRoomAccounts() async {
        let accounts = await call.roomAccounts()
        guard !accounts.isEmpty else { return }
        for recorder in recorders.values { await recorder.addAccounts(accounts) }
        await composite?.addAccounts(accounts)
    }

    /// Starts the composite (again) because it is wanted; a failure is logged.
    private func resumeComposite() async {
        do {
            _ = try await startComposite()
        } catch {
            logger.error("\(error)")
        }
    }

    /// Starts the composite recording with everyone already in the call.
    private func startComposite() async throws -> CompositeRecorder {
        guard let directory = options.recordDirectory else { throw GatewayError.usage("recording needs a folder: --record DIR") }
        let started = try CompositeRecorder(pipeline: pipeline, directory: directory, room: options.call.room,
                                            options: options.compositeOptions, logger: logger)
        await started.watchForFailures()
        await started.addAccounts(await call.roomAccounts())
        composite = started
        for tracks in received.values.sorted(by: { $0.participantID < $1.participantID }) { await addToComposite(tracks, started) }
        return started
    }

    private func addToComposite(_ tracks: ParticipantTracks, _ composite: CompositeRecorder) async {
        await composite.add(tracks)
        if let state = mediaStates[tracks.participantID] { await composite.setMediaState(state, of: tracks.participantID) }
    }

    private func stopComposite() async -> RecordingReport {
        guard let composite else { preconditionFailure("stopComposite without a composite") }
        let report = await composite.stop()
        self.composite = nil
        if report.videoFrames + report.audioPackets > 0 {
            finished.append(report)
            logger.info("finalized \(report.file): \(String(format: "%.1f", report.duration)) s, \(report.videoFrames) video frames, \(report.framesDropped ?? 0) composite frames dropped\(report.finalizedCleanly ? "" : "; not finalized: run vcall-gateway repair \(composite.file.path)")")
        }
        return report
    }

    /// A track arrived that the participant's file cannot take: a new file starts with every track
    /// (from the next keyframe), then the old one is finalized, so the two overlap rather than leave a gap.
    private func rollOver(_ participant: String) async {
        guard recording, let old = recorders.removeValue(forKey: participant) else { return }
        await record(participant)
        await finalize(old)
    }

    /// Finalizes the participant's recording (bounded by the recorder's finalize timeout).
    private func stopRecording(_ participant: String) async {
        guard let recorder = recorders.removeValue(forKey: participant) else { return }
        await finalize(recorder)
    }

    private func finalize(_ recorder: ParticipantRecorder) async {
        finalizing[ObjectIdentifier(recorder)] = recorder
        let report = await recorder.stop()
        finalizing[ObjectIdentifier(recorder)] = nil
        guard report.videoFrames + report.audioPackets > 0 else { return } // the recorder removed the empty file and said so
        finished.append(report)
        logger.info("finalized \(report.file): \(String(format: "%.1f", report.duration)) s, \(report.videoFrames) video frames (\(report.keyframes) keyframes), \(report.audioPackets) audio packets\(report.finalizedCleanly ? "" : "; not finalized: run vcall-gateway repair \(options.recordDirectory?.appendingPathComponent(report.file).path ?? report.file)")")
    }

    /// Logs what goes wrong in the pipeline. Recorders handle their own elements' errors (a full disk
    /// ends one recording, not the call), and a source swap watches its new source itself.
    private func watchBus() {
        let messages = pipeline.messages()
        let logger = self.logger
        busWatch = Task {
            for await message in messages {
                switch message {
                case .error(let failure) where !ParticipantRecorder.owns(elementNamed: failure.source):
                    logger.error("\(failure.source): \(failure.message)", metadata: failure.debug.map { ["debug": "\($0)"] })
                case .warning(let failure) where !ParticipantRecorder.owns(elementNamed: failure.source):
                    logger.warning("\(failure.source): \(failure.message)")
                default:
                    break
                }
            }
        }
    }

    /// Reports of the recordings finalized so far.
    public func finishedRecordings() -> [RecordingReport] { finished }

    // MARK: Status and shutdown

    public func status() async -> GatewayStatus {
        let recordings = recorders.values.map(\.status) + (composite.map { [$0.status] } ?? [])
        return GatewayStatus(call: await call.status(), video: video?.currentSource, audio: audio?.currentSource,
                             audioMuted: audio?.isMuted ?? false, recording: recording || compositeWanted,
                             recordings: recordings.sorted { $0.file.path < $1.file.path })
    }

    /// Finalizes every recording (each bounded in time), leaves the room and stops the pipeline.
    public func stop() async {
        guard !stopped else { return }
        stopped = true
        recording = false
        // Every file is finalized in parallel, so quitting takes one finalize timeout at most.
        let clock = ContinuousClock()
        let started = clock.now
        await withTaskGroup(of: Void.self) { group in
            for participant in recorders.keys { group.addTask { await self.stopRecording(participant) } }
            // Already stopping: `stop()` is shared, so this waits for the same finalization.
            for recorder in finalizing.values { group.addTask { await recorder.stop() } }
            if composite != nil { group.addTask { _ = await self.stopComposite() } }
        }
        logger.debug("leaving: recordings finished after \(clock.now - started)")
        await call.leave()
        logger.debug("leaving: peers closed after \(clock.now - started)")
        received.removeAll()
        busWatch?.cancel()
        _ = try? pipeline.setState(.null)
        logger.debug("leaving: pipeline stopped after \(clock.now - started)")
    }


    /// A few lines for `status`, the same the live display shows.
    public static func describe(_ status: GatewayStatus) -> String {
        StatusFormatter.lines(status).joined(separator: "\n")
    }
}
