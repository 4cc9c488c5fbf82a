import Foundation
import Recordings
import Gateway
import GStreamer
import Synchronization
import Testing
import WebRTC

/// Real peers (run under scripts/netns-run), real media, real files checked with ffprobe.
@Suite("Recording a participant to WebM", .serialized, .timeLimit(.minutes(3)))
struct ParticipantRecorderTests {
    init() throws { try GStreamer.initialize() }

    @Test("a participant's VP8 and Opus go into a seekable WebM that starts on a keyframe, lasts as long as the recording, and has a matching report")
    func recordsParticipant() async throws {
        let directory = try TemporaryDirectory("record")
        defer { directory.remove() }
        let call = try await RecordingCall.start(name: "rec1")
        // Made before the tracks arrive, as when recording is on from the start of a call.
        let recorder = try await ParticipantRecorder.start(tracks: call.tracks, pipeline: call.receiver.pipeline, directory: directory.url, room: "stand up/daily",
                                                           expecting: [.video, .audio])
        try await call.waitUntilConnected()
        let linked = try await waitForRecordingPhase(recorder)
        // Recording time starts when the first frame (a keyframe) goes into the file.
        try await recorder.waitUntilRecording(timeout: .seconds(10))
        let began = ContinuousClock.now
        let framesAtStart = call.encodedVideoFrames.load(ordering: .relaxed)
        print("first keyframe muxed \((began - linked).seconds) s after every track was linked")
        try await Task.sleep(until: began + .seconds(5))
        let live = recorder.status
        #expect(live.phase == .recording && live.duration > 4 && live.bytes > 10_000, "\(live)")
        let stopped = ContinuousClock.now
        let framesAtStop = call.encodedVideoFrames.load(ordering: .relaxed)
        let report = await recorder.stop()
        let again = await recorder.stop()
        #expect(again == report, "a second stop returns the same report")
        await call.close()

        let file = recorder.file
        #expect(file.lastPathComponent.hasPrefix("stand_up_daily-Alice_rec1-"))
        #expect(file.lastPathComponent.range(of: #"-\d{8}T\d{6}Z\.webm$"#, options: .regularExpression) != nil)
        let probed = try await ProbedFile.probe(file)
        let wallClock = (stopped - began).seconds
        let inspection = try WebMRepair.inspect(file)
        print("recording: wall clock \(wallClock) s, file \(probed.formatDuration ?? -1) s, \(probed.videoFrames.count) video frames, \(probed.audioPackets) audio packets, \(report.bytes) bytes, \(inspection)")

        #expect(probed.codecs.sorted() == ["opus", "vp8"])
        let duration = try #require(probed.formatDuration, "the file has a duration")
        // The file may also hold what arrived just before the first frame was muxed (the track and the
        // recorder's queue hold it until the gate opens) and what drained after stop() began.
        let drain = ParticipantRecorder.Options().drain.seconds
        #expect(duration >= wallClock - 0.5 && duration <= wallClock + drain + 0.5,
                "file \(duration) s vs wall clock \(wallClock) s (+ \(drain) s drain)")
        #expect(inspection.isFinalized, "duration and Cues written: \(inspection)")
        #expect(probed.videoFrames.first?.isKey == true, "the first frame is a keyframe")

        // Frames: what the sender encoded over the span the file covers, at the rate it encoded while we recorded.
        let senderRate = Double(framesAtStop - framesAtStart) / wallClock
        let span = (probed.videoFrames.last?.time ?? 0) - (probed.videoFrames.first?.time ?? 0) + 1 / senderRate
        let ratio = Double(probed.videoFrames.count) / (span * senderRate)
        print("frame ratio \(ratio) (\(probed.videoFrames.count) recorded over \(span) s at \(senderRate) fps sent)")
        #expect(ratio >= 0.95)

