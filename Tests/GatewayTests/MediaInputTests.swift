import Foundation
import Gateway
import GStreamer
import Testing
import WebRTC

/// Real pipelines with live sources, encoded for real; swaps while media flows. Serialized: the timing
/// figures (gaps) mean little if several encoders share the 2 cores at once.
@Suite("MediaInput: sources, normalize, encode, swap", .serialized, .timeLimit(.minutes(2)))
struct MediaInputTests {
    init() throws { try GStreamer.initialize() }

    @Test("video from the test source flows through the tee as VP8 at the configured size")
    func videoFlows() async throws {
        let harness = try MediaHarness(kind: .video, name: "flow-video")
        defer { harness.stop() }
        #expect(harness.input.codec == .vp8)
        #expect(harness.input.currentSource == "test")
        #expect(try await harness.recorder.waitFor(moreThan: 0, by: 30))
        let caps = try #require(harness.input.encodedCaps?.structure(at: 0))
        #expect(caps.name == "video/x-vp8")
        #expect(caps["width"]?.intValue == 320 && caps["height"]?.intValue == 240)
        #expect(harness.recorder.all.first?.isKeyframe == true)
        #expect(harness.recorder.timestampRegressions == 0)
    }

    @Test("swaps test → none → test: caps at the tee never change, the longest gap is short, a keyframe follows each swap, PTS only grow")
    func videoSwaps() async throws {
        let harness = try MediaHarness(kind: .video, name: "swap-video")
        defer { harness.stop() }
        let recorder = harness.recorder, input = harness.input
        #expect(try await recorder.waitFor(moreThan: 0, by: 20))
        let initialCaps = try #require(input.encodedCaps)
        let started = GStreamer.monotonicNanoseconds
        var swapTimes: [(String, UInt64, UInt64)] = []
        for source in ["none", "test", "none", "test"] {
            try await Task.sleep(for: .milliseconds(600))
            let before = GStreamer.monotonicNanoseconds
            try await input.swap(to: source)
            let after = GStreamer.monotonicNanoseconds
            swapTimes.append((source, before, after))
            #expect(input.currentSource == source)
            #expect(try await recorder.waitFor(moreThan: recorder.count, by: 5), "frames after the swap to \(source)")
            #expect(input.encodedCaps == initialCaps, "caps at the tee after the swap to \(source)")
        }
        try await Task.sleep(for: .milliseconds(500))
        let gap = recorder.longestGap(from: started)
        for (source, before, after) in swapTimes {
            print("swap to \(source): \(seconds(.nanoseconds(Int64(after - before)))); longest gap around it \(seconds(recorder.longestGap(from: before - 100_000_000, to: after + 500_000_000)))")
            #expect(recorder.hasKeyframe(from: before, to: after + 500_000_000), "a keyframe after the swap to \(source)")
        }
        print("video swaps: longest gap between encoded frames \(seconds(gap)) over \(recorder.count) frames; keyframes \(input.statistics.keyframes)")
        #expect(gap < .milliseconds(400))
        #expect(recorder.timestampRegressions == 0)
        #expect(input.statistics.timestampRegressions == 0)
        #expect(input.statistics.swaps == 4)
        // Only the current source remains in the pipeline.
        #expect(harness.pipeline.children.filter { $0.name.hasPrefix("swap-video-source-") }.map(\.name) == ["swap-video-source-4"])
    }

    @Test("audio swaps test → none → test and mute keep Opus flowing with the same caps and growing PTS")
    func audioSwapsAndMute() async throws {
        let harness = try MediaHarness(kind: .audio, name: "swap-audio")
        defer { harness.stop() }
        let recorder = harness.recorder, input = harness.input
        #expect(input.codec == .opus)
        #expect(try await recorder.waitFor(moreThan: 0, by: 25))
        let initialCaps = try #require(input.encodedCaps)
        #expect(initialCaps.structure(at: 0)?.name == "audio/x-opus")
        let started = GStreamer.monotonicNanoseconds
        for source in ["none", "test", "none", "test"] {
            try await Task.sleep(for: .milliseconds(400))
            try await input.swap(to: source)
            #expect(try await recorder.waitFor(moreThan: recorder.count, by: 10), "audio after the swap to \(source)")
            #expect(input.encodedCaps == initialCaps)
        }
        try input.mute(true)
        #expect(input.isMuted)
        #expect(try await recorder.waitFor(moreThan: recorder.count, by: 10), "audio keeps flowing while muted")
        try input.mute(false)
        let gap = recorder.longestGap(from: started)
        print("audio swaps: longest gap between encoded buffers \(seconds(gap)) over \(recorder.count) buffers")
        #expect(gap < .milliseconds(400))
        #expect(recorder.timestampRegressions == 0)
        #expect(throws: GatewayError.self) { try MediaInput(kind: .video, source: "test", library: try PipelineLibrary(), pipeline: try Pipeline(), options: .small(name: "mute-video")).mute(true) }
    }

