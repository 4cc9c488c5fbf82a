import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket

/// Remembers the close code a client sends, which the WebSocket library handles itself and does not pass on.
///
/// The hub needs it to tell a goodbye (1000 normal closure, 1001 going away: the member leaves its room at
/// once) from a drop (no close frame, or any other code: the room keeps the member for a resume).
/// It sits in the channel's pipeline right after the frame decoder and only looks at close frames.
///
/// ```swift
/// let closeCode = await CloseCodeObserver.install(on: channel, logger: logger)
/// // … when the socket has ended:
/// let clean = closeCode?.isCleanClose ?? false
/// ```
final class CloseCodeObserver: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame

    private let received = NIOLockedValueBox<WebSocketErrorCode?>(nil)

    /// The code of the client's close frame (1005 "no status" for a close frame without one); nil when none came.
    var code: WebSocketErrorCode? {
        received.withLockedValue { $0 }
    }

    /// Whether the client said goodbye: a close frame with 1000 or 1001.
    var isCleanClose: Bool {
        switch code {
        case .normalClosure, .goingAway: true
        default: false
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if frame.opcode == .connectionClose {
            var payload = frame.unmaskedData
            let code = payload.readWebSocketErrorCode() ?? .unknown(1005)
            received.withLockedValue { if $0 == nil { $0 = code } }
        }
        context.fireChannelRead(data)
    }

    /// Adds an observer after the WebSocket frame decoder of `channel`; nil (and a debug log) if the pipeline
    /// has no such decoder, in which case every end of the socket counts as a drop.
    static func install(on channel: any Channel, logger: Logger) async -> CloseCodeObserver? {
        let observer = CloseCodeObserver()
        do {
            try await channel.eventLoop.submit {
                let pipeline = channel.pipeline.syncOperations
                let decoder = try pipeline.context(handlerType: ByteToMessageHandler<WebSocketFrameDecoder>.self)
                try pipeline.addHandler(observer, position: .after(decoder.handler))
            }.get()
            return observer
        } catch {
            logger.debug("cannot watch the socket's close frames: every end counts as a drop", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