        // The report beside the file says the same as the file.
        let written = try RecordingReport.read(from: recorder.reportFile)
        #expect(written.participantID == "rec1-id" && written.displayName == "Alice rec1" && written.room == "stand up/daily")
        #expect(written.file == file.lastPathComponent)
        #expect(written.videoFrames == probed.videoFrames.count)
        #expect(written.keyframes == probed.videoFrames.filter(\.isKey).count)
        #expect(written.audioPackets == probed.audioPackets)
        #expect(written.videoCodec == "VP8" && written.audioCodec == "OPUS")
        #expect(abs(written.duration - duration) < 0.1, "report \(written.duration) s vs file \(duration) s")
        #expect(written.finalizedCleanly && written.error == nil)
        #expect(written.videoGaps.isEmpty, "\(written.videoGaps)")
        #expect(written.end > written.start)
        #expect(written.bytes == (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int))
        let json = String(decoding: try Data(contentsOf: recorder.reportFile), as: UTF8.self)
        #expect(json.range(of: #""start" : "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ""#, options: .regularExpression) != nil, "ISO 8601 UTC")
    }

    @Test("recording can start, stop and start again during one call: two finalized files, each from a keyframe")
    func startStopStart() async throws {
        let directory = try TemporaryDirectory("restart")
        defer { directory.remove() }
        let call = try await RecordingCall.start(name: "rec2")
        try await call.waitUntilConnected()
        var reports: [RecordingReport] = []
        var files: [URL] = []
        for _ in 0..<2 {
            // Started mid-call: the tracks already flow into their tees.
            let recorder = try await ParticipantRecorder.start(tracks: call.tracks, pipeline: call.receiver.pipeline, directory: directory.url, room: "room",
                                                               expecting: [.video, .audio])
            try await recorder.waitUntilRecording(timeout: .seconds(15))
            try await Task.sleep(for: .seconds(2))
            reports.append(await recorder.stop())
            files.append(recorder.file)
        }
        await call.close()
        #expect(files[0] != files[1], "each recording has its own file")
        for (file, report) in zip(files, reports) {
            let probed = try await ProbedFile.probe(file)
            #expect(probed.codecs.sorted() == ["opus", "vp8"])
            #expect(probed.videoFrames.first?.isKey == true)
            #expect(probed.videoFrames.count > 40, "\(probed.videoFrames.count) frames")
            #expect(probed.videoFrames.count == report.videoFrames)
            #expect(try WebMRepair.inspect(file).isFinalized)
            #expect((probed.formatDuration ?? 0) > 1.5, "a recording started mid-call begins at 0")
            #expect(report.finalizedCleanly)
            #expect(FileManager.default.fileExists(atPath: RecordingReport.url(for: file).path))
        }
    }

    @Test("a track of a new kind that arrives after the file began is handed over, and a new recorder takes both")
    func lateTrackGoesToANewFile() async throws {
        let directory = try TemporaryDirectory("late")
        defer { directory.remove() }
        let call = try await RecordingCall.start(name: "late", videoDelay: .seconds(3))
        let late = Mutex<[MediaKind]>([])
        let first = try await ParticipantRecorder.start(tracks: call.tracks, pipeline: call.receiver.pipeline, directory: directory.url,
                                                        room: "r", expecting: [.audio], lateTrack: { track in
                                                            late.withLock { $0.append(track.kind) }
                                                        })
        try await call.waitUntilConnected()
        try await first.waitUntilRecording(timeout: .seconds(10))
        let deadline = ContinuousClock.now + .seconds(10)
        while late.withLock({ $0.isEmpty }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(late.withLock { $0 } == [.video], "the late video was handed over")
        // What GatewaySession.rollOver does: a new recorder with every track, then the old one ends.
        let second = try await ParticipantRecorder.start(tracks: call.tracks, pipeline: call.receiver.pipeline, directory: directory.url,
                                                         room: "r", expecting: [.audio, .video])
        try await second.waitUntilRecording(timeout: .seconds(10))
        let firstReport = await first.stop()
        try await Task.sleep(for: .seconds(2))
        let secondReport = await second.stop()
        await call.close()
        #expect(firstReport.videoFrames == 0 && firstReport.audioPackets > 100 && firstReport.finalizedCleanly)
        #expect(secondReport.videoFrames > 30 && secondReport.audioPackets > 50 && secondReport.finalizedCleanly, "\(secondReport)")
        let probed = try await ProbedFile.probe(second.file)
        #expect(probed.codecs.sorted() == ["opus", "vp8"])
        #expect(probed.videoFrames.first?.isKey == true, "the new file starts on a keyframe")
    }

    @Test("stopping before any track arrived leaves no file and no report")
    func stopWithoutMedia() async throws {
        let directory = try TemporaryDirectory("empty")
        defer { directory.remove() }
        let pipeline = try Pipeline(name: "empty")
        try pipeline.setState(.playing)
        defer { _ = try? pipeline.setState(.null) }
        let tracks = ParticipantTracks(participantID: "ghost", displayName: "")
        let recorder = try await ParticipantRecorder.start(tracks: tracks, pipeline: pipeline, directory: directory.url, room: "r", expecting: [.video])
        #expect(recorder.file.lastPathComponent.hasPrefix("r-ghost-"), "the id names the file when there is no display name")
        let report = await recorder.stop()
        #expect(report.videoFrames == 0 && !report.finalizedCleanly)
        #expect(!FileManager.default.fileExists(atPath: recorder.file.path))
        #expect(!FileManager.default.fileExists(atPath: recorder.reportFile.path))
        #expect(pipeline.allElements.allSatisfy { !ParticipantRecorder.owns(elementNamed: $0.name) }, "its elements are gone")
    }

    @Test("file name parts keep letters and digits of any script and replace the rest")
    func fileNameComponents() {
        #expect(ParticipantRecorder.fileNameComponent("Zoë O'Brien / 日本") == "Zoë_O_Brien_日本")
        #expect(ParticipantRecorder.fileNameComponent("../../etc/passwd") == "_etc_passwd")
        #expect(ParticipantRecorder.fileNameComponent("") == "unnamed")
        #expect(ParticipantRecorder.fileNameComponent(String(repeating: "a", count: 300)).count == 60)
    }
}

