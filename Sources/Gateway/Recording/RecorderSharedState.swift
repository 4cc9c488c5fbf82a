import Foundation
import Recordings
import GStreamer
import Synchronization
import WebRTC

/// What a recorder's pad probes share with it: the input gate, what reached the muxer (frames, keyframes,
/// packets, timing, gaps), the phase and the first write failure.
/// `Sendable` through its Atomics and Mutex; probes only take the Mutex briefly and never block otherwise.
final class RecorderSharedState: Sendable {
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
        var failure: BusError?
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
    func fail(_ failure: BusError) -> Bool {
        isBlocked.store(true, ordering: .releasing)
        return counts.withLock { counts in
            guard counts.failure == nil else { return false }
            counts.failure = failure
            counts.phase = .failed
            return true
        }
    }

    var failure: BusError? { counts.withLock { $0.failure } }
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
    static func describe(_ failure: BusError) -> String {
        if failure.isNoSpaceLeft {
            return "the disk is full (no space left on device), so the recording stopped; what was written before stays readable: free space or use --record DIR on another disk"
        }
        if failure.source.hasSuffix("-filesink") {
            return "cannot write the recording: \(failure.message); check the disk or use --record DIR elsewhere"
        }
        return "the recording stopped: \(failure.message) (\(failure.source))"
    }
}
