import ArgumentParser
import Foundation
import GStreamer
import Logging
import WebRTC
import WebRTCDemo

@main
struct VCallBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcall-bench",
        abstract: "vcall's benchmarks and resource checks: each prints its figures and can write JSON.",
        subcommands: [PipelineChurn.self, CallSetup.self, Senders.self, RelayRoom.self, Signaling.self, SignalingTrivialRelay.self]
    )
}

/// Benchmarks print their own figures; only warnings and errors of the code under test go to stderr.
func bootstrapWarningsOnlyLogging() {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = .warning
        return handler
    }
}

/// Writes a result as JSON to a file or stdout.
func emit(_ result: some Encodable, json path: String?) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = try encoder.encode(result)
    if let path {
        if path == "-" {
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        } else {
            try data.write(to: URL(fileURLWithPath: path))
        }
    }
}

/// Creates, runs to end of stream and tears down pipelines, then reports live GStreamer objects and RSS.
struct PipelineChurn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "churn",
        abstract: "Create, run and tear down N pipelines; report growth in live GStreamer objects and RSS."
    )

    @Option(help: "Pipelines to create and destroy.") var count = 1000
    @Option(help: "Pipelines run first, before the baseline is measured (caches, plugin loading).") var warmup = 50
    @Option(help: "Write the result as JSON to this file ('-' for stdout).") var json: String?

    struct Result: Codable {
        var pipelines: Int
        /// GStreamer objects (and mini objects: buffers, events, messages) made during the measured run.
        var objectsCreated: Int
        /// Objects made since start-up that are alive after the warm-up (plugin caches and the like)
        /// and after the measured run settled: equal counts mean nothing leaked.
        var objectsAliveBefore: Int
        var objectsAliveAfter: Int
        /// The types of the objects alive after the run that were made since start-up.
        var aliveTypeNames: [String]
        var rssBeforeBytes: Int
        var rssAfterBytes: Int
        var seconds: Double
    }

    func run() async throws {
        if ProcessInfo.processInfo.environment["VCALL_NO_LEAKS"] == nil { GStreamer.enableLeakTracking() }
        try GStreamer.initialize()
        guard let census = ObjectCensus() else {
            throw ValidationError("GStreamer's leaks tracer is not active (is VCALL_NO_LEAKS set, or GST_TRACERS overridden?)")
        }
        for _ in 0..<warmup { try await Self.cycle() }
        try await Task.sleep(for: .milliseconds(200))
        let aliveBefore = census.update()
        let createdBefore = census.created
        let rssBefore = GStreamer.residentSetSize() ?? 0
        let start = ContinuousClock.now
        for _ in 0..<count {
            try await Self.cycle()
            // A checkpoint each time keeps the tracer's own tables, and so RSS, small.
            census.update()
        }
        let elapsed = start.duration(to: .now)
        let aliveAfter = await census.settle(toAtMost: aliveBefore)
        let result = Result(pipelines: count, objectsCreated: census.created - createdBefore,
                            objectsAliveBefore: aliveBefore, objectsAliveAfter: aliveAfter,
                            aliveTypeNames: census.aliveTypeNames,
                            rssBeforeBytes: rssBefore, rssAfterBytes: GStreamer.residentSetSize() ?? 0,
                            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        let survivors = aliveAfter <= aliveBefore ? "" : " (alive now: \(result.aliveTypeNames.joined(separator: ", ")))"
        print(String(format: "%d pipelines in %.2f s: %d GStreamer objects made; live objects %d → %d", count, result.seconds,
                     result.objectsCreated, aliveBefore, aliveAfter) + survivors
              + String(format: "; RSS %.1f MB → %.1f MB", Double(result.rssBeforeBytes) / 1e6, Double(result.rssAfterBytes) / 1e6))
        try emit(result, json: json)
    }

    /// One pipeline's life, touching every kind of wrapper: launch, element lookup, properties,
    /// a probe, a signal, the bus stream, state changes.
    static func cycle() async throws {
        let pipeline = try Pipeline(launch: "videotestsrc name=source num-buffers=3 ! capsfilter caps=video/x-raw,width=64,height=48 ! tee name=split ! fakesink name=sink signal-handoffs=true")
        let messages = pipeline.messages()
        guard let source = pipeline.element(named: "source"), let sink = pipeline.element(named: "sink"),
              let sinkPad = sink.staticPad("sink") else { throw GStreamerError.link("churn pipeline is incomplete") }
        try source.set("pattern", "ball")
        _ = try source.get("pattern")
        let token = sinkPad.addProbe(.buffer) { _ in .ok }
        let connection = try sink.connect("handoff") { _ in nil }
        try pipeline.setState(.playing)
        for await message in messages {
            if case .endOfStream = message { break }
            if case .error(let failure) = message { throw GStreamerError.stateChange(element: "churn", target: .playing, cause: failure) }
        }
        sink.disconnect(connection)
        if let token { sinkPad.removeProbe(token) }
        try pipeline.setState(.null)
    }
}