@Suite("Crashes and full disks", .serialized, .timeLimit(.minutes(3)))
struct RecordingFailureTests {
    init() throws { try GStreamer.initialize() }

    @Test("a WebM writer killed with SIGKILL leaves a file readable to within 2 s of the kill, and repair makes it seekable")
    func killedWriterIsRepaired() async throws {
        let directory = try TemporaryDirectory("killed")
        defer { directory.remove() }
        let file = directory.url.appendingPathComponent("killed.webm")
        // The recorder's muxer and sink settings in a process of its own, as a stand-in for the gateway.
        let launch = """
            videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
            ! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=60 ! queue ! \(WebMFormat.muxerLaunch(name: "m")) \
            ! \(WebMFormat.sinkLaunch(location: file.path)) \
            audiotestsrc is-live=true ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 ! opusenc ! opusparse ! queue ! m.
            """
        let process = Process()
        process.executableURL = URL(filePath: "/usr/bin/gst-launch-1.0")
        // gst-launch-1.0 escapes the spaces inside each argument: pass the description word by word.
        process.arguments = ["-q", "-e"] + launch.split(separator: " ").map(String.init)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        let deadline = ContinuousClock.now + .seconds(15)
        while ((try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0) == 0 {
            guard ContinuousClock.now < deadline, process.isRunning else { Issue.record("gst-launch-1.0 wrote nothing"); return }
            try await Task.sleep(for: .milliseconds(10))
        }
        let firstBytes = ContinuousClock.now
        try await Task.sleep(for: .seconds(4))
        kill(process.processIdentifier, SIGKILL)
        let killedAfter = (ContinuousClock.now - firstBytes).seconds
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)

        let before = try WebMRepair.inspect(file)
        #expect(!before.isFinalized && !before.hasCues, "a killed writer leaves no index: \(before)")
        let killed = try await ProbedFile.probe(file)
        let readable = try #require(killed.videoFrames.last?.time)
        print("kill -9 after \(killedAfter) s of writing: video readable to \(readable) s, tail lost \(killedAfter - readable) s; \(killed.videoFrames.count) frames, \(killed.audioPackets) audio packets; \(before)")
        #expect(readable >= killedAfter - 2)

        let repaired = try await WebMRepair.repair(file, timeout: .seconds(60))
        #expect(repaired.lastPathComponent == "killed.repaired.webm")
        #expect(FileManager.default.fileExists(atPath: file.path), "the original is kept")
        let after = try WebMRepair.inspect(repaired)
        #expect(after.isFinalized, "\(after)")
        let fixed = try await ProbedFile.probe(repaired)
        #expect(fixed.codecs.sorted() == ["opus", "vp8"])
        #expect(fixed.videoFrames.count == killed.videoFrames.count, "every readable frame kept")
        #expect(fixed.videoFrames.first?.isKey == true)
        let duration = try #require(fixed.formatDuration)
        #expect(abs(duration - readable) < 0.2, "repaired duration \(duration) s vs readable \(readable) s")

        // In place: the original becomes the finalized file.
        let inPlace = try await WebMRepair.repair(file, replacingOriginal: true)
        #expect(inPlace == file)
        #expect(try WebMRepair.inspect(file).isFinalized)
        #expect(!FileManager.default.fileExists(atPath: file.appendingPathExtension("part").path))
    }

