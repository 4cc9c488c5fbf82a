
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import Logging
import NIOCore
import SignalingProtocol
@testable import SignalingServer
import Testing
import WebRTCTypes

struct TestTimeout: Error, CustomStringConvertible {
    var description: String
}

/// A temporary data folder, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("vcall-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Where the suites keep their data: SQLite in each test's folder, or, when `VCALL_TEST_POSTGRES` names a
/// throwaway cluster (`scripts/test` starts one with `scripts/postgres-throwaway` and runs these suites a
/// second time), a database of its own per data folder on that cluster.
enum TestDatabase {
    static let postgres: PostgresURL? = ProcessInfo.processInfo.environment["VCALL_TEST_POSTGRES"].flatMap {
        $0.isEmpty ? nil : try! PostgresURL(parsing: $0)
    }

    /// The database standing for `dataDirectory`: the same one each time for one folder, so a test can restart a
    /// server on it.
    static func location(forDataDirectory dataDirectory: String) async throws -> DatabaseLocation {
        guard var url = postgres else { return .sqlite(dataDirectory: dataDirectory) }
        let name = "vcall_test_" + TokenHash.hex(dataDirectory).prefix(20)
        let cluster = try await PostgresDatabase.open(url: url, logger: Logger(label: "vcall-test"))
        do {
            if try await cluster.query("SELECT 1 FROM pg_database WHERE datname = ?", [.text(name)]).isEmpty {
                try await cluster.query("CREATE DATABASE \(name)")
            }
        } catch {
            await cluster.close()
            throw error
        }
        await cluster.close()
        url.database = name
        return .postgres(url)
    }

    /// Opens the accounts of `dataDirectory`'s database, as a command-line subcommand would.
    static func accounts(dataDirectory: String) async throws -> AccountStore {
        try await AccountStore.open(location(forDataDirectory: dataDirectory), logger: Logger(label: "vcall-test"))
    }
}

/// A running server on a real socket (port 0) with its data in a temporary folder (see `TestDatabase`).
struct TestServer {
    let client: any TestClientProtocol
    let port: Int

    /// Starts a server, runs `body`, stops the server and removes the data folder (unless one was given).
    static func run<T: Sendable>(
        dataDirectory: String? = nil,
        _ configure: (inout VCallServerConfiguration) -> Void = { _ in },
        _ body: @Sendable (TestServer) async throws -> T
    ) async throws -> T {
        let temporary = dataDirectory == nil ? try TemporaryDirectory() : nil
        defer { temporary?.remove() }
        var configuration = VCallServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.dataDirectory = dataDirectory ?? temporary!.path
        if case .postgres(let url) = try await TestDatabase.location(forDataDirectory: configuration.dataDirectory) {
            configuration.database = url
        }
        configuration.bcryptCost = 4
        configure(&configuration)
        var logger = Logger(label: "vcall-test")
        logger.logLevel = .error
        let app = try await buildApplication(configuration: configuration, logger: logger)
        return try await app.test(.live) { client in
            try await body(TestServer(client: client, port: client.port!))
        }
    }

    /// Connects a WebSocket client and waits for its `welcome`.
    func connect(query: String = "", headers: HTTPFields = [:]) async throws -> WSPeer {
        try await WSPeer.connect(port: port, path: "/ws" + query, headers: headers)
    }

    @discardableResult
    func request(
        _ method: HTTPRequest.Method, _ uri: String, json: String? = nil, headers: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = headers
        if json != nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }
    var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }
    /// The `name=value` of the session cookie this response sets.
    var sessionCookie: String? {
        headers[values: .setCookie].first { $0.hasPrefix("vcall_session=") }.map { String($0.split(separator: ";")[0]) }
    }
}

/// Incoming frames of one client, waited on with a time limit.
actor Mailbox {
    private var buffer: [String] = []
    private var waiter: (id: Int, continuation: CheckedContinuation<String?, Never>)?
    private var nextWaiter = 0
    private(set) var closed = false

    func push(_ text: String) {
        if let waiter {
            self.waiter = nil
            waiter.continuation.resume(returning: text)
        } else {
            buffer.append(text)
        }
    }

    func finish() {
        closed = true
        if let waiter {
            self.waiter = nil
            waiter.continuation.resume(returning: nil)
        }
    }

    func next(timeout: Duration) async -> String? {
        if !buffer.isEmpty { return buffer.removeFirst() }
        if closed { return nil }
        nextWaiter += 1
        let id = nextWaiter
        return await withCheckedContinuation { continuation in
            waiter = (id, continuation)
            Task {
                try? await Task.sleep(for: timeout)
                self.expire(id)
            }
        }
    }

    private func expire(_ id: Int) {
        if let waiter, waiter.id == id {
            self.waiter = nil
            waiter.continuation.resume(returning: nil)
        }
    }
}

/// A signaling client over a real WebSocket.
final class WSPeer: Sendable {
    let inbox: Mailbox
    let outbound: WebSocketOutboundWriter
    let task: Task<Void, any Error>
    let id: String
    let name: String
    let iceServers: [RTCIceServer]
    let resumeToken: String?

    private init(outbound: WebSocketOutboundWriter, task: Task<Void, any Error>, mailbox: Mailbox, welcome: ServerMessage) throws {
        self.outbound = outbound
        self.task = task
        self.inbox = mailbox
        guard case .welcome(let id, let name, let iceServers, let resumeToken) = welcome else {
            throw TestTimeout(description: "first message was not welcome: \(welcome)")
        }
        self.id = id
        self.name = name
        self.iceServers = iceServers
        self.resumeToken = resumeToken
    }

