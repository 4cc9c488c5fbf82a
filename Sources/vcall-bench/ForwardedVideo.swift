import Foundation
import GStreamer
import Synchronization
import WebRTC

/// One participant's video as another receives it, in a benchmark: `depay ! vp8dec ! fakesink` attached
/// to the `ReceivedTrack`, counting every frame and noting when keyframes arrive. Only the first
/// keyframe reaches the decoder (every other frame is counted and dropped before it), so dozens of
/// forwarded 720p streams cost the receiving process little, while the first frame is really decoded.
final class ForwardedVideo: Sendable {
    let track: ReceivedTrack
    private struct State {
        var frames = 0
        var keyframes: [ContinuousClock.Instant] = []
        var firstDecoded: ContinuousClock.Instant?
    }
    private let state = Mutex(State())

    init(_ track: ReceivedTrack, in pipeline: Pipeline) throws {
        self.track = track
        guard track.kind == .video else {
            throw GStreamerError.invalidArgument("not a video track: \(track)")
        }
        let chain = try track.makeDecodeChain(in: pipeline)
        chain.frames.addProbe(.buffer) { [self] info in
            guard let buffer = info.buffer else { return .ok }
            let now = ContinuousClock.now
            let keyframe = !buffer.isDeltaUnit
            let decode = state.withLock { state in
                state.frames += 1
                if keyframe { state.keyframes.append(now) }
                return keyframe && state.keyframes.count == 1
            }
            return decode ? .ok : .drop
        }
        chain.decoded.addProbe(.buffer) { [self] _ in
            let now = ContinuousClock.now
            state.withLock { state in
                if state.firstDecoded == nil { state.firstDecoded = now }
            }
            return .ok
        }
        _ = try track.attach(chain.input)
    }

    var frames: Int { state.withLock { $0.frames } }
    var firstDecoded: ContinuousClock.Instant? { state.withLock { $0.firstDecoded } }

    /// The first keyframe that arrived after `instant`, if one has.
    func keyframe(after instant: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        state.withLock { $0.keyframes.first { $0 > instant } }
    }
}