    @Test("repairing something that is not WebM fails with a message")
    func repairRejectsGarbage() async throws {
        let directory = try TemporaryDirectory("garbage")
        defer { directory.remove() }
        let file = directory.url.appendingPathComponent("noise.webm")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: file)
        await #expect(throws: GatewayError.self) { try await WebMRepair.repair(file, timeout: .seconds(20)) }
        #expect(throws: GatewayError.self) { try WebMRepair.inspect(file) }
        #expect(!FileManager.default.fileExists(atPath: directory.url.appendingPathComponent("noise.repaired.webm").path))
    }

    @Test("a full disk stops the recording with a clear error, what was written stays readable, and the call goes on")
    func fullDisk() async throws {
        let mountPoint = try TemporaryDirectory("full")
        let elsewhere = try TemporaryDirectory("elsewhere")
        defer { elsewhere.remove() }
        // A tiny tmpfs (needs root; the tests run as root inside scripts/netns-run here).
        try await run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=96k", "vcall-test-full", mountPoint.url.path])
        defer {
            let unmount = Process()
            unmount.executableURL = URL(filePath: "/usr/bin/umount")
            unmount.arguments = ["-l", mountPoint.url.path]
            try? unmount.run()
            unmount.waitUntilExit()
            mountPoint.remove()
        }
        let call = try await RecordingCall.start(name: "rec3")
        try await call.waitUntilConnected()
        let recorder = try await ParticipantRecorder.start(tracks: call.tracks, pipeline: call.receiver.pipeline, directory: mountPoint.url, room: "full",
                                                           expecting: [.video, .audio])
        try await recorder.waitUntilRecording(timeout: .seconds(15))
        let deadline = ContinuousClock.now + .seconds(60)
        while recorder.status.phase != .failed {
            guard ContinuousClock.now < deadline else { Issue.record("96 KiB never filled: \(recorder.status)"); break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let status = recorder.status
        print("full disk: \(status)")
        #expect(status.error?.description.contains("no space left on device") == true)
        #expect(status.error?.description.contains("--record DIR") == true)
        let report = await recorder.stop()
        #expect(!report.finalizedCleanly)
        #expect(report.error?.contains("disk is full") == true)
        let probed = try await ProbedFile.probe(recorder.file)
        #expect(probed.videoFrames.count > 10, "what was written stays readable: \(probed.videoFrames.count) frames")
        #expect(probed.videoFrames.first?.isKey == true)

        // The call goes on: the same tees feed a new recording elsewhere.
        let next = try await ParticipantRecorder.start(tracks: call.tracks, pipeline: call.receiver.pipeline, directory: elsewhere.url, room: "full",
                                                       expecting: [.video, .audio])
        try await next.waitUntilRecording(timeout: .seconds(15))
        try await Task.sleep(for: .seconds(1))
        let nextReport = await next.stop()
        #expect(nextReport.finalizedCleanly && nextReport.videoFrames > 20, "\(nextReport)")
        let stats = try await call.receiver.stats()
        #expect(await call.receiver.connectionState == .connected)
        #expect(stats.packetsReceived > 0)
        await call.close()
    }
}
