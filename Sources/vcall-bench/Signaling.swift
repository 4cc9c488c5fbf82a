import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// Load generator for the signaling benchmark: N WebSocket clients in rooms of two relay offer-, answer-
/// and candidate-sized messages to their room peer through a server, closed loop (at most `--in-flight`
/// unreceived messages per client), and measure relayed messages per second and relay latency.
///
/// It speaks the part of vcall's protocol a two-person call uses (`welcome`, `join-room`, `room-joined`,
/// `user-joined`, `offer`/`answer`/`ice-candidate` with `to`, relayed with `from`), so the same run drives
/// vcall-server and a minimal relay on another stack (bench/node_relay.js). Each message carries a marker
/// `xb=SENDER.SEQ.NANOS` inside its SDP or candidate string; the receiver, in the same process, checks the
/// sender, `from`, `type` and order, and takes the latency from the monotonic clock.
///
/// Everything runs on NIO event loops; both members of a room share one loop, so a room's state needs no lock.
///
/// ```
/// vcall-bench signaling --url ws://127.0.0.1:8080/ws --clients 1000 --seconds 10 --json -
/// ```
struct Signaling: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "N WebSocket clients in rooms of two relaying offers, answers and candidates: messages/s and relay latency."
    )

    @Option(help: "The server's WebSocket URL (ws:// only). Repeat it for several nodes of one service: the two members of each room then connect to different nodes, so every message crosses between them.")
    var url: [String] = ["ws://127.0.0.1:8080/ws"]
    @Option(help: "Clients (an even number: rooms of two).") var clients = 1000
    @Option(name: .customLong("in-flight"), help: "Messages a client may have sent that its peer has not yet received.") var inFlight = 2
    @Option(help: "Seconds of load before the measured window.") var warmup = 3.0
    @Option(help: "Seconds measured.") var seconds = 10.0
    @Option(help: "Event loop threads (default: one per core).") var threads = System.coreCount
    @Option(name: .customLong("candidates-per-sdp"), help: "Each client sends one SDP (offer or answer), then this many candidates, and again.")
    var candidatesPerSDP = 5
    @Option(name: .customLong("offer-bytes"), help: "Size of an offer's SDP.") var offerBytes = 4000
    @Option(name: .customLong("answer-bytes"), help: "Size of an answer's SDP.") var answerBytes = 3000
    @Option(name: .customLong("connect-concurrency"), help: "Connections opened at once during set-up.") var connectConcurrency = 50
    @Option(name: .customLong("setup-timeout"), help: "Seconds allowed to connect every client and pair every room.") var setupTimeout = 60.0
    @Option(help: "A name for the server under test, copied into the result.") var label = "server"
    @Option(help: "Write the result as JSON to this file ('-' for stdout).") var json: String?

    func validate() throws {
        guard clients >= 2, clients % 2 == 0 else { throw ValidationError("--clients must be an even number ≥ 2 (rooms of two)") }
        guard inFlight >= 1 else { throw ValidationError("--in-flight must be at least 1") }
        guard seconds > 0, warmup >= 0 else { throw ValidationError("--seconds must be > 0 and --warmup ≥ 0") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard candidatesPerSDP >= 0 else { throw ValidationError("--candidates-per-sdp must be ≥ 0") }
        for url in url {
            guard let parsed = URLComponents(string: url), parsed.scheme == "ws", parsed.host != nil else {
                throw ValidationError("--url \(url) must be a ws:// URL, e.g. ws://127.0.0.1:8080/ws")
            }
        }
    }

    struct Result: Codable {
        var label: String
        var url: String
        var clients: Int
        var rooms: Int
        var roomsRunning: Int
        var inFlightPerClient: Int
        var warmupSeconds: Double
        var seconds: Double
        var setupSeconds: Double
        /// Relay messages received by clients during the measured window.
        var messagesReceived: Int
        var messagesPerSecond: Double
        var megabytesPerSecond: Double
        var latencyMilliseconds: Latency
        /// Messages each client sends per SDP, and the SDP and candidate message sizes as sent (bytes of JSON).
        var mix: Mix
        /// Relay messages sent and never received once sending stopped and the drain time passed.
        var undelivered: Int
        /// Received relay messages with the wrong `from`, `type` or sender, out of order, or shorter than sent.
        var wrongFrom: Int
        var wrongType: Int
        var outOfOrder: Int
        var truncated: Int
        /// `error` messages from the server, by code, and other failures (connects, closed sockets).
        var serverErrors: [String: Int]
        var failures: [String: Int]
        /// CPU the generator itself used during the measured window, in cores.
        var generatorCores: Double
        var threads: Int

        struct Latency: Codable {
            var p50: Double
            var p90: Double
            var p99: Double
            var p999: Double
            var max: Double
            var mean: Double
        }

        struct Mix: Codable {
            var candidatesPerSDP: Int
            var offerBytes: Int
            var answerBytes: Int
            var candidateBytes: Int
        }
    }

    func run() async throws {
        let connectors = try url.map { url in
            guard let components = URLComponents(string: url), let host = components.host else { throw ValidationError("--url \(url): no host") }
            var path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
            if let query = components.percentEncodedQuery { path += "?" + query }
            return Connector(host: host, port: components.port ?? 80, path: path)
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let loops = Array(group.makeIterator())
        let stats = loops.map { LoopStats(eventLoop: $0) }
        let setup = NIOLockedValueBox(SetupCounts())
        let runTag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let payloads = Payloads(offerBytes: offerBytes, answerBytes: answerBytes)
        let settings = BenchSettings(inFlight: inFlight, candidatesPerSDP: candidatesPerSDP, payloads: payloads, setup: setup)

        // Rooms are spread over the loops; both members of a room live on the room's loop.
        var rooms: [BenchRoom] = []
        for index in 0..<(clients / 2) {
            let loopIndex = index % loops.count
            rooms.append(BenchRoom(index: index, roomId: "bench-\(runTag)-\(index)", eventLoop: loops[loopIndex],
                                   stats: stats[loopIndex], settings: settings))
        }

        // Set-up: connect (a bounded number at a time), each client joins its room on `welcome`.
        let setupStart = NIODeadline.now()
        await withTaskGroup(of: Void.self) { tasks in
            var started = 0
            for room in rooms {
                for slot in 0..<2 {
                    if started >= connectConcurrency { await tasks.next() }
                    started += 1
                    let member = room.members[slot]
                    // With several nodes, a room's two members are on different nodes.
                    let connector = connectors[slot % connectors.count]
                    tasks.addTask { await connector.connect(member, on: room.eventLoop, setup: setup) }
                }
            }
        }
        let setupDeadline = setupStart + .nanoseconds(Int64(setupTimeout * 1e9))
        while NIODeadline.now() < setupDeadline {
            let counts = setup.withLockedValue { $0 }
            if counts.paired + counts.failed >= clients { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        // A room runs only when both members know each other (and agree on each other's id).
        var running: [BenchRoom] = []
        for room in rooms where try await room.eventLoop.submit({ room.isPaired }).get() { running.append(room) }
        let setupSeconds = Double((NIODeadline.now() - setupStart).nanoseconds) / 1e9
        let counts = setup.withLockedValue { $0 }
        FileHandle.standardError.write(Data(String(
            format: "signaling[%@]: %d of %d clients connected, %d rooms of %d paired in %.1f s\n",
            label, counts.welcomed, clients, running.count, rooms.count, setupSeconds
        ).utf8))

        // Load: warm-up, then the measured window; each loop counts only what it receives inside the window.
        let start = NIODeadline.now()
        let windowStart = start.uptimeNanoseconds + UInt64(warmup * 1e9)
        let windowEnd = windowStart + UInt64(seconds * 1e9)
        for room in running {
            room.eventLoop.execute { room.start(windowStart: windowStart, windowEnd: windowEnd) }
        }
        try await Task.sleep(for: .nanoseconds(Int64(windowStart) - Int64(NIODeadline.now().uptimeNanoseconds)))
        let cpuBefore = processCPUSeconds()
        // A driver samples the server's CPU between these two lines.
        FileHandle.standardError.write(Data("signaling[\(label)]: measuring\n".utf8))
        try await Task.sleep(for: .nanoseconds(Int64(windowEnd) - Int64(NIODeadline.now().uptimeNanoseconds)))
        let cpuAfter = processCPUSeconds()
        FileHandle.standardError.write(Data("signaling[\(label)]: measured\n".utf8))

        // Drain: sending stopped at the window's end; wait for what is still in flight.
        var snapshots: [LoopStats.Snapshot] = []
        let drainDeadline = NIODeadline.now() + .seconds(5)
        repeat {
            try await Task.sleep(for: .milliseconds(100))
            snapshots = []
            for loopStats in stats { snapshots.append(try await loopStats.eventLoop.submit { loopStats.snapshot() }.get()) }
        } while snapshots.reduce(0, { $0 + $1.sentTotal - $1.receivedTotal }) > 0 && NIODeadline.now() < drainDeadline

        for room in rooms { room.eventLoop.execute { room.close() } }
        try? await Task.sleep(for: .milliseconds(200))
        try? await group.shutdownGracefully()

        var histogram = LatencyHistogram()
        var total = LoopStats.Snapshot()
        for snapshot in snapshots {
            histogram.merge(snapshot.histogram)
            total.add(snapshot)
        }
        var failures = counts.failures
        for (key, value) in total.failures { failures[key, default: 0] += value }
        let result = Result(
            label: label, url: url.joined(separator: " "), clients: clients, rooms: rooms.count, roomsRunning: running.count,
            inFlightPerClient: inFlight, warmupSeconds: warmup, seconds: seconds, setupSeconds: setupSeconds,
            messagesReceived: total.received, messagesPerSecond: Double(total.received) / seconds,
            megabytesPerSecond: Double(total.receivedBytes) / seconds / 1e6,
            latencyMilliseconds: .init(
                p50: histogram.milliseconds(0.5), p90: histogram.milliseconds(0.9), p99: histogram.milliseconds(0.99),
                p999: histogram.milliseconds(0.999), max: Double(histogram.max) / 1e6, mean: histogram.total == 0 ? 0 : histogram.mean / 1e6
            ),
            mix: .init(candidatesPerSDP: candidatesPerSDP, offerBytes: payloads.sampleBytes(.offer),
                       answerBytes: payloads.sampleBytes(.answer), candidateBytes: payloads.sampleBytes(.candidate)),
            undelivered: total.sentTotal - total.receivedTotal,
            wrongFrom: total.wrongFrom, wrongType: total.wrongType, outOfOrder: total.outOfOrder, truncated: total.truncated,
            serverErrors: total.serverErrors, failures: failures,
            generatorCores: (cpuAfter - cpuBefore) / seconds, threads: threads
        )
        print(String(
            format: "signaling[%@]: %.0f messages/s (%.1f MB/s) over %.0f s, latency p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d rooms; generator %.2f cores; %d undelivered, %d server errors",
            label, result.messagesPerSecond, result.megabytesPerSecond, seconds, result.latencyMilliseconds.p50,
            result.latencyMilliseconds.p99, result.latencyMilliseconds.max, running.count, result.generatorCores,
            result.undelivered, result.serverErrors.values.reduce(0, +)
        ))
        try emit(result, json: json)
    }
}

func processCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

// MARK: - Set-up bookkeeping (shared by all loops, touched a few times per client)

struct SetupCounts: Sendable {
    var connected = 0
    var welcomed = 0
    var paired = 0
    var failed = 0
    var failures: [String: Int] = [:]
}

/// What every room shares: immutable after start-up.
struct BenchSettings: Sendable {
    let inFlight: Int
    let candidatesPerSDP: Int
    let payloads: Payloads
    let setup: NIOLockedValueBox<SetupCounts>
}
