import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket
import SignalingProtocol

/// One connection's way out: text frames queued by any thread and written by the socket's own event loop,
/// as many as are waiting with a single flush, so a sender never waits for a receiver and a slow client
/// never blocks the hub or another room.
///
/// ```swift
/// let handle = ClientHandle(id: "a1", channel: channel, closeObserver: observer)
/// handle.send(.fullRoom(roomId: "standup"))
/// await handle.waitUntilClosed()   // after close(), or when the client stopped reading
/// ```
final class ClientHandle: Sendable {
    let id: String
    /// The id as a JSON string (quoted, escaped), spliced into relayed messages as their `from`.
    let quotedID: [UInt8]
    private let channel: any Channel
    private let closeObserver: CloseCodeObserver?
    private let outbox = NIOLockedValueBox(Outbox())

    /// Messages a client may have unwritten (queued here or waiting in the socket's buffer) before it counts
    /// as stuck and is disconnected.
    static let queueLimit = 2048

    private struct Outbox {
        var queued: [ByteBuffer] = []
        /// A drain is on the event loop's queue: later messages ride along with it.
        var drainScheduled = false
        /// Handed to the channel, not yet written to the socket.
        var unwritten = 0
        var closed = false
        var closeWaiter: CheckedContinuation<Void, Never>?
    }

    init(id: String, channel: any Channel, closeObserver: CloseCodeObserver?) {
        self.id = id
        self.quotedID = Array((try? JSONEncoder().encode(id)) ?? Data(#""""#.utf8))
        self.channel = channel
        self.closeObserver = closeObserver
    }

    func send(_ message: ServerMessage) {
        send(ByteBuffer(string: message.jsonString()))
    }

    /// Queues one text frame. A frame may be shared by many clients (one presence list for all): buffers are
    /// copy-on-write, so nobody copies it.
    func send(_ frame: ByteBuffer) {
        enum Next { case nothing, drain, closeStuck(CheckedContinuation<Void, Never>?) }
        let next: Next = outbox.withLockedValue { box in
            guard !box.closed else { return .nothing }
            guard box.queued.count + box.unwritten < Self.queueLimit else {
                // The client does not read: close it rather than buffer without end.
                box.closed = true
                box.queued.removeAll()
                defer { box.closeWaiter = nil }
                return .closeStuck(box.closeWaiter)
            }
            box.queued.append(frame)
            guard !box.drainScheduled else { return .nothing }
            box.drainScheduled = true
            return .drain
        }
        switch next {
        case .nothing: break
        case .drain: channel.eventLoop.execute { self.drain() }
        case .closeStuck(let waiter): waiter?.resume()
        }
    }

    /// Writes what is queued, then flushes once. Runs on the channel's event loop.
    private func drain() {
        let batch = outbox.withLockedValue { box in
            box.drainScheduled = false
            defer { box.queued = [] }
            box.unwritten += box.queued.count
            return box.queued
        }
        guard let last = batch.last else { return }
        // The client's close frame was answered (the observer sees it first, on this loop): no data may follow.
        guard closeObserver?.code == nil else {
            outbox.withLockedValue { $0.unwritten -= batch.count }
            return
        }
        for frame in batch.dropLast() {
            channel.write(WebSocketFrame(fin: true, opcode: .text, data: frame), promise: nil)
        }
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: last), promise: written)
        written.futureResult.whenComplete { _ in
            self.outbox.withLockedValue { $0.unwritten -= batch.count }
        }
    }

    /// Stops taking messages; those already queued are still written, before the socket's close frame.
    /// Ends ``waitUntilClosed()``, which closes the WebSocket.
    func close() {
        let waiter = outbox.withLockedValue { box in
            box.closed = true
            defer { box.closeWaiter = nil }
            return box.closeWaiter
        }
        waiter?.resume()
    }

    /// Returns once ``close()`` was called or the client stopped reading.
    func waitUntilClosed() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let closed = outbox.withLockedValue { box in
                if !box.closed { box.closeWaiter = continuation }
                return box.closed
            }
            if closed { continuation.resume() }
        }
    }
}
