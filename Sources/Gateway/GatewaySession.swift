import Foundation
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
    /// Values for the sources' `${…}` parameters (device, display, …).
    public var sourceParameters: [String: String] = [:]
    public var pipelinesDirectory: URL?
    public var media = MediaInput.Options()

    public init(call: CallConfiguration) { self.call = call }
}

/// A snapshot for the status display.
/// A recording in progress, for the status display.
public struct RecordingStatus: Sendable {
    public let file: URL
    public let durationSeconds: Double
    public let bytes: Int
}

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
    /// Each participant's tracks and name, so `record start` can begin mid-call.
    private var remoteTracks: [String: (name: String, tracks: [RemoteTrack])] = [:]
    private var stopped = false

    /// Builds the pipeline and the sources; throws a `GatewayError` a user can act on
    /// (no camera, no display, a bad pipeline file).
    public init(options: GatewayOptions, logger: Logger = Logger(label: "vcall.gateway")) throws {
        try GStreamer.initialize()
        self.options = options
        self.logger = logger
        recording = options.recordFromStart
        if options.recordFromStart, options.recordDirectory == nil {
            throw GatewayError.usage("recording needs a folder: --record DIR")
        }
        let pipeline = try Pipeline(name: "vcall-call")
        self.pipeline = pipeline
        let library = try PipelineLibrary(directory: options.pipelinesDirectory)
        video = options.video == "none" ? nil
            : try MediaInput(kind: .video, source: options.video, library: library, pipeline: pipeline,
                             parameters: options.sourceParameters, options: options.media)
        audio = options.audio == "none" ? nil
            : try MediaInput(kind: .audio, source: options.audio, library: library, pipeline: pipeline,
                             parameters: options.sourceParameters, options: options.media)
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
        async let taking: Void = call.run()
        for await event in call.events {
            await handle(event)
        }
        await taking
    }

    private func handle(_ event: CallEvent) async {
        switch event {
        case .remoteTrack(let participant, let name, let track):
            remoteTracks[participant, default: (name, [])].tracks.append(track)
            if recording { await record(participant) }
        case .participantLeft(let participant, _):
            remoteTracks[participant] = nil
            await stopRecording(participant)
        case .connectionState(let participant, let state):
            // A failed connection carries no more media: finalize what was recorded.
            if state == .failed || state == .closed { await stopRecording(participant) }
        case .problem(let text):
            logger.warning("\(text)")
        case .joined, .participantJoined, .offerSent, .signalingLost:
            break
        }
    }

    // MARK: Commands

    /// Carries out a command; returns what to tell the user.
    public func perform(_ command: GatewayCommand) async -> String {
        do {
            switch command {
            case .video(let source):
                guard let video else { return "video is off for this call (started with --video none); restart with a video source" }
                try await video.swap(to: source, parameters: options.sourceParameters)
                return "video: \(video.currentSource)"
            case .audio(let source):
                guard let audio else { return "audio is off for this call (started with --audio none); restart with an audio source" }
                try await audio.swap(to: source, parameters: options.sourceParameters)
                return "audio: \(audio.currentSource)"
            case .mute(let muted):
                guard let audio else { return "audio is off for this call" }
                try audio.mute(muted)
                return muted ? "audio muted" : "audio unmuted"
            case .record(true):
                guard options.recordDirectory != nil else { return "no recording folder: start the gateway with --record DIR" }
                recording = true
                for participant in remoteTracks.keys { await record(participant) }
                return "recording to \(options.recordDirectory!.path)"
            case .record(false):
                recording = false
                for participant in Array(remoteTracks.keys) { await stopRecording(participant) }
                return "recording stopped"
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

    // MARK: Recording (the WebM recorder lands separately)

    private func record(_ participant: String) async {
        logger.warning("recording is not available in this build yet")
    }

    private func stopRecording(_ participant: String) async {}

    // MARK: Status and shutdown

    public func status() async -> GatewayStatus {
        let recordings: [RecordingStatus] = []
        return GatewayStatus(call: await call.status(), video: video?.currentSource, audio: audio?.currentSource,
                             audioMuted: audio?.isMuted ?? false, recording: recording,
                             recordings: recordings.sorted { $0.file.path < $1.file.path })
    }

    /// Finalizes every recording (each bounded in time), leaves the room and stops the pipeline.
    public func stop() async {
        guard !stopped else { return }
        stopped = true
        recording = false
        await call.leave()
        _ = try? pipeline.setState(.null)
    }


    /// A few lines for `status`, the same the live display shows.
    public static func describe(_ status: GatewayStatus) -> String {
        StatusFormatter.lines(status).joined(separator: "\n")
    }
}
