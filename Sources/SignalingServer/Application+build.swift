import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import SignalingProtocol

/// Builds the vcall server: WebSocket signaling at `/ws`, the REST API, metrics and the web app.
///
/// The application is a `Service`; run it alone with `runService()` (which handles SIGINT and SIGTERM)
/// or inside another process's `ServiceGroup`, as the gateway does.
///
/// ```swift
/// var configuration = VCallServerConfiguration()
/// configuration.port = 0
/// let app = try await buildApplication(configuration: configuration) { port in
///     print("listening on http://127.0.0.1:\(port)")
/// }
/// try await app.runService()
/// ```
///
/// - Parameters:
///   - configuration: host, port, data folder and limits.
///   - logger: where the server logs; its level is the caller's choice.
///   - onServerRunning: called once the socket listens, with the real port (useful with port 0).
public func buildApplication(
    configuration: VCallServerConfiguration,
    logger: Logger = Logger(label: "vcall-server"),
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws -> some ApplicationProtocol {
    // First, so that a bad certificate file stops start-up before anything is opened.
    let tlsConfiguration = try configuration.tls?.serverConfiguration()
    let accounts = try await AccountStore.open(
        configuration.databaseLocation,
        bcryptCost: configuration.bcryptCost,
        sessionLifetime: configuration.sessionLifetime,
        inProcessTokens: configuration.inProcessTokens,
        logger: logger
    )
    let resumeTokens: ResumeTokens
    do {
        resumeTokens = switch configuration.databaseLocation {
        case .sqlite(let dataDirectory): try ResumeTokens.load(dataDirectory: dataDirectory, logger: logger)
        case .postgres: try await ResumeTokens.load(database: accounts.db)
        }
    } catch {
        await accounts.close()
        throw error
    }
    let metrics = ServerMetrics()
    // Nodes on one PostgreSQL database form one service: rooms, presence and messages cross between them.
    var cluster: ClusterBus?
    if let postgres = accounts.db as? PostgresDatabase {
        let bus = ClusterBus(node: RandomToken.hex(byteCount: 6), database: postgres, metrics: metrics, logger: logger)
        do {
            try await bus.start()
        } catch {
            await accounts.close()
            throw DatabaseError("cannot join the other nodes on \(postgres.location): \(PostgresDatabase.describe(error))")
        }
        logger.info("node \(bus.node) on \(postgres.location): rooms and presence are shared with the other nodes on this database")
        cluster = bus
    }
    // Recording workers (vcall-gateway worker) take their jobs from the same database.
    let jobs = try? RecordingJobQueue(database: accounts.db)
    let hub = SignalingHub(configuration: configuration, metrics: metrics, logger: logger, resumeTokens: resumeTokens, cluster: cluster, jobs: jobs)
    let connection = WebSocketConnection(hub: hub, accounts: accounts, configuration: configuration, metrics: metrics)

    let router = Router()
    let files = StaticFileMiddleware<BasicRequestContext>(webRoot: configuration.webRoot)
    if let root = files.root {
        if !FileManager.default.fileExists(atPath: root.appendingPathComponent("index.html").path) {
            logger.warning("no index.html in the web app folder \(root.path): the home page will be 404; check --web-root")
        }
    } else {
        logger.warning("the web app's files were not found beside the executable: serve them with --web-root DIR")
    }
    router.add(middleware: files)
    addAPIRoutes(to: router, configuration: configuration, accounts: accounts, hub: hub, metrics: metrics)
    RecordingRoutes(directory: configuration.recordingsDirectory, accounts: accounts, logger: logger).add(to: router)
    RecordingJobRoutes(queue: jobs, accounts: accounts, logger: logger).add(to: router)

    let wsRouter = Router(context: SignalingRequestContext.self)
    wsRouter.ws("/ws") { inbound, outbound, context in
        await connection.run(
            inbound: inbound, outbound: outbound, request: context.request, channel: context.requestContext.channel, logger: context.logger
        )
    }

    let plain: HTTPServerBuilder = .http1WebSocketUpgrade(
        webSocketRouter: wsRouter,
        configuration: .init(ws: .init(maxFrameSize: configuration.webSocketMaxFrameSize, closeTimeout: .seconds(5)))
    )
    let server = try tlsConfiguration.map { try HTTPServerBuilder.tls(plain, tlsConfiguration: $0) } ?? plain
    return Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "vcall-server"),
        services: [ShutdownService(hub: hub, accounts: accounts)] + (cluster.map { [$0 as any Service] } ?? []),
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? configuration.port)
        },
        logger: logger
    )
}

/// The request context of `/ws`: a WebSocket context that also keeps the connection's channel, so the
/// connection can watch the close frame (see `CloseCodeObserver`).
struct SignalingRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<Self>
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
    }
}

/// Closes every WebSocket and the database when the server shuts down gracefully.
struct ShutdownService: Service {
    let hub: SignalingHub
    let accounts: AccountStore

