import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

// The signaling benchmark's WebSocket clients on NIO: per-loop statistics, rooms of two, the client and
// its channel handler, the connector, and the byte-level helpers they share.

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
