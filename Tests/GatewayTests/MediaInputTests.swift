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
            return error is GatewayError && text.hasPrefix("the video source 'camera' did not start (")
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

    @Test("an input swapped before its pipeline starts (a bad file refused, a good one taken), and one added to a running pipeline, both send")
    func followsPipelineState() async throws {
        let pipeline = try Pipeline(name: "follow")
        defer { _ = try? pipeline.setState(.null) }
        let library = try PipelineLibrary()
        let video = try MediaInput(kind: .video, source: "test", library: library, pipeline: pipeline, options: .small(name: "follow-video"))
        let bayer = FileManager.default.temporaryDirectory.appendingPathComponent("vcall-bayer-\(UUID().uuidString).pipeline")
        try "videotestsrc is-live=true ! capsfilter caps=video/x-bayer,format=rggb".write(to: bayer, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: bayer) }
        await #expect { try await video.swap(to: bayer.path) } throws: { "\($0)".contains("did not start (its output is not raw video)") }
        #expect(video.currentSource == "test")
        try await video.swap(to: "none")
        #expect(video.currentSource == "none")
        try pipeline.setState(.playing)
        let audio = try MediaInput(kind: .audio, source: "test", library: library, pipeline: pipeline, options: .small(name: "follow-audio"))
        let deadline = ContinuousClock.now + .seconds(10)
        while (video.statistics.encodedBuffers < 10 || audio.statistics.encodedBuffers < 10) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(video.statistics.encodedBuffers >= 10, "video from the source swapped in before start")
        #expect(audio.statistics.encodedBuffers >= 10, "audio from the input added while running")
        #expect(pipeline.children.filter { $0.name.hasPrefix("follow-video-source-") }.map(\.name) == ["follow-video-source-2"])
    }

    @Test("swapping to the microphone either sends it or, without a sound server, says so while the tone keeps flowing")
    func microphone() async throws {
        let harness = try MediaHarness(kind: .audio, name: "mic")
        defer { harness.stop() }
        let recorder = harness.recorder, input = harness.input
        #expect(try await recorder.waitFor(moreThan: 0, by: 10))
        do {
            try await input.swap(to: "mic")
            #expect(input.currentSource == "mic")  // a machine with PulseAudio or PipeWire
        } catch {
            print("mic: \(error)")
            #expect(error is GatewayError)
            #expect("\(error)".hasPrefix("the audio source 'mic' did not start ("))
            #expect("\(error)".contains("PulseAudio") && "\(error)".hasSuffix("still sending 'test'"))
            #expect(input.currentSource == "test")
        }
        #expect(try await recorder.waitFor(moreThan: recorder.count, by: 10), "audio keeps flowing")
        #expect(recorder.timestampRegressions == 0)
    }

    @Test("a file of the user's own that cannot be linked, or sends no data in time, is rolled back too; a good one is used")
    func userPipelinesThatFail() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vcall-user-pipelines-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // Bayer cannot be converted by videoconvert: the source fails to negotiate once it runs.
        let bayer = folder.appendingPathComponent("bayer.pipeline")
        try "# raw sensor data\nvideotestsrc is-live=true ! capsfilter caps=video/x-bayer,format=rggb\n".write(to: bayer, atomically: true, encoding: .utf8)
        // Runs but never delivers a buffer.
        let silent = folder.appendingPathComponent("silent.pipeline")
        try "videotestsrc is-live=true ! identity drop-probability=1.0".write(to: silent, atomically: true, encoding: .utf8)
        let mine = folder.appendingPathComponent("mine.pipeline")
        try "videotestsrc is-live=true pattern=${pattern:-snow}".write(to: mine, atomically: true, encoding: .utf8)

        let pipeline = try Pipeline(name: "user-files")
        defer { _ = try? pipeline.setState(.null) }
        var options = MediaInput.Options.small(name: "user-files")
        options.startTimeout = .seconds(1)
        let input = try MediaInput(kind: .video, source: "test", library: try PipelineLibrary(), pipeline: pipeline, options: options)
        try pipeline.setState(.playing)
        func frames(after count: Int) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(5)
            while input.statistics.encodedBuffers < count + 10 {
                if ContinuousClock.now > deadline { return false }
                try await Task.sleep(for: .milliseconds(20))
            }
            return true
        }
        #expect(try await frames(after: 0))
        await #expect {
            try await input.swap(to: bayer.path)
        } throws: { error in
            print("bayer: \(error)")
            return "\(error)".hasPrefix("\(bayer.path) did not start (its output is not raw video): ") && "\(error)".hasSuffix("still sending 'test'")
        }
        #expect(try await frames(after: input.statistics.encodedBuffers), "frames keep flowing after the bayer file failed")
        await #expect {
            try await input.swap(to: silent.path)
        } throws: { error in
            print("silent: \(error)")
            return "\(error)".hasPrefix("\(silent.path) did not start (timed out after 1.0 seconds waiting for the first buffer)")
        }
        #expect(try await frames(after: input.statistics.encodedBuffers), "frames keep flowing after the silent file timed out")
        try await input.swap(to: mine.path)
        #expect(input.currentSource == mine.path)
        #expect(try await frames(after: input.statistics.encodedBuffers))
        #expect(input.statistics.timestampRegressions == 0)
        #expect(input.statistics.swaps == 1)
    }
}
