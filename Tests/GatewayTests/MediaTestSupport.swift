import Foundation
import Gateway
import GStreamer
import Synchronization
import Testing
import WebRTC

/// What reached a sink: one entry per encoded buffer, with when it arrived (monotonic nanoseconds).
final class BufferRecorder: Sendable {
    struct Entry: Sendable {
        let arrival: UInt64
        let pts: UInt64?
        let isKeyframe: Bool
    }
    private let entries = Mutex<[Entry]>([])

    func record(_ buffer: BufferInfo) {
        let entry = Entry(arrival: GStreamer.monotonicNanoseconds, pts: buffer.pts, isKeyframe: !buffer.isDeltaUnit)
        entries.withLock { $0.append(entry) }
    }

    var all: [Entry] { entries.withLock { $0 } }
    var count: Int { entries.withLock { $0.count } }

    /// The longest time between two consecutive buffers arriving in [from, to] (monotonic nanoseconds).
    func longestGap(from: UInt64 = 0, to: UInt64 = .max) -> Duration {
        let times = all.map(\.arrival).filter { $0 >= from && $0 <= to }
        let gap = zip(times, times.dropFirst()).map { $1 - $0 }.max() ?? 0
        return .nanoseconds(Int64(gap))
    }

    /// Buffers whose PTS is not after the previous buffer's.
    var timestampRegressions: Int {
        let stamps = all.compactMap(\.pts)
        return zip(stamps, stamps.dropFirst()).filter { $1 <= $0 }.count
    }

    /// Whether a keyframe arrived in [from, to].
    func hasKeyframe(from: UInt64, to: UInt64) -> Bool {
        all.contains { $0.isKeyframe && $0.arrival >= from && $0.arrival <= to }
    }

    /// Waits until `count` more buffers than `baseline` have arrived; false on timeout.
    func waitFor(moreThan baseline: Int, by extra: Int = 1, timeout: Duration = .seconds(10)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while count < baseline + extra {
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(10))
        }
        return true
    }
}

/// A pipeline holding one `MediaInput` whose tee feeds `queue ! fakesink`, with a recorder on the sink.
struct MediaHarness {
    let pipeline: Pipeline
    let input: MediaInput
    let recorder = BufferRecorder()

    init(kind: MediaKind, source: String = "test", parameters: [String: String] = [:], name: String) throws {
        pipeline = try Pipeline(name: name)
        input = try MediaInput(kind: kind, source: source, library: try PipelineLibrary(), pipeline: pipeline,
                               parameters: parameters, options: .small(name: name))
        let branch = try pipeline.addChain("queue ! fakesink sync=false async=false")
        try input.tee.requestPad("src_%u").link(try #require(branch.first?.staticPad("sink")))
        let recorder = self.recorder
        try #require(branch.last?.staticPad("sink")).addProbe(.buffer) { info in
            if let buffer = info.buffer { recorder.record(buffer) }
            return .ok
        }
        try pipeline.setState(.playing)
    }

    func stop() { _ = try? pipeline.setState(.null) }
}

extension MediaInput.Options {
    /// Small frames, so that several encoders fit on a 2-core machine; keyframes only when asked for
    /// (so that a keyframe after a swap is the swap's).
    static func small(name: String) -> MediaInput.Options {
        var options = MediaInput.Options()
        options.width = 320
        options.height = 240
        options.videoBitrate = 300_000
        options.keyframeIntervalSeconds = 1000
        options.encoderThreads = 1
        options.name = name
        return options
    }
}

/// An Xvfb server on a free display number, killed by `stop()` (call it in every path: `defer`).
final class VirtualDisplay: Sendable {
    let display: String
    private let number: Int
    private let process: Process

    init(width: Int = 1280, height: Int = 720) async throws {
        let number = try #require((90..<400).first { number in
            !FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\(number)")
                && !FileManager.default.fileExists(atPath: "/tmp/.X\(number)-lock")
        })
        display = ":\(number)"
        self.number = number
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/Xvfb")
        process.arguments = [display, "-screen", "0", "\(width)x\(height)x24", "-nolisten", "tcp"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let socket = "/tmp/.X11-unix/X\(number)"
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: socket) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                stop()
                Issue.record("Xvfb \(display) did not come up (no \(socket))")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Kills the server and removes its lock file and socket. SIGKILL, because a process started from a
    /// Swift concurrency thread inherits that thread's signal mask, in which SIGTERM is blocked.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: "/tmp/.X\(number)-lock")
        try? FileManager.default.removeItem(atPath: "/tmp/.X11-unix/X\(number)")
    }
}

/// Seconds, for printing.
func seconds(_ duration: Duration) -> String {
    String(format: "%.3f s", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
}