    @Test("a missing camera is a clear error before anything changes, and the old source keeps sending")
    func missingCamera() async throws {
        let harness = try MediaHarness(kind: .video, name: "camera-missing")
        defer { harness.stop() }
        let recorder = harness.recorder, input = harness.input
        #expect(try await recorder.waitFor(moreThan: 0, by: 10))
        await #expect {
            try await input.swap(to: "camera", parameters: ["device": "/dev/video-vcall-missing"])
        } throws: { error in
            (error as? GatewayError) == .source("no camera at /dev/video-vcall-missing: connect one or pass another device (--device), or use --video test or --video screen")
        }
        #expect(input.currentSource == "test")
        #expect(try await recorder.waitFor(moreThan: recorder.count, by: 15), "frames keep flowing from the test source")
        // The default device is checked too (this machine has no /dev/video0).
        if !FileManager.default.fileExists(atPath: "/dev/video0") {
            await #expect { try await input.swap(to: "camera") } throws: { "\($0)".hasPrefix("no camera at /dev/video0") }
        }
    }

    @Test("a source that fails to start is rolled back: the old source carries on with a short gap")
    func failedStartRollsBack() async throws {
        let harness = try MediaHarness(kind: .video, name: "rollback")
        defer { harness.stop() }
        let recorder = harness.recorder, input = harness.input
        #expect(try await recorder.waitFor(moreThan: 0, by: 10))
        let before = GStreamer.monotonicNanoseconds
        // /dev/null exists, so the up-front check passes; v4l2src then fails to open it as a camera.
        await #expect {
            try await input.swap(to: "camera", parameters: ["device": "/dev/null"])
        } throws: { error in
            let text = "\(error)"
            print("rolled back: \(text)")
            return error is GatewayError && text.hasPrefix("the video source 'camera' did not start: ")
                && text.contains("--video test") && text.hasSuffix("still sending 'test'")
        }
        #expect(input.currentSource == "test")
        #expect(try await recorder.waitFor(moreThan: recorder.count, by: 15), "frames keep flowing from the test source")
        let gap = recorder.longestGap(from: before)
        print("rollback: longest gap \(seconds(gap))")
        #expect(gap < .seconds(1))
        #expect(recorder.timestampRegressions == 0)
        #expect(harness.pipeline.children.filter { $0.name.hasPrefix("rollback-source-") }.map(\.name) == ["rollback-source-0"])
        // A later swap still works.
        try await input.swap(to: "none")
        #expect(try await recorder.waitFor(moreThan: recorder.count, by: 5))
    }

    @Test("no X server at the display is a clear error, and the old source keeps sending")
    func missingDisplay() async throws {
        let harness = try MediaHarness(kind: .video, name: "display-missing")
        defer { harness.stop() }
        let recorder = harness.recorder, input = harness.input
        #expect(try await recorder.waitFor(moreThan: 0, by: 10))
        await #expect {
            try await input.swap(to: "screen", parameters: ["display": ":387"])
        } throws: { "\($0)" == "no X server at display :387 (no /tmp/.X11-unix/X387): start one or set DISPLAY to a running one, or use --video test" }
        #expect(try await recorder.waitFor(moreThan: recorder.count, by: 10))
    }

    @Test("under Xvfb: test → screen → test, with the same caps and a short gap")
    func screenSwap() async throws {
        let display = try await VirtualDisplay()
        defer { display.stop() }
        let harness = try MediaHarness(kind: .video, name: "screen-swap")
        defer { harness.stop() }
        let recorder = harness.recorder, input = harness.input
        #expect(try await recorder.waitFor(moreThan: 0, by: 10))
        let caps = try #require(input.encodedCaps)
        let started = GStreamer.monotonicNanoseconds
        try await input.swap(to: "screen", parameters: ["display": display.display])
        #expect(input.currentSource == "screen")
        let beforeScreen = recorder.count
        #expect(try await recorder.waitFor(moreThan: beforeScreen, by: 30), "frames from the screen")
        #expect(input.encodedCaps == caps)
        try await input.swap(to: "test")
        #expect(try await recorder.waitFor(moreThan: recorder.count, by: 10))
        #expect(input.encodedCaps == caps)
        let gap = recorder.longestGap(from: started)
        print("screen swaps: longest gap \(seconds(gap)); \(recorder.count - beforeScreen) frames since the screen came in")
        #expect(gap < .milliseconds(500))
        #expect(recorder.timestampRegressions == 0)
    }

    @Test("a MediaInput starting with a missing camera is refused with the clear error")
    func startWithMissingCamera() throws {
        let pipeline = try Pipeline(name: "start-missing")
        #expect {
            try MediaInput(kind: .video, source: "camera", library: try PipelineLibrary(), pipeline: pipeline,
                           parameters: ["device": "/dev/video-vcall-missing"], options: .small(name: "start-missing"))
        } throws: { "\($0)".hasPrefix("no camera at /dev/video-vcall-missing") }
        #expect(pipeline.children.isEmpty)
    }
}
