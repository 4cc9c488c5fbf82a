import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import SignalingProtocol

/// Serves one WebSocket at `/ws`: authenticates, registers with the hub, then reads messages (assembling
/// fragments, enforcing the size and rate limits) until the socket ends or the hub closes the connection.
/// Outbound messages are written by the connection's ``ClientHandle``.
struct WebSocketConnection {
    let hub: SignalingHub
    let accounts: AccountStore
    let configuration: VCallServerConfiguration
    let metrics: ServerMetrics

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, request: Request, channel: any Channel, logger: Logger) async {
        let closeCode = await CloseCodeObserver.install(on: channel, logger: logger)
        let address = ClientAddress.resolve(peer: ClientAddress.peer(of: channel), forwardedFor: request.headers[ClientAddress.forwardedFor],
                                            trustedProxies: Set(configuration.trustedProxies))
        let credentials = await Authentication.identity(of: request, accounts: accounts)
        // A guest may bring a display name (`/ws?name=…`) so presence shows it before any join-room.
        let requestedName = request.uri.queryParameters.get("name").flatMap { SignalingLimits.normalizedName(String($0)) }
        let guestName = requestedName ?? "guest-" + RandomToken.hex(byteCount: 2)
        // A client whose socket dropped may ask for its old id back (`/ws?resume=TOKEN`).
        var resuming: String?
        if let token = request.uri.queryParameters.get("resume").map({ String($0) }) {
            resuming = hub.resumeTokens.id(from: token)
            if resuming == nil { logger.debug("ignoring an invalid resume token: the connection gets a new id") }
        }
        if let problem = hub.cluster?.problem {
            // Taking the client now would give it a room the other nodes cannot see: it retries, here or elsewhere.
            logger.warning("refusing a connection: \(problem)")
            let error = ServerMessage.error(
                code: .unavailable, message: "this server cannot reach its database (\(problem)): reconnect in a few seconds"
            )
            try? await outbound.write(.text(error.jsonString()))
            try? await outbound.close(.unexpectedServerError, reason: "database unreachable")
            return
        }
        let handle = hub.connect(
            channel: channel, closeObserver: closeCode, name: credentials.identity?.name ?? guestName,
            identity: credentials.identity, resuming: resuming
        )
        logger.debug("connection from \(address)", metadata: ["peer": "\(handle.id)"])
        if credentials.rejected {
            hub.fail(
                handle, .unauthorized,
                "the session or API token you sent is invalid or expired: you are connected as a guest; log in again or create a new token"
            )
        }

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await handle.waitUntilClosed()
            }
            group.addTask {
                await self.readLoop(inbound: inbound, handle: handle, logger: logger)
            }
            await group.next()
            // Whichever ended first (the socket, or the hub closing the connection) ends the other.
            handle.close()
            group.cancelAll()
        }
        hub.disconnect(handle, clean: closeCode?.isCleanClose ?? false)
    }

    private func readLoop(inbound: WebSocketInboundStream, handle: ClientHandle, logger: Logger) async {
        let limit = configuration.maxMessageBytes
        var limiter = RateLimiter(perSecond: configuration.rateLimitPerSecond, burst: configuration.rateLimitBurst)
        var buffer = ByteBuffer()
        var size = 0
        var isText = true
        var inMessage = false
        do {
            for try await frame in inbound {
                switch frame.opcode {
                case .text, .binary:
                    buffer.clear()
                    size = 0
                    isText = frame.opcode == .text
                    inMessage = true
                case .continuation:
                    guard inMessage else { continue }
                }
                size += frame.data.readableBytes
                if frame.fin, buffer.readableBytes == 0, frame.opcode != .continuation {
                    // A message in one frame (the usual case) is processed from the frame itself, uncopied.
                    inMessage = false
                    process(buffer: frame.data, size: size, isText: isText, handle: handle, limiter: &limiter)
                    continue
                }
                if size <= limit {
                    var data = frame.data
                    buffer.writeBuffer(&data)
                } else if buffer.readableBytes > 0 {
                    buffer.clear()
                }
                guard frame.fin else { continue }
                inMessage = false
                process(buffer: buffer, size: size, isText: isText, handle: handle, limiter: &limiter)
                buffer.clear()
            }
        } catch {
            logger.debug("websocket read ended", metadata: ["peer": "\(handle.id)", "error": "\(error)"])
        }
    }

    private func process(buffer: ByteBuffer, size: Int, isText: Bool, handle: ClientHandle, limiter: inout RateLimiter) {
        guard limiter.allow() else {
            if limiter.shouldWarn() {
                hub.fail(
                    handle, .rateLimited,
                    "too many messages: this connection may send \(Int(configuration.rateLimitPerSecond)) per second (bursts of \(Int(configuration.rateLimitBurst))); messages are being dropped, slow down"
                )
            } else {
                metrics.countError(.rateLimited)
            }
            return
        }
        guard size <= configuration.maxMessageBytes else {
            hub.fail(
                handle, .tooLarge,
                "the message is \(size) bytes; this server accepts at most \(configuration.maxMessageBytes): send smaller messages (one SDP or candidate each)"
            )
            return
        }
        guard isText else {
            hub.fail(handle, .badJSON, "binary frames are not accepted: send each message as JSON in a text frame")
            return
        }
        if relayRaw(buffer, from: handle) { return }
        let message: ClientMessage
        do {
            message = try ClientMessage.parse(buffer.readableBytesView)
        } catch {
            hub.fail(handle, error.code, error.message)
            return
        }
        hub.handle(message, from: handle)
    }

    /// Relays an offer, answer or candidate that ``RelayEnvelope`` recognizes: the outgoing frame is the
    /// type, the sender's id as `from`, and the payload's bytes as they came, with no decoding or encoding.
    /// False when the message needs the full parser (which also reports any error).
    private func relayRaw(_ buffer: ByteBuffer, from handle: ClientHandle) -> Bool {
        buffer.withUnsafeReadableBytes { bytes in
            guard let envelope = RelayEnvelope.recognize(bytes) else { return false }
            let payload = UnsafeRawBufferPointer(rebasing: bytes[envelope.payload])
            let type = envelope.kind.rawValue
            let field = envelope.kind.payloadField
            var frame = ByteBuffer()
            frame.reserveCapacity(payload.count + handle.quotedID.count + 2 * type.utf8.count + 32)
            frame.writeString(#"{"type":""#)
            frame.writeString(type)
            frame.writeString(#"","from":"#)
            frame.writeBytes(handle.quotedID)
            frame.writeString(#",""#)
            frame.writeString(field)
            frame.writeString(#"":"#)
            frame.writeBytes(payload)
            frame.writeString("}")
            hub.relay(envelope.kind, to: envelope.to, frame: frame, from: handle)
            return true
        }
    }
}
