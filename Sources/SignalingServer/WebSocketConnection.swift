import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import SignalingProtocol

/// Serves one WebSocket at `/ws`: authenticates, registers with the hub, then reads messages
/// (assembling fragments, enforcing the size and rate limits) while a writer task drains the outbound queue.
struct WebSocketConnection {
    let hub: SignalingHub
    let accounts: AccountStore
    let configuration: VCallServerConfiguration
    let metrics: ServerMetrics

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, request: Request, channel: any Channel, logger: Logger) async {
        let closeCode = await CloseCodeObserver.install(on: channel, logger: logger)
        let credentials = await Authentication.identity(of: request, accounts: accounts)
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingOldest(ClientHandle.queueLimit))
        // A guest may bring a display name (`/ws?name=…`) so presence shows it before any join-room.
        let requestedName = request.uri.queryParameters.get("name").flatMap { SignalingLimits.normalizedName(String($0)) }
        let guestName = requestedName ?? "guest-" + RandomToken.hex(byteCount: 2)
        // A client whose socket dropped may ask for its old id back (`/ws?resume=TOKEN`).
        var resuming: String?
        if let token = request.uri.queryParameters.get("resume").map({ String($0) }) {
            resuming = hub.resumeTokens.id(from: token)
            if resuming == nil { logger.debug("ignoring an invalid resume token: the connection gets a new id") }
        }
        let handle = await hub.connect(
            continuation, name: credentials.identity?.name ?? guestName, identity: credentials.identity, resuming: resuming
        )
        if credentials.rejected {
            await hub.fail(
                handle, .unauthorized,
                "the session or API token you sent is invalid or expired: you are connected as a guest; log in again or create a new token"
            )
        }

        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await text in stream {
                    do {
                        try await outbound.write(.text(text))
                    } catch {
                        break
                    }
                }
            }
            group.addTask {
                await self.readLoop(inbound: inbound, handle: handle, logger: logger)
            }
            await group.next()
            group.cancelAll()
        }
        continuation.finish()
        await hub.disconnect(handle, clean: closeCode?.isCleanClose ?? false)
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
                if size <= limit {
                    var data = frame.data
                    buffer.writeBuffer(&data)
                } else if buffer.readableBytes > 0 {
                    buffer.clear()
                }
                guard frame.fin else { continue }
                inMessage = false
                await process(buffer: buffer, size: size, isText: isText, handle: handle, limiter: &limiter)
                buffer.clear()
            }
        } catch {
            logger.debug("websocket read ended", metadata: ["peer": "\(handle.id)", "error": "\(error)"])
        }
    }

    private func process(buffer: ByteBuffer, size: Int, isText: Bool, handle: ClientHandle, limiter: inout RateLimiter) async {
        guard limiter.allow() else {
            if limiter.shouldWarn() {
                await hub.fail(
                    handle, .rateLimited,
                    "too many messages: this connection may send \(Int(configuration.rateLimitPerSecond)) per second (bursts of \(Int(configuration.rateLimitBurst))); messages are being dropped, slow down"
                )
            } else {
                metrics.countError(.rateLimited)
            }
            return
        }
        guard size <= configuration.maxMessageBytes else {
            await hub.fail(
                handle, .tooLarge,
                "the message is \(size) bytes; this server accepts at most \(configuration.maxMessageBytes): send smaller messages (one SDP or candidate each)"
            )
            return
        }
        guard isText else {
            await hub.fail(handle, .badJSON, "binary frames are not accepted: send each message as JSON in a text frame")
            return
        }
        let message: ClientMessage
        do {
            message = try ClientMessage.parse(buffer.readableBytesView)
        } catch {
            await hub.fail(handle, error.code, error.message)
            return
        }
        await hub.handle(message, from: handle)
    }
}
