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

    @Option(help: "The server's WebSocket URL (ws:// only).") var url = "ws://127.0.0.1:8080/ws"
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
        guard let parsed = URLComponents(string: url), parsed.scheme == "ws", parsed.host != nil else {
            throw ValidationError("--url must be a ws:// URL, e.g. ws://127.0.0.1:8080/ws")
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
        guard let components = URLComponents(string: url), let host = components.host else { throw ValidationError("--url: no host") }
        let port = components.port ?? 80
        var path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { path += "?" + query }

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
        let connector = Connector(host: host, port: port, path: path)
        await withTaskGroup(of: Void.self) { tasks in
            var started = 0
            for room in rooms {
                for slot in 0..<2 {
                    if started >= connectConcurrency { await tasks.next() }
                    started += 1
                    let member = room.members[slot]
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
            label: label, url: url, clients: clients, rooms: rooms.count, roomsRunning: running.count,
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

// MARK: - Payloads

enum PayloadKind: Sendable { case offer, answer, candidate }

/// The JSON a client sends, split around the marker: `head + "xb=SENDER.SEQ.NANOS" + tail`.
/// SDPs look like a browser's (audio + video, the usual codecs), grown with codec blocks to the asked size.
struct Payloads: Sendable {
    let offerSDP: (head: String, tail: String)
    let answerSDP: (head: String, tail: String)
    let candidate: (head: String, tail: String)

    init(offerBytes: Int, answerBytes: Int) {
        offerSDP = Self.sdp(role: "offer", bytes: offerBytes)
        answerSDP = Self.sdp(role: "answer", bytes: answerBytes)
        candidate = ("candidate:", " 1 udp 2122260223 192.168.1.23 54321 typ host generation 0 network-cost 10")
    }

    /// The message as a client sends it to `peer`, with the marker in place.
    func message(_ kind: PayloadKind, to peer: String) -> (head: [UInt8], tail: [UInt8]) {
        switch kind {
        case .offer, .answer:
            let type = kind == .offer ? "offer" : "answer"
            let sdp = kind == .offer ? offerSDP : answerSDP
            return (Array(#"{"type":"\#(type)","to":"\#(peer)","\#(type)":{"type":"\#(type)","sdp":""#.utf8) + Array(sdp.head.utf8),
                    Array(sdp.tail.utf8) + Array(#""}}"#.utf8))
        case .candidate:
            return (Array(#"{"type":"ice-candidate","to":"\#(peer)","candidate":{"candidate":""#.utf8) + Array(candidate.head.utf8),
                    Array(candidate.tail.utf8) + Array(#"","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"Ab3d"}}"#.utf8))
        }
    }

    /// A message's size on the wire (before framing), with a typical marker and a 24-character peer id.
    func sampleBytes(_ kind: PayloadKind) -> Int {
        let parts = message(kind, to: String(repeating: "0", count: 24))
        return parts.head.count + "xb=123.4567.123456789012".utf8.count + parts.tail.count
    }

    /// An SDP as JSON-escaped text, split at the session name (`s=`), which holds the marker.
    static func sdp(role: String, bytes: Int) -> (head: String, tail: String) {
        let fingerprint = (0..<32).map { String(format: "%02X", ($0 * 37 + 11) & 0xFF) }.joined(separator: ":")
        let setup = role == "offer" ? "actpass" : "active"
        let audio = [
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
            "a=ice-ufrag:Ab3d", "a=ice-pwd:q4XZ0Jm1oWqYyS3lB2aVbKxR", "a=ice-options:trickle",
            "a=fingerprint:sha-256 \(fingerprint)", "a=setup:\(setup)", "a=mid:0",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", "a=sendrecv",
            "a=msid:6bd4c1f0-3c1e-4c55-9d4b-2a1f0e2d7c11 0f9e4b2a-8a3d-4f61-b1c7-5e2d9a8c3b44", "a=rtcp-mux",
            "a=rtpmap:111 opus/48000/2", "a=rtcp-fb:111 transport-cc", "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111", "a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000", "a=rtpmap:13 CN/8000", "a=rtpmap:110 telephone-event/48000", "a=rtpmap:126 telephone-event/8000",
            "a=ssrc:1746254911 cname:Xr4wZ0q2H8pYbT1d", "a=ssrc:1746254911 msid:6bd4c1f0-3c1e-4c55-9d4b-2a1f0e2d7c11 0f9e4b2a-8a3d-4f61-b1c7-5e2d9a8c3b44",
        ]
        var video = [
            "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0", "a=ice-ufrag:Ab3d", "a=ice-pwd:q4XZ0Jm1oWqYyS3lB2aVbKxR",
            "a=ice-options:trickle", "a=fingerprint:sha-256 \(fingerprint)", "a=setup:\(setup)", "a=mid:1",
            "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset", "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "a=extmap:13 urn:3gpp:video-orientation", "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay", "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=sendrecv", "a=msid:6bd4c1f0-3c1e-4c55-9d4b-2a1f0e2d7c11 3c2b1a09-7d6e-4f5a-8b9c-0d1e2f3a4b5c", "a=rtcp-mux", "a=rtcp-rsize",
        ]
        var codecs: [(String, String?)] = [("VP8/90000", nil), ("VP9/90000", "profile-id=0"), ("VP9/90000", "profile-id=2"),
                                            ("AV1/90000", "level-idx=5;profile=0;tier=0")]
        for (index, profile) in ["42001f", "42e01f", "4d001f", "64001f", "f4001f", "42001f", "42e01f", "4d001f", "64001f", "42001f"].enumerated() {
            codecs.append(("H264/90000", "level-asymmetry-allowed=1;packetization-mode=\(index % 2);profile-level-id=\(profile)"))
        }
        let session = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=xb=123.4567.123456789012", "t=0 0", "a=group:BUNDLE 0 1",
                       "a=extmap-allow-mixed", "a=msid-semantic: WMS 6bd4c1f0-3c1e-4c55-9d4b-2a1f0e2d7c11"]
        func size(_ lines: [String]) -> Int { lines.reduce(0) { $0 + $1.utf8.count + 2 } }
        let ssrcs = ["a=ssrc-group:FID 3319141187 2734812345", "a=ssrc:3319141187 cname:Xr4wZ0q2H8pYbT1d", "a=ssrc:2734812345 cname:Xr4wZ0q2H8pYbT1d"]
        var payloadTypes: [Int] = []
        var codecLines: [String] = []
        var pt = 96
        // Codec blocks (with their rtx) while they fit, as a browser lists them.
        for (name, fmtp) in codecs {
            var block = ["a=rtpmap:\(pt) \(name)", "a=rtcp-fb:\(pt) goog-remb", "a=rtcp-fb:\(pt) transport-cc", "a=rtcp-fb:\(pt) ccm fir",
                         "a=rtcp-fb:\(pt) nack", "a=rtcp-fb:\(pt) nack pli"]
            if let fmtp { block.append("a=fmtp:\(pt) \(fmtp)") }
            block += ["a=rtpmap:\(pt + 1) rtx/90000", "a=fmtp:\(pt + 1) apt=\(pt)"]
            let mLine = "m=video 9 UDP/TLS/RTP/SAVPF " + (payloadTypes + [pt, pt + 1]).map(String.init).joined(separator: " ")
            if size(session + audio + [mLine] + video + codecLines + block + ssrcs) > bytes { break }
            codecLines += block
            payloadTypes += [pt, pt + 1]
            pt += 2
        }
        video.insert("m=video 9 UDP/TLS/RTP/SAVPF " + payloadTypes.map(String.init).joined(separator: " "), at: 0)
        video += codecLines + ssrcs
        // The rest with ssrc attributes, as a simulcast sender's SDP has.
        var ssrc = 100
        while size(session + audio + video) + 45 <= bytes {
            video.append("a=ssrc:27348\(ssrc) cname:Xr4wZ0q2H8pYbT1d")
            ssrc += 1
        }
        let head = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1"].map { $0 + "\\r\\n" }.joined() + "s="
        let rest = ["t=0 0", "a=group:BUNDLE 0 1", "a=extmap-allow-mixed", "a=msid-semantic: WMS 6bd4c1f0-3c1e-4c55-9d4b-2a1f0e2d7c11"] + audio + video
        let tail = "\\r\\n" + rest.map { $0 + "\\r\\n" }.joined()
        return (head, tail)
    }
}

// MARK: - Latency histogram

/// Nanosecond latencies in log-linear buckets: exact below 256 ns, then 128 buckets per power of two (< 0.8 % error).
struct LatencyHistogram: Sendable {
    private(set) var counts = [UInt64](repeating: 0, count: 256 + 56 * 128)
    private(set) var total: UInt64 = 0
    private(set) var sum: Double = 0
    private(set) var max: UInt64 = 0

    mutating func record(_ nanoseconds: UInt64) {
        counts[Self.bucket(nanoseconds)] += 1
        total += 1
        sum += Double(nanoseconds)
        if nanoseconds > max { max = nanoseconds }
    }

    mutating func merge(_ other: LatencyHistogram) {
        for index in counts.indices { counts[index] += other.counts[index] }
        total += other.total
        sum += other.sum
        max = Swift.max(max, other.max)
    }

    var mean: Double { total == 0 ? .nan : sum / Double(total) }

    /// A percentile in milliseconds; 0 when nothing was recorded (JSON has no NaN).
    func milliseconds(_ fraction: Double) -> Double { total == 0 ? 0 : percentile(fraction) / 1e6 }

    func percentile(_ fraction: Double) -> Double {
        guard total > 0 else { return .nan }
        let rank = UInt64((fraction * Double(total)).rounded(.up))
        var seen: UInt64 = 0
        for (index, count) in counts.enumerated() where count > 0 {
            seen += count
            if seen >= Swift.max(rank, 1) { return Swift.min(Self.midpoint(index), Double(max)) }
        }
        return Double(max)
    }

    static func bucket(_ value: UInt64) -> Int {
        if value < 256 { return Int(value) }
        let shift = (63 - value.leadingZeroBitCount) - 7
        let mantissa = Int(value >> UInt64(shift))  // 128…255
        return 256 + (shift - 1) * 128 + (mantissa - 128)
    }

    static func midpoint(_ index: Int) -> Double {
        if index < 256 { return Double(index) }
        let shift = (index - 256) / 128 + 1
        let mantissa = (index - 256) % 128 + 128
        return Double(UInt64(mantissa) << UInt64(shift)) + Double(UInt64(1) << UInt64(shift)) / 2
    }
}

// MARK: - Per-loop statistics

/// What the clients of one event loop received. Only touched on that loop.
final class LoopStats: @unchecked Sendable {  // mutated only on `eventLoop`
    let eventLoop: any EventLoop
    var histogram = LatencyHistogram()
    var received = 0
    var receivedBytes = 0
    var sentTotal = 0
    var receivedTotal = 0
    var wrongFrom = 0
    var wrongType = 0
    var outOfOrder = 0
    var truncated = 0
    var serverErrors: [String: Int] = [:]
    var failures: [String: Int] = [:]

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    struct Snapshot: Sendable {
        var histogram = LatencyHistogram()
        var received = 0, receivedBytes = 0, sentTotal = 0, receivedTotal = 0
        var wrongFrom = 0, wrongType = 0, outOfOrder = 0, truncated = 0
        var serverErrors: [String: Int] = [:]
        var failures: [String: Int] = [:]

        mutating func add(_ other: Snapshot) {
            received += other.received
            receivedBytes += other.receivedBytes
            sentTotal += other.sentTotal
            receivedTotal += other.receivedTotal
            wrongFrom += other.wrongFrom
            wrongType += other.wrongType
            outOfOrder += other.outOfOrder
            truncated += other.truncated
            for (key, value) in other.serverErrors { serverErrors[key, default: 0] += value }
            for (key, value) in other.failures { failures[key, default: 0] += value }
        }
    }

    func snapshot() -> Snapshot {
        Snapshot(histogram: histogram, received: received, receivedBytes: receivedBytes, sentTotal: sentTotal, receivedTotal: receivedTotal,
                 wrongFrom: wrongFrom, wrongType: wrongType, outOfOrder: outOfOrder, truncated: truncated,
                 serverErrors: serverErrors, failures: failures)
    }
}

// MARK: - Rooms and clients

/// Two clients that relay to each other. Lives on one event loop, with its members.
final class BenchRoom: @unchecked Sendable {  // state touched only on `eventLoop`
    let index: Int
    let roomId: String
    let eventLoop: any EventLoop
    let stats: LoopStats
    let settings: BenchSettings
    var members: [BenchClient] = []
    var running = false
    var windowStart: UInt64 = 0
    var windowEnd: UInt64 = 0

    init(index: Int, roomId: String, eventLoop: any EventLoop, stats: LoopStats, settings: BenchSettings) {
        self.index = index
        self.roomId = roomId
        self.eventLoop = eventLoop
        self.stats = stats
        self.settings = settings
        members = [BenchClient(room: self, slot: 0), BenchClient(room: self, slot: 1)]
    }

    /// Both members know each other's id, and it is the id the server gave the other.
    var isPaired: Bool {
        let (a, b) = (members[0], members[1])
        return a.id != nil && b.id != nil && a.peerId == b.id && b.peerId == a.id
    }

    func start(windowStart: UInt64, windowEnd: UInt64) {
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        running = true
        for member in members { member.prepare() }
        for member in members {
            member.pump(now: NIODeadline.now().uptimeNanoseconds)
            member.flushIfNeeded()
        }
    }

    func close() {
        running = false
        for member in members { member.context?.close(promise: nil) }
    }
}

/// One WebSocket client. Only touched on its room's event loop.
final class BenchClient: @unchecked Sendable {  // state touched only on `room.eventLoop`
    unowned let room: BenchRoom
    let slot: Int
    /// Unique in the run: the marker's sender field.
    let number: Int
    var context: ChannelHandlerContext?
    var id: String?
    var peerId: String?
    var outstanding = 0
    var nextSeq: UInt64 = 0
    var expectedSeq: UInt64 = 0
    var needsFlush = false
    var random = XorshiftGenerator(seed: 0)
    private var sdp: (head: [UInt8], tail: [UInt8]) = ([], [])
    private var candidate: (head: [UInt8], tail: [UInt8]) = ([], [])
    /// The peer's from-field as the server stamps it: `"from":"ID"`.
    private var fromField: [UInt8] = []
    private var peerSDPType: [UInt8] = []
    private var peerSDPBytes = 0
    private var peerCandidateBytes = 0

    var peer: BenchClient { room.members[1 - slot] }

    init(room: BenchRoom, slot: Int) {
        self.room = room
        self.slot = slot
        self.number = room.index * 2 + slot
        random = XorshiftGenerator(seed: UInt64(number + 1) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// The caller (slot 0) sends offers, the callee answers.
    var sdpKind: PayloadKind { slot == 0 ? .offer : .answer }

    func prepare() {
        guard let peerId else { return }
        let payloads = room.settings.payloads
        sdp = payloads.message(sdpKind, to: peerId)
        candidate = payloads.message(.candidate, to: peerId)
        fromField = Array(#""from":"\#(peerId)""#.utf8)
        peerSDPType = Array(#""type":"\#(peer.sdpKind == .offer ? "offer" : "answer")""#.utf8)
        let peerSDP = payloads.message(peer.sdpKind, to: "")
        let peerCandidate = payloads.message(.candidate, to: "")
        // What the relayed message must hold at least: the payload without `{"type":…,"to":""`.
        peerSDPBytes = peerSDP.head.count + peerSDP.tail.count - 40
        peerCandidateBytes = peerCandidate.head.count + peerCandidate.tail.count - 40
    }

    // MARK: sending

    func pump(now: UInt64) {
        guard room.running, let context else { return }
        if now >= room.windowEnd {
            room.running = false
            return
        }
        let period = UInt64(room.settings.candidatesPerSDP + 1)
        while outstanding < room.settings.inFlight {
            let seq = nextSeq
            nextSeq += 1
            let parts = seq % period == 0 ? sdp : candidate
            var buffer = context.channel.allocator.buffer(capacity: parts.head.count + parts.tail.count + 48)
            buffer.writeBytes(parts.head)
            buffer.writeStaticString("xb=")
            buffer.writeDecimal(UInt64(number))
            buffer.writeInteger(UInt8(ascii: "."))
            buffer.writeDecimal(seq)
            buffer.writeInteger(UInt8(ascii: "."))
            buffer.writeDecimal(NIODeadline.now().uptimeNanoseconds)
            buffer.writeBytes(parts.tail)
            let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(using: &random), data: buffer)
            context.write(NIOAny(frame), promise: nil)
            outstanding += 1
            room.stats.sentTotal += 1
            needsFlush = true
        }
    }

    func flushIfNeeded() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    func send(text: String) {
        guard let context else { return }
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(using: &random), data: context.channel.allocator.buffer(string: text))
        context.writeAndFlush(NIOAny(frame), promise: nil)
    }

    // MARK: receiving

    static let marker = Array("xb=".utf8)
    static let onlineUsers = Array(#""online-users""#.utf8)

    func receive(_ data: ByteBuffer) {
        let now = NIODeadline.now().uptimeNanoseconds
        let handled: Bool = data.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return false }
            let count = raw.count
            // Presence lists are big and irrelevant here: skip them without parsing.
            if let at = find(Self.onlineUsers, in: base, count: Swift.min(count, 64)), at < 48 { return true }
            guard let markerAt = find(Self.marker, in: base, count: count) else { return false }
            var index = markerAt + 3
            let sender = parseDecimal(base, count, &index)
            index += 1
            let seq = parseDecimal(base, count, &index)
            index += 1
            let sentAt = parseDecimal(base, count, &index)
            relayed(sender: sender, seq: seq, sentAt: sentAt, now: now, base: base, count: count)
            return true
        }
        if !handled { control(data) }
    }

    private func relayed(sender: UInt64, seq: UInt64, sentAt: UInt64, now: UInt64, base: UnsafePointer<UInt8>, count: Int) {
        let stats = room.stats
        let peer = self.peer
        stats.receivedTotal += 1
        if sender != UInt64(peer.number) { stats.wrongFrom += 1 }
        if find(fromField, in: base, count: count) == nil { stats.wrongFrom += 1 }
        let isSDP = seq % UInt64(room.settings.candidatesPerSDP + 1) == 0
        let type = isSDP ? peerSDPType : Self.candidateType
        if find(type, in: base, count: count) == nil { stats.wrongType += 1 }
        if count < (isSDP ? peerSDPBytes : peerCandidateBytes) { stats.truncated += 1 }
        if seq != expectedSeq { stats.outOfOrder += 1 }
        expectedSeq = seq + 1
        if now >= room.windowStart, now < room.windowEnd {
            stats.received += 1
            stats.receivedBytes += count
            stats.histogram.record(now &- sentAt)
        }
        // Closed loop: the peer may send again.
        peer.outstanding -= 1
        peer.pump(now: now)
    }

    static let candidateType = Array(#""type":"ice-candidate""#.utf8)

    /// Set-up and error messages: parsed in full.
    private func control(_ data: ByteBuffer) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(data.readableBytesView)) as? [String: Any],
              let type = object["type"] as? String else {
            room.stats.failures["unparsed message", default: 0] += 1
            return
        }
        let setup = room.settings.setup
        switch type {
        case "welcome":
            guard id == nil, let id = object["id"] as? String else { return }
            self.id = id
            setup.withLockedValue { $0.welcomed += 1 }
            send(text: #"{"type":"join-room","roomId":"\#(room.roomId)","capacity":2}"#)
        case "room-joined":
            if let peers = object["peers"] as? [[String: Any]], let first = peers.first?["id"] as? String { learnPeer(first) }
        case "user-joined":
            if let from = object["from"] as? String { learnPeer(from) }
        case "user-disconnected":
            room.stats.failures["user-disconnected", default: 0] += 1
        case "error":
            let code = object["code"] as? String ?? "?"
            room.stats.serverErrors[code, default: 0] += 1
            if room.stats.serverErrors[code] == 1 {
                FileHandle.standardError.write(Data("signaling: server error \(code): \(object["message"] as? String ?? "")\n".utf8))
            }
        default:
            break
        }
    }

    private func learnPeer(_ id: String) {
        guard peerId == nil else {
            if peerId != id { room.stats.failures["unexpected peer", default: 0] += 1 }
            return
        }
        peerId = id
        if room.isPaired { room.settings.setup.withLockedValue { $0.paired += 2 } }
    }

    func closed() {
        guard context != nil else { return }
        context = nil
        if room.running { room.stats.failures["socket closed during the run", default: 0] += 1 }
    }
}

/// Frames in, messages out, for one client.
final class BenchClientHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let client: BenchClient

    init(client: BenchClient) { self.client = client }

    func handlerAdded(context: ChannelHandlerContext) {
        client.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            client.receive(frame.unmaskedData)
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(using: &client.random), data: frame.unmaskedData)
            context.writeAndFlush(Self.wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            client.closed()
            context.close(promise: nil)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // What this read let the peer send goes out in one write.
        client.peer.flushIfNeeded()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        client.closed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        client.room.stats.failures["socket error: \(error)", default: 0] += 1
        context.close(promise: nil)
    }
}

/// Opens one client's WebSocket on its room's event loop.
struct Connector: Sendable {
    let host: String
    let port: Int
    let path: String

    func connect(_ client: BenchClient, on eventLoop: any EventLoop, setup: NIOLockedValueBox<SetupCounts>) async {
        let host = self.host, port = self.port, path = self.path
        do {
            let upgraded: EventLoopFuture<Bool> = try await ClientBootstrap(group: eventLoop)
                .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let upgrader = NIOTypedWebSocketClientUpgrader<Bool>(maxFrameSize: 1 << 24) { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(
                                    NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 1 << 16,
                                                                maxAccumulatedFrameSize: 1 << 24)
                                )
                                try channel.pipeline.syncOperations.addHandler(BenchClientHandler(client: client))
                                return true
                            }
                        }
                        var headers = HTTPHeaders()
                        headers.add(name: "Host", value: "\(host):\(port)")
                        headers.add(name: "Content-Length", value: "0")
                        let request = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
                        let configuration = NIOTypedHTTPClientUpgradeConfiguration<Bool>(
                            upgradeRequestHead: request, upgraders: [upgrader],
                            notUpgradingCompletionHandler: { channel in channel.eventLoop.makeSucceededFuture(false) }
                        )
                        var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
                        // The server's first message (`welcome`) may arrive with its 101 response: keep those bytes.
                        pipeline.leftOverBytesStrategy = .forwardBytes
                        return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: pipeline)
                    }
                }
            if try await upgraded.get() {
                setup.withLockedValue { $0.connected += 1 }
            } else {
                setup.withLockedValue { $0.failed += 1; $0.failures["upgrade refused", default: 0] += 1 }
            }
        } catch {
            setup.withLockedValue { $0.failed += 1; $0.failures["connect: \(error)", default: 0] += 1 }
        }
    }
}

// MARK: - Small helpers

/// A fast generator for WebSocket masking keys (the system one makes a syscall per key).
struct XorshiftGenerator: RandomNumberGenerator, Sendable {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x2545_F491_4F6C_DD1D : seed }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

/// The first index of `needle` in `count` bytes at `base`.
@inline(__always)
func find(_ needle: [UInt8], in base: UnsafePointer<UInt8>, count: Int) -> Int? {
    let length = needle.count
    guard length > 0, count >= length else { return nil }
    let first = Int32(needle[0])
    var index = 0
    while index <= count - length {
        guard let hit = memchr(base + index, first, count - length + 1 - index) else { return nil }
        let at = base.distance(to: UnsafePointer(hit.assumingMemoryBound(to: UInt8.self)))
        let same = needle.withUnsafeBufferPointer { memcmp(base + at, $0.baseAddress!, length) == 0 }
        if same { return at }
        index = at + 1
    }
    return nil
}

@inline(__always)
func parseDecimal(_ base: UnsafePointer<UInt8>, _ count: Int, _ index: inout Int) -> UInt64 {
    var value: UInt64 = 0
    while index < count, base[index] >= 48, base[index] <= 57 {
        value = value &* 10 &+ UInt64(base[index] - 48)
        index += 1
    }
    return value
}

extension ByteBuffer {
    @inline(__always)
    mutating func writeDecimal(_ value: UInt64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for 20 digits
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                raw[23 - count] = UInt8(48 + rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
        }
        withUnsafeBytes(of: &digits) { raw in
            _ = writeBytes(UnsafeRawBufferPointer(rebasing: raw[(24 - count)..<24]))
        }
    }
}

// MARK: - The generator's ceiling: a trivial relay

/// The least a relay can do, for measuring the generator's own ceiling: `welcome`, rooms of two, and every
/// other message forwarded to the room's other member unparsed, with `"from":ID` spliced in after its `{`.
/// No validation, no presence: not a server to use, only the fastest one `signaling` can drive.
struct SignalingTrivialRelay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signaling-trivial-relay",
        abstract: "A trivial NIO relay (no parsing of relayed messages) to measure the signaling generator's ceiling."
    )

    @Option(help: "Port to listen on (0 = any free port; the real one is printed).") var port = 0
    @Option(help: "Event loop threads (default: one per core).") var threads = System.coreCount

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let rooms = TrivialRooms()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let upgrader = NIOWebSocketServerUpgrader(
                    maxFrameSize: 1 << 20, automaticErrorHandling: true,
                    shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(TrivialRelayHandler(rooms: rooms))
                        }
                    }
                )
                return channel.pipeline.configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
            }
            .bind(host: "127.0.0.1", port: port).get()
        FileHandle.standardOutput.write(Data("signaling-trivial-relay listening on ws://127.0.0.1:\(channel.localAddress?.port ?? port)/ws\n".utf8))
        // Runs until SIGINT or SIGTERM ends the process.
        try await channel.closeFuture.get()
        try? await group.shutdownGracefully()
    }
}

