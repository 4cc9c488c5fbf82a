import Foundation
import Gateway
import GStreamer
import Synchronization
import WebRTC

/// One VP8 + Opus stream (720p at ~1.5 Mbit/s unless told otherwise), encoded once and shared by every participant of a
/// benchmark through two tees, so the machine's CPU goes to what is measured, not to encoders. Moving
/// colour bars keep the encoder near its target bitrate, as a busy camera would; the audio is silence
/// with a beep each second at the instant of the video's flash (`SyncMarks`).
final class EncodedSource: Sendable {
    let tracks: [OutgoingTrack]
    /// Video frames the encoder made so far.
    var videoFrames: Int { frames.load(ordering: .relaxed) }
    private let frames = Atomic<Int>(0)

    /// `keyframeInterval` in frames: periodic keyframes, besides those asked for by PLI.
    init(in pipeline: Pipeline, width: Int = 1280, height: Int = 720, videoBitrate: Int = 1_500_000,
         keyframeInterval: Int = 90) throws {
        let video = try pipeline.addChain("""
            videotestsrc is-live=true pattern=smpte horizontal-speed=8 ! video/x-raw,format=I420,width=\(width),height=\(height),framerate=30/1 \
            ! vp8enc name=source-vp8enc deadline=1 cpu-used=16 end-usage=cbr target-bitrate=\(videoBitrate) keyframe-max-dist=\(keyframeInterval) \
              lag-in-frames=0 error-resilient=partitions threads=1 ! tee name=source-video-tee allow-not-linked=true
            """)
        let audio = try pipeline.addChain("""
            audiotestsrc is-live=true wave=silence ! audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2 \
            ! opusenc name=source-opusenc ! tee name=source-audio-tee allow-not-linked=true
            """)
        guard let encoder = pipeline.element(named: "source-vp8enc"), let videoInput = encoder.staticPad("sink"),
              let encoded = encoder.staticPad("src"), let audioInput = pipeline.element(named: "source-opusenc")?.staticPad("sink")
        else { throw GStreamerError.link("the shared source's encoders have no pads") }
        SyncMarks(width: width, height: height, framesPerSecond: 30, sampleRate: 48000, channels: 2)
            .install(video: videoInput, audio: audioInput)
        tracks = [OutgoingTrack(codec: .vp8, tee: video.last!), OutgoingTrack(codec: .opus, tee: audio.last!)]
        encoded.addProbe(.buffer) { [self] _ in
            frames.add(1, ordering: .relaxed)
            return .ok
        }
        for element in (video + audio).reversed() { try element.syncStateWithParent() }
    }
}