    static func connect(port: Int, path: String, headers: HTTPFields) async throws -> WSPeer {
        let mailbox = Mailbox()
        let (writerStream, writerContinuation) = AsyncStream<WebSocketOutboundWriter>.makeStream()
        let task = Task {
            defer { writerContinuation.finish() }
            var logger = Logger(label: "ws-test-client")
            logger.logLevel = .critical
            try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(port)\(path)",
                configuration: .init(maxFrameSize: 1 << 22, additionalHeaders: headers),
                logger: logger
            ) { inbound, outbound, _ in
                writerContinuation.yield(outbound)
                do {
                    for try await message in inbound.messages(maxSize: 1 << 24) {
                        if case .text(let text) = message { await mailbox.push(text) }
                    }
                } catch {}
                await mailbox.finish()
            }
            await mailbox.finish()
        }
        var iterator = writerStream.makeAsyncIterator()
        guard let outbound = await iterator.next() else {
            _ = try await task.value
            throw TestTimeout(description: "WebSocket did not connect")
        }
        guard let first = await mailbox.next(timeout: .seconds(10)) else {
            throw TestTimeout(description: "no welcome within 10 s")
        }
        return try WSPeer(outbound: outbound, task: task, mailbox: mailbox, welcome: try ServerMessage.decode(first))
    }

    func send(_ message: ClientMessage) async throws {
        try await outbound.write(.text(message.jsonString()))
    }

    func sendRaw(_ text: String) async throws {
        try await outbound.write(.text(text))
    }

    func sendBinary(_ bytes: [UInt8]) async throws {
        try await outbound.write(.binary(ByteBuffer(bytes: bytes)))
    }

    /// The next message of `type`, skipping others (such as `online-users`).
    @discardableResult
    func next(_ type: String, timeout: Duration = .seconds(20)) async throws -> ServerMessage {
        try ServerMessage.decode(try await nextText(type, timeout: timeout))
    }

    /// The next message of `type` as the text frame the server sent.
    func nextText(_ type: String, timeout: Duration = .seconds(20)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero, let text = await inbox.next(timeout: left) else {
                throw TestTimeout(description: "\(id) got no \(type) within \(timeout)")
            }
            if try ServerMessage.decode(text).type == type { return text }
        }
    }

    /// The next `error`, as its code and message.
    func nextError(timeout: Duration = .seconds(20)) async throws -> (code: ErrorCode, message: String) {
        guard case .error(let code, let message) = try await next("error", timeout: timeout) else { fatalError() }
        return (code, message)
    }

    /// Messages of `type` arriving within `window`.
    func received(_ type: String, within window: Duration = .milliseconds(300)) async throws -> [ServerMessage] {
        let deadline = ContinuousClock.now + window
        var found: [ServerMessage] = []
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero, let text = await inbox.next(timeout: left) else { return found }
            let message = try ServerMessage.decode(text)
            if message.type == type { found.append(message) }
        }
    }

    /// Every message up to and including the first that satisfies `predicate`.
    func collect(timeout: Duration = .seconds(20), until predicate: (ServerMessage) -> Bool) async throws -> [ServerMessage] {
        let deadline = ContinuousClock.now + timeout
        var seen: [ServerMessage] = []
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero, let text = await inbox.next(timeout: left) else {
                throw TestTimeout(description: "\(id): no awaited message within \(timeout); got \(seen.map(\.type))")
            }
            let message = try ServerMessage.decode(text)
            seen.append(message)
            if predicate(message) { return seen }
        }
    }

    /// Every message arriving within `window`.
    func drain(within window: Duration = .milliseconds(300)) async throws -> [ServerMessage] {
        let deadline = ContinuousClock.now + window
        var found: [ServerMessage] = []
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero, let text = await inbox.next(timeout: left) else { return found }
            found.append(try ServerMessage.decode(text))
        }
    }

    /// The next `online-users` list that satisfies `predicate`.
    func onlineUsers(timeout: Duration = .seconds(20), where predicate: ([OnlineUser]) -> Bool) async throws -> [OnlineUser] {
        let deadline = ContinuousClock.now + timeout
        while true {
            guard case .onlineUsers(let users) = try await next("online-users", timeout: deadline - ContinuousClock.now) else { continue }
            if predicate(users) { return users }
        }
    }

    func join(_ roomId: String, name: String? = nil, capacity: Int? = nil, role: JoinRole? = nil) async throws -> ServerMessage {
        try await send(.joinRoom(roomId: roomId, name: name, capacity: capacity, role: role))
        return try await next("room-joined")
    }

    func close() async {
        try? await outbound.close(.normalClosure, reason: nil)
        _ = try? await task.value
    }

    /// Whether the server closed this socket within `timeout`.
    func closedByServer(within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await inbox.closed { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await inbox.closed
    }
}

/// A short SDP-like payload.
func sdp(_ label: String) -> String {
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=\(label)\r\nt=0 0\r\n"
}

/// All server suites run one after another: each starts real servers, and the abuse suite floods one,
/// which on a small machine would starve the other suites' sockets if they ran at the same time.
@Suite("vcall-server", .serialized)
enum ServerTests {}