/// Room id → the channels in it (at most two), shared by all loops.
final class TrivialRooms: Sendable {
    private let rooms = NIOLockedValueBox([String: [TrivialMember]]())

    struct TrivialMember: Sendable {
        let id: String
        let channel: any Channel
    }

    /// Joins and returns the members that were there before.
    func join(_ member: TrivialMember, room: String) -> [TrivialMember] {
        rooms.withLockedValue { rooms in
            let before = rooms[room] ?? []
            rooms[room] = before + [member]
            return before
        }
    }

    func peer(of id: String, room: String) -> TrivialMember? {
        rooms.withLockedValue { $0[room]?.first { $0.id != id } }
    }

    func leave(_ id: String, room: String) {
        rooms.withLockedValue { rooms in
            rooms[room]?.removeAll { $0.id == id }
            if rooms[room]?.isEmpty == true { rooms[room] = nil }
        }
    }
}

final class TrivialRelayHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let rooms: TrivialRooms
    let id = String(format: "%016llx%08x", UInt64.random(in: 0...UInt64.max), UInt32.random(in: 0...UInt32.max))
    var room: String?
    var peer: (any Channel)?
    static let joinPrefix = Array(#"{"type":"join-room""#.utf8)

    init(rooms: TrivialRooms) { self.rooms = rooms }

    func handlerAdded(context: ChannelHandlerContext) {
        send(#"{"type":"welcome","id":"\#(id)","name":"\#(id)","iceServers":[]}"#, on: context.channel)
    }

    func send(_ text: String, on channel: any Channel) {
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: channel.allocator.buffer(string: text)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            var payload = frame.unmaskedData
            if payload.readableBytesView.starts(with: Self.joinPrefix) {
                join(payload, context: context)
                return
            }
            if peer == nil, let room { peer = rooms.peer(of: id, room: room)?.channel }
            guard let peer, payload.readableBytes > 1 else { return }
            var out = peer.allocator.buffer(capacity: payload.readableBytes + 40)
            out.writeString(#"{"from":"\#(id)","#)
            payload.moveReaderIndex(forwardBy: 1)
            out.writeBuffer(&payload)
            peer.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: out), promise: nil)
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }

    private func join(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload.readableBytesView)) as? [String: Any],
              let roomId = object["roomId"] as? String, room == nil else { return }
        room = roomId
        let before = rooms.join(.init(id: id, channel: context.channel), room: roomId)
        let peers = before.map { #"{"id":"\#($0.id)","name":"\#($0.id)"}"# }.joined(separator: ",")
        send(#"{"type":"room-joined","roomId":"\#(roomId)","self":{"id":"\#(id)","name":"\#(id)"},"peers":[\#(peers)],"capacity":2}"#,
             on: context.channel)
        let users = (before.map(\.id) + [id]).map { "\"\($0)\"" }.joined(separator: ",")
        for member in before {
            send(#"{"type":"user-joined","from":"\#(id)","name":"\#(id)","roomUsers":[\#(users)]}"#, on: member.channel)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let room { rooms.leave(id, room: room) }
        context.fireChannelInactive()
    }
}
