import GStreamer
import WebRTC
import WebRTCTypes
import Logging
import Synchronization

/// Two peers in one process calling each other, signaling passed directly between them:
/// the sender sends test media (VP8 + Opus), the receiver decodes and counts what arrives.
/// Used by the demo, the benchmarks and the tests.
///
/// ```swift
/// let call = try await LoopbackCall.start()
/// _ = try await call.waitForFirstVideoFrame(timeout: .seconds(10))
/// print(call.decodedVideoFrames)
/// await call.close()
/// ```
public final class LoopbackCall: Sendable {
    public struct Options: Sendable {
        /// Deliver each side's candidates before its description reaches the other side, shuffled and delayed
        /// by up to `maximumCandidateDelay` each (the out-of-order trickle a real signaling path can produce).
        public var candidatesBeforeDescription = false
        public var maximumCandidateDelay: Duration = .zero
        public var width = 320
        public var height = 240
        public var name = "loopback"
        /// The receiver's jitter buffer latency (webrtcbin's `latency`), in milliseconds.
        public var latencyMilliseconds = 200

        public init() {}
    }

    public let sender: WebRTCPeer
    public let receiver: WebRTCPeer
    /// When `start` began (before the pipelines were built).
    public let started: ContinuousClock.Instant
    /// When the sender began `createOffer` (the pipelines were running by then).
    public var offerStarted: ContinuousClock.Instant { progress.withLock { $0.offerStarted ?? started } }

    private struct Progress {
        var offerStarted: ContinuousClock.Instant?
        var connected: ContinuousClock.Instant?
        var failed: String?
        var video: DecodedFrameCounter?
        var audio: DecodedFrameCounter?
        var heldForSender: [RTCIceCandidateInit?] = []
        var heldForReceiver: [RTCIceCandidateInit?] = []
    }
    private let progress = Mutex(Progress())
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let logger: Logger

    private init(sender: WebRTCPeer, receiver: WebRTCPeer, started: ContinuousClock.Instant, logger: Logger) {
        self.sender = sender
        self.receiver = receiver
        self.started = started
        self.logger = logger
    }

    /// Sets up both peers, negotiates, and returns while ICE and DTLS proceed.
    public static func start(options: Options = Options(), logger: Logger = Logger(label: "vcall.loopback")) async throws -> LoopbackCall {
        try GStreamer.initialize()
        let started = ContinuousClock.now
        let senderPipeline = try Pipeline(name: "\(options.name)-sender")
        let media = try TestMedia(pipeline: senderPipeline, prefix: options.name, width: options.width, height: options.height)
        try senderPipeline.setState(.playing)
        let sender = try WebRTCPeer(configuration: WebRTCConfiguration(name: "\(options.name)-a"), pipeline: senderPipeline, logger: logger)
        let receiver = try WebRTCPeer(configuration: WebRTCConfiguration(latencyMilliseconds: options.latencyMilliseconds, name: "\(options.name)-b"),
                                      logger: logger)
        try await sender.addTrack(.vp8, from: media.videoTee)
        try await sender.addTrack(.opus, from: media.audioTee)
        let call = LoopbackCall(sender: sender, receiver: receiver, started: started, logger: logger)
        call.watch(sender, isSender: true, hold: options.candidatesBeforeDescription)
        call.watch(receiver, isSender: false, hold: options.candidatesBeforeDescription)

        call.progress.withLock { $0.offerStarted = .now }
        let offer = try await sender.createOffer()
        try await sender.setLocalDescription(offer)
        if options.candidatesBeforeDescription {
            try await call.deliverHeldCandidates(to: receiver, from: \.heldForReceiver, maximumDelay: options.maximumCandidateDelay)
        }
        try await receiver.setRemoteDescription(offer)
        let answer = try await receiver.createAnswer()
        try await receiver.setLocalDescription(answer)
        if options.candidatesBeforeDescription {
            try await call.deliverHeldCandidates(to: sender, from: \.heldForSender, maximumDelay: options.maximumCandidateDelay)
        }
        try await sender.setRemoteDescription(answer)
        return call
    }

