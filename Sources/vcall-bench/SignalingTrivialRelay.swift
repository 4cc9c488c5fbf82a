import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

// The comparison relay for the signaling benchmark: the generator's ceiling.

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
