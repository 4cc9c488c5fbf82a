import GStreamer
import WebRTC

/// Live test media, encoded once into tees that any number of peers send from:
/// a moving test pattern as VP8 and a tone as Opus.
///
/// ```swift
/// let media = try TestMedia(pipeline: pipeline)
/// try await peer.addTrack(.vp8, from: media.videoTee)
/// ```
public struct TestMedia: Sendable {
    public let videoTee: Element
    public let audioTee: Element

    /// Adds the sources to `pipeline` (named `prefix-video-tee` and `prefix-audio-tee`).
    public init(pipeline: Pipeline, prefix: String = "test", width: Int = 320, height: Int = 240, framerate: Int = 30) throws {
        let video = try pipeline.addChain("""
            videotestsrc is-live=true pattern=ball ! video/x-raw,width=\(width),height=\(height),framerate=\(framerate)/1 \
            ! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=\(framerate * 2) error-resilient=partitions \
            ! tee name=\(prefix)-video-tee allow-not-linked=true
            """)
        let audio = try pipeline.addChain("""
            audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 \
            ! opusenc ! tee name=\(prefix)-audio-tee allow-not-linked=true
            """)
        videoTee = video.last!
        audioTee = audio.last!
        for element in (video + audio).reversed() { try element.syncStateWithParent() }
    }
}
