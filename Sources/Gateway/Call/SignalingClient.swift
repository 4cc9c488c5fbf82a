import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import SignalingProtocol
import Synchronization
import WebRTCTypes

/// The gateway's connection to vcall-server: one WebSocket at `/ws` speaking the vcall protocol
/// (docs/protocol.md), reconnected with backoff when it drops.
///
/// ```swift
/// let client = SignalingClient(url: URL(string: "ws://127.0.0.1:8080/ws")!, name: "recorder")
/// Task { await client.run() }
/// for await event in client.events {
///     if case .connected = event { client.send(.joinRoom(roomId: "standup", name: nil, capacity: nil)) }
/// }
/// ```
public final class SignalingClient: Sendable {
    public enum Event: Sendable {
        /// The socket is open and the server said `welcome`; after a reconnect this comes again
        /// (with a new id), and the caller rejoins its room.
        case connected(id: String, name: String, iceServers: [RTCIceServer])
        case message(ServerMessage)
        /// The socket closed or could not be opened; `retryIn` is when the next attempt starts (nil: stopped).
        case disconnected(reason: String, retryIn: Duration?)
    }

    /// Events in order; finishes after `stop()`.
    public let events: AsyncStream<Event>
    public let url: URL

    private let eventSink: AsyncStream<Event>.Continuation
    private let token: String?
    private let logger: Logger
    private let backoff: Backoff
    private struct State {
        var outbox: AsyncStream<String>.Continuation?
        var stopped = false
        var runTask: Task<Void, Never>?
        /// The last `welcome`'s resume token: a reconnect presents it (`?resume=`) to keep the same id,
        /// so the room keeps us through its grace period and the others see no leave and rejoin.
        var resumeToken: String?
    }
    private let state = Mutex(State())

    /// Reconnect delays: doubling from `initial` up to `maximum`, reset after a connection that lasted.
    public struct Backoff: Sendable {
        public var initial: Duration
        public var maximum: Duration
        public init(initial: Duration = .milliseconds(250), maximum: Duration = .seconds(8)) {
            self.initial = initial
            self.maximum = maximum
        }
    }

    /// - Parameters:
    ///   - url: the server's WebSocket, e.g. `ws://127.0.0.1:8080/ws`.
    ///   - name: the display name others see (sent as `?name=`, as the web app does for guests).
    ///   - token: an API token (`vcall-server token create`), sent as `Authorization: Bearer`.
    public init(url: URL, name: String? = nil, token: String? = nil, backoff: Backoff = Backoff(),
                logger: Logger = Logger(label: "vcall.gateway.signaling")) {
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        if let name {
            let existing = components?.queryItems ?? []
            components?.queryItems = existing + [URLQueryItem(name: "name", value: name)]
        }
        self.url = components?.url ?? url
        self.token = token
        self.backoff = backoff
        self.logger = logger
        (events, eventSink) = AsyncStream.makeStream(of: Event.self)
    }

    /// Connects, and reconnects after every drop, until `stop()`. Returns when stopped.
    public func run() async {
        var delay = backoff.initial
        while !isStopped {
            let opened = ContinuousClock.now
            let reason = await connectOnce()
            if isStopped { break }
            // A connection that stayed up a while was healthy: start the backoff over.
            if opened.duration(to: .now) > .seconds(10) { delay = backoff.initial }
            logger.warning("signaling: \(reason); reconnecting in \(delay)")
            eventSink.yield(.disconnected(reason: reason, retryIn: delay))
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, backoff.maximum)
        }
        eventSink.yield(.disconnected(reason: "stopped", retryIn: nil))
        eventSink.finish()
    }

    /// Sends one message; returns false (and drops it) when no connection is open.
    @discardableResult
    public func send(_ message: ClientMessage) -> Bool {
        let text = message.jsonString()
        let outbox = state.withLock { $0.outbox }
        guard let outbox else {
            logger.debug("signaling: not connected; dropped \(message.type)")
            return false
        }
        if case .enqueued = outbox.yield(text) { return true }
        return false
    }

    /// Closes the socket and stops reconnecting.
    public func stop() {
        let outbox = state.withLock { state in
            state.stopped = true
            return state.outbox
        }
        outbox?.finish()
    }

    /// The socket URL for the next attempt: the configured one, plus `resume=` once the server gave a token.
    private func connectionURL() -> URL {
        guard let resumeToken = state.withLock({ $0.resumeToken }),
              var components = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return url }
        components.queryItems = (components.queryItems ?? []).filter { $0.name != "resume" }
            + [URLQueryItem(name: "resume", value: resumeToken)]
        return components.url ?? url
    }

    public var isConnected: Bool { state.withLock { $0.outbox != nil } }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    /// One connection's life; returns why it ended.
    private func connectOnce() async -> String {
        let url = connectionURL()
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        // SDP offers can exceed the 16 KiB default frame; the server's own limit is what matters.
        let configuration = WebSocketClientConfiguration(maxFrameSize: SignalingLimits.defaultMaxMessageBytes * 2,
                                                         additionalHeaders: headers)
        let eventSink = self.eventSink
        let logger = self.logger
        do {
            let close = try await WebSocketClient.connect(url: url.absoluteString, configuration: configuration, logger: logger) {
                [self] inbound, outbound, _ in
                let (outgoing, outbox) = AsyncStream.makeStream(of: String.self)
                let stopped = state.withLock { state in
                    state.outbox = outbox
                    return state.stopped
                }
                if stopped { return }
                defer { state.withLock { $0.outbox = nil } }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await text in outgoing { try await outbound.write(.text(text)) }
                        // The outbox finished: stop() was called.
                        try await outbound.close(.normalClosure, reason: "leaving")
                    }
                    group.addTask {
                        for try await message in inbound.messages(maxSize: SignalingLimits.defaultMaxMessageBytes * 2) {
                            guard case .text(let text) = message else { continue }
                            do {
                                let decoded = try ServerMessage.decode(text)
                                if case .welcome(let id, let name, let iceServers, let resumeToken) = decoded {
                                    if let resumeToken { self.state.withLock { $0.resumeToken = resumeToken } }
                                    eventSink.yield(.connected(id: id, name: name, iceServers: iceServers))
                                } else {
                                    eventSink.yield(.message(decoded))
                                }
                            } catch {
                                logger.warning("signaling: ignoring a message the gateway does not understand: \(text.prefix(200))")
                            }
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
            if let close { return "the server closed the connection (\(close.closeCode)\(close.reason.map { ": \($0)" } ?? ""))" }
            return "the connection closed"
        } catch {
            // The configured URL: the resume token is a credential and stays out of logs.
            return "cannot reach \(self.url.absoluteString) (\(error)): is vcall-server running there?"
        }
    }
}