/// Times calls between two in-process peers: createOffer → connected → first decoded video frame.
struct CallSetup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call-setup",
        abstract: "Time createOffer → ICE connected → first decoded frame for in-process peer pairs."
    )

    @Option(help: "Calls to time.") var calls = 10
    @Option(help: "The receiver's jitter buffer latency in milliseconds.") var latency = 200
    @Option(help: "Write the result as JSON to this file ('-' for stdout).") var json: String?

    struct Result: Codable {
        var calls: Int
        var latencyMilliseconds: Int
        var connectedMilliseconds: [Double]
        var firstFrameMilliseconds: [Double]
        var medianConnectedMilliseconds: Double
        var medianFirstFrameMilliseconds: Double
        var p95FirstFrameMilliseconds: Double
    }

    func run() async throws {
        bootstrapWarningsOnlyLogging()
        try GStreamer.initialize()
        var connected: [Double] = [], firstFrame: [Double] = []
        for index in 0..<calls {
            var options = LoopbackCall.Options()
            options.name = "bench\(index)"
            options.latencyMilliseconds = latency
            let call = try await LoopbackCall.start(options: options)
            let connectedAt = try await call.waitUntilConnected(timeout: .seconds(15))
            let frameAt = try await call.waitForFirstVideoFrame(timeout: .seconds(15))
            connected.append(milliseconds(call.offerStarted, connectedAt))
            firstFrame.append(milliseconds(call.offerStarted, frameAt))
            print(String(format: "call %2d: connected %8.3f ms, first decoded frame %8.3f ms", index + 1, connected.last!, firstFrame.last!))
            await call.close()
        }
        let result = Result(calls: calls, latencyMilliseconds: latency, connectedMilliseconds: connected, firstFrameMilliseconds: firstFrame,
                            medianConnectedMilliseconds: percentile(connected, 0.5),
                            medianFirstFrameMilliseconds: percentile(firstFrame, 0.5),
                            p95FirstFrameMilliseconds: percentile(firstFrame, 0.95))
        print(String(format: "createOffer → connected: median %.1f ms; createOffer → first decoded frame: median %.1f ms, p95 %.1f ms (%d calls, jitter buffer %d ms)",
                     result.medianConnectedMilliseconds, result.medianFirstFrameMilliseconds, result.p95FirstFrameMilliseconds, calls, latency))
        try emit(result, json: json)
    }
}

func milliseconds(_ from: ContinuousClock.Instant, _ to: ContinuousClock.Instant) -> Double {
    let elapsed = from.duration(to: to)
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}

func percentile(_ values: [Double], _ fraction: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let rank = fraction * Double(sorted.count - 1)
    let lower = Int(rank.rounded(.down)), upper = Int(rank.rounded(.up))
    return sorted[lower] + (sorted[upper] - sorted[lower]) * (rank - Double(lower))
}
