import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOPosix
import NIOSSL
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
    private let trust: ServerTrust
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

    /// Which certificates a `wss://` server may present.
    public enum ServerTrust: Sendable, Equatable {
        /// Those the system's certificate authorities signed.
        case systemRoots
        /// Those the certificate authority in this PEM file signed (`--ca FILE`), or the certificate itself.
        case certificateAuthority(file: String)
        /// Any: the gateway's own in-process server on loopback, whose certificate it loaded itself.
        case inProcessServer
    }

    /// - Parameters:
    ///   - url: the server's WebSocket, e.g. `ws://127.0.0.1:8080/ws` or `wss://calls.example.org/ws`.
    ///   - name: the display name others see (sent as `?name=`, as the web app does for guests).
    ///   - token: an API token (`vcall-server token create`), sent as `Authorization: Bearer`.
    ///   - trust: which server certificates `wss://` accepts.
    public init(url: URL, name: String? = nil, token: String? = nil, backoff: Backoff = Backoff(),
                trust: ServerTrust = .systemRoots, logger: Logger = Logger(label: "vcall.gateway.signaling")) {
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        if let name {
            let existing = components?.queryItems ?? []
            components?.queryItems = existing + [URLQueryItem(name: "name", value: name)]
        }
        self.url = components?.url ?? url
        self.token = token
        self.backoff = backoff
        self.trust = trust
        self.logger = logger
        (events, eventSink) = AsyncStream.makeStream(of: Event.self)
    }

    /// The client TLS configuration for `trust`.
    private var tlsConfiguration: TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch trust {
        case .systemRoots:
            break
        case .certificateAuthority(let file):
            configuration.trustRoots = .file(file)
        case .inProcessServer:
            configuration.certificateVerification = .none
        }
        return configuration
    }

    /// Connects, and reconnects after every drop, until `stop()`. Returns when stopped.
    public func run() async {
        var delay = backoff.initial
        while !isStopped {
            let opened = ContinuousClock.now
            let (reason, fatal) = await connectOnce()
            if isStopped { break }
            if fatal {
                // Trying again cannot help: the user must change something (the certificate, --ca).
                logger.error("signaling: \(reason)")
                state.withLock { $0.stopped = true }
                eventSink.yield(.disconnected(reason: reason, retryIn: nil))
                eventSink.finish()
                return
            }
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

    /// Whether `error` is the TLS layer's (a handshake or certificate failure), also inside NIO's connection errors.
    private static func isTLSFailure(_ error: any Error) -> Bool {
        if error is NIOSSLError || error is NIOSSLExtraError { return true }
        if let connection = error as? NIOConnectionError { return connection.connectionErrors.contains { isTLSFailure($0.error) } }
        return false
    }

    /// One connection's life; returns why it ended, and whether reconnecting is pointless.
    private func connectOnce() async -> (reason: String, fatal: Bool) {
        let url = connectionURL()
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        // SDP offers can exceed the 16 KiB default frame; the server's own limit is what matters.
        let configuration = WebSocketClientConfiguration(maxFrameSize: SignalingLimits.defaultMaxMessageBytes * 2,
                                                         additionalHeaders: headers)
        let eventSink = self.eventSink
        let logger = self.logger
        do {
            let tls = url.scheme == "wss" ? tlsConfiguration : nil
            let close = try await WebSocketClient.connect(url: url.absoluteString, configuration: configuration, tlsConfiguration: tls,
                                                          logger: logger) {
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
            if let close { return ("the server closed the connection (\(close.closeCode)\(close.reason.map { ": \($0)" } ?? ""))", false) }
            return ("the connection closed", false)
        } catch let error where Self.isTLSFailure(error) {
            // The configured URL: the resume token is a credential and stays out of logs.
            let advice = switch trust {
            case .certificateAuthority(let file): "check that \(file) holds the certificate authority that signed the server's certificate, and that the certificate names \(url.host ?? "the host")"
            default: "if its certificate is self-signed or from your own certificate authority, pass that authority's certificate with --ca FILE"
            }
            return ("the TLS handshake with \(self.url.host ?? self.url.absoluteString) failed, so the gateway does not trust the server (\(error)): \(advice)", true)
        } catch {
            return ("cannot reach \(self.url.absoluteString) (\(error)): is vcall-server running there?", false)
        }
    }
}