    func run() async throws {
        try? await gracefulShutdown()
        hub.closeAll()
        // Give handlers a moment to finish their last queries before the database goes away.
        try? await Task.sleep(for: .milliseconds(200))
        await accounts.close()
    }
}

func addAPIRoutes(
    to router: Router<BasicRequestContext>,
    configuration: VCallServerConfiguration,
    accounts: AccountStore,
    hub: SignalingHub,
    metrics: ServerMetrics
) {
    @Sendable func sessionCookie(_ token: String) -> Cookie {
        Cookie(
            name: Authentication.sessionCookie, value: token,
            maxAge: Int(configuration.sessionLifetime.components.seconds),
            path: "/", httpOnly: true, sameSite: .lax
        )
    }
    let clearedCookie = Cookie(name: Authentication.sessionCookie, value: "", maxAge: 0, path: "/", httpOnly: true, sameSite: .lax)

    @Sendable func accountError(_ error: AccountError) -> APIError {
        switch error {
        case .invalidUsername:
            .invalidRequest("username must be 3–32 characters of A-Z, a-z, 0-9, _, . and -")
        case .invalidPassword:
            .invalidRequest("password must be 8–72 bytes long")
        case .usernameTaken:
            APIError(.conflict, "username-taken", "that username is taken: pick another or log in")
        case .invalidCredentials:
            APIError(.unauthorized, "invalid-credentials", "wrong username or password: check both and try again")
        case .invalidTokenName:
            .invalidRequest("token name must be 1–64 characters")
        }
    }

    let api = router.group("api")

    api.post("register") { request, _ -> Response in
        let body = try await decodeBody(Credentials.self, from: request, example: #"{"username":"ada","password":"correct horse"}"#)
        do {
            let username = try await accounts.register(username: body.username, password: body.password)
            let token = try await accounts.createSession(username: username)
            var response = jsonResponse(UserResponse(username: username), status: .created)
            response.setCookie(sessionCookie(token))
            return response
        } catch let error as AccountError {
            throw accountError(error)
        }
    }

    api.post("login") { request, _ -> Response in
        let body = try await decodeBody(Credentials.self, from: request, example: #"{"username":"ada","password":"correct horse"}"#)
        do {
            let username = try await accounts.verify(username: body.username, password: body.password)
            let token = try await accounts.createSession(username: username)
            var response = jsonResponse(UserResponse(username: username))
            response.setCookie(sessionCookie(token))
            return response
        } catch let error as AccountError {
            throw accountError(error)
        }
    }

    api.post("logout") { request, _ -> Response in
        if let token = Authentication.sessionToken(of: request) {
            try await accounts.deleteSession(token)
        }
        var response = Response(status: .noContent)
        response.setCookie(clearedCookie)
        return response
    }

    api.get("me") { request, _ -> Response in
        let result = await Authentication.identity(of: request, accounts: accounts)
        guard let identity = result.identity else {
            var response = APIError.unauthorized.makeResponse()
            if Authentication.sessionToken(of: request) != nil { response.setCookie(clearedCookie) }
            return response
        }
        return jsonResponse(UserResponse(username: identity.name))
    }

    api.post("tokens") { request, _ -> Response in
        guard let session = Authentication.sessionToken(of: request), let username = try await accounts.session(session) else {
            throw APIError(.unauthorized, "unauthorized", "log in first: API tokens are made by a logged-in user (or with `vcall-server token create NAME`)")
        }
        let body = try await decodeBody(TokenRequest.self, from: request, example: #"{"name":"my-gateway"}"#)
        do {
            let token = try await accounts.createToken(name: body.name, username: username)
            return jsonResponse(TokenResponse(token: token, name: body.name), status: .created)
        } catch let error as AccountError {
            throw accountError(error)
        }
    }

    api.get("rooms") { request, _ -> Response in
        if configuration.requireLogin {
            guard await Authentication.identity(of: request, accounts: accounts).identity != nil else { throw APIError.unauthorized }
        }
        return jsonResponse(RoomsResponse(rooms: hub.roomSummaries()))
    }

    router.get("healthz") { _, _ -> Response in
        // With PostgreSQL, healthy means the database answers: a load balancer sends no one to a node that
        // cannot reach the others.
        if let problem = hub.cluster?.problem {
            return jsonResponse(["status": "unavailable", "reason": problem], status: .serviceUnavailable)
        }
        return jsonResponse(["status": "ok"])
    }

    router.get("metrics") { _, _ -> Response in
        Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: metrics.text()))
        )
    }
}

/// Runs a vcall server until SIGINT or SIGTERM, then shuts it down gracefully.
///
/// ```swift
/// try await runServer(configuration: VCallServerConfiguration()) { port in print("port \(port)") }
/// ```
public func runServer(
    configuration: VCallServerConfiguration,
    logger: Logger = Logger(label: "vcall-server"),
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws {
    let app = try await buildApplication(configuration: configuration, logger: logger, onServerRunning: onServerRunning)
    try await app.runService()
}