    private func watch(_ peer: WebRTCPeer, isSender: Bool, hold: Bool) {
        let other = isSender ? receiver : sender
        let task = Task { [weak self] in
            for await event in peer.events {
                guard let self else { return }
                switch event {
                case .localCandidate(let candidate):
                    let held = hold && self.progress.withLock { progress in
                        // Until the held batch has been flushed, it collects; afterwards candidates flow directly.
                        if isSender, progress.heldForReceiver.last != .some(nil) || progress.heldForReceiver.isEmpty {
                            progress.heldForReceiver.append(candidate); return true
                        }
                        if !isSender, progress.heldForSender.last != .some(nil) || progress.heldForSender.isEmpty {
                            progress.heldForSender.append(candidate); return true
                        }
                        return false
                    }
                    if !held { try? await other.addICECandidate(candidate) }
                case .connectionState(let state):
                    if state == .connected { self.progress.withLock { $0.connected = $0.connected ?? .now } }
                    if state == .failed { self.progress.withLock { $0.failed = "\(isSender ? "sender" : "receiver") connection failed" } }
                case .remoteTrack(let track):
                    guard !isSender else { break }
                    do {
                        let counter = try track.decode(in: peer.pipeline)
                        self.progress.withLock { if track.kind == .video { $0.video = counter } else { $0.audio = counter } }
                    } catch {
                        self.logger.error("cannot decode \(track): \(error)")
                    }
                default:
                    break
                }
            }
        }
        tasks.withLock { $0.append(task) }
    }

    /// Waits for the batch of held candidates to be complete (end-of-candidates seen), then delivers it
    /// shuffled, each after a random delay.
    private func deliverHeldCandidates(to peer: WebRTCPeer, from list: KeyPath<Progress, [RTCIceCandidateInit?]>,
                                       maximumDelay: Duration) async throws {
        var batch: [RTCIceCandidateInit?] = []
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            batch = progress.withLock { $0[keyPath: list] }
            if batch.last == .some(nil) { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        var candidates = batch.compactMap { $0 }
        candidates.shuffle()
        logger.debug("delivering \(candidates.count) candidates before the description")
        for candidate in candidates {
            if maximumDelay > .zero {
                let nanoseconds = Int64(maximumDelay.components.seconds) * 1_000_000_000 + maximumDelay.components.attoseconds / 1_000_000_000
                try await Task.sleep(for: .nanoseconds(Int64.random(in: 0...max(0, nanoseconds))))
            }
            try await peer.addICECandidate(candidate)
        }
        try await peer.addICECandidate(nil)
    }

    /// When both sides reported `connected`; throws on failure or timeout.
    public func waitUntilConnected(timeout: Duration) async throws -> ContinuousClock.Instant {
        try await wait(timeout: timeout, for: "the connection") { $0.connected }
    }

    /// When the receiver decoded its first video frame.
    public func waitForFirstVideoFrame(timeout: Duration) async throws -> ContinuousClock.Instant {
        try await wait(timeout: timeout, for: "a decoded video frame") { $0.video?.firstFrameTime }
    }

    private func wait(timeout: Duration, for what: String,
                      _ condition: @Sendable (Progress) -> ContinuousClock.Instant?) async throws -> ContinuousClock.Instant {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (value, failure) = progress.withLock { (condition($0), $0.failed) }
            if let value { return value }
            if let failure { throw WebRTCError.negotiation(failure) }
            if ContinuousClock.now >= deadline { throw WebRTCError.negotiation("timed out after \(timeout) waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    public var decodedVideoFrames: Int { progress.withLock { $0.video?.count ?? 0 } }
    public var decodedAudioFrames: Int { progress.withLock { $0.audio?.count ?? 0 } }

    /// Closes both peers and stops their pipelines.
    public func close() async {
        await sender.close()
        await receiver.close()
        _ = try? sender.pipeline.setState(.null)
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }
}
