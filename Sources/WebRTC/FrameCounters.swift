import GStreamer
import Synchronization

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
