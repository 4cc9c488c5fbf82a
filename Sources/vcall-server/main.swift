import ArgumentParser
import Foundation
import Logging
import SignalingProtocol
import SignalingServer
import WebRTCTypes

@main
struct VCallServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcall-server",
        abstract: "Video calls in the browser: signaling over WebSocket, rooms, presence, accounts and the web app.",
        subcommands: [Serve.self, Token.self, User.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server (the default).")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 = any free port; the real one is printed).") var port = 8080
    @OptionGroup var storage: StorageOptions
    @Flag(name: .customLong("require-login"), help: "Every room join and call needs a session or an API token.") var requireLogin = false
    @Option(name: .customLong("room-capacity"), help: "Largest room (a room's creator may ask for a smaller one).") var roomCapacity = SignalingLimits.defaultRoomCapacity
    @Option(name: .customLong("max-message-bytes"), help: "Largest accepted message in bytes; larger ones get error too-large.") var maxMessageBytes = SignalingLimits.defaultMaxMessageBytes
    @Option(name: .customLong("rate-limit"), help: "Messages per second a connection may send.") var rateLimit: Double = 50
    @Option(name: .customLong("rate-burst"), help: "Messages a connection may send in one burst.") var rateBurst: Double = 200
    @Option(name: .customLong("stun"), help: "STUN server URL for clients, e.g. stun:stun.example.org:3478 (repeatable).") var stun: [String] = []
    @Option(name: .customLong("turn"), help: "TURN server for clients: turn:HOST:PORT or USER:PASSWORD@turn:HOST:PORT (repeatable).") var turn: [String] = []
    @Option(
        name: .customLong("turn-secret"),
        help: "coturn's static-auth-secret (or set VCALL_TURN_SECRET): each client gets its own TURN username and password for the --turn servers given without credentials."
    ) var turnSecret: String?
    @Option(name: .customLong("turn-credential-hours"), help: "How long a client's TURN credential stays valid.") var turnCredentialHours: Double = 6
    @Option(
        name: .customLong("resume-grace"),
        help: "Seconds a room keeps a member whose connection dropped, so it can reconnect and resume unnoticed (0 = tell the room at once)."
    ) var resumeGrace: Double = 20
    @Option(name: .customLong("tls-cert"), help: "Serve HTTPS and WSS with this certificate (PEM: the certificate, then its intermediates); needs --tls-key.")
    var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "The private key of --tls-cert (unencrypted PEM).") var tlsKey: String?
    @Option(name: .customLong("trusted-proxy"),
            help: "The IP address of a reverse proxy in front of this server whose X-Forwarded-For names the client (repeatable); others' is ignored.")
    var trustedProxy: [String] = []
    @Option(name: .customLong("web-root"), help: "Serve the web app from this folder instead of the bundled files.") var webRoot: String?
    @Option(name: .customLong("recordings"),
            help: "A gateway's recordings folder (its --record DIR): listed at /recordings, each file to the accounts that were in its room.")
    var recordings: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel = "info"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        guard roomCapacity >= 1 else { throw ValidationError("--room-capacity must be at least 1") }
        guard maxMessageBytes >= 1024 else { throw ValidationError("--max-message-bytes must be at least 1024") }
        guard rateLimit > 0, rateBurst >= 1 else { throw ValidationError("--rate-limit must be > 0 and --rate-burst at least 1") }
        guard resumeGrace >= 0, resumeGrace <= 86400 else { throw ValidationError("--resume-grace must be 0…86400 seconds") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        for url in stun where !url.hasPrefix("stun:") && !url.hasPrefix("stuns:") {
            throw ValidationError("--stun \(url): a STUN URL starts with stun: (e.g. stun:stun.l.google.com:19302)")
        }
        for value in turn where parseTurn(value) == nil {
            throw ValidationError("--turn \(value): use turn:HOST:PORT or USER:PASSWORD@turn:HOST:PORT")
        }
        if let secret = effectiveTurnSecret {
            guard !secret.isEmpty else { throw ValidationError("--turn-secret must not be empty") }
            guard turn.compactMap(parseTurn).contains(where: { $0.username == nil }) else {
                throw ValidationError("--turn-secret needs a --turn turn:HOST:PORT without USER:PASSWORD: those are the servers its credentials are for")
            }
        }
        for address in trustedProxy where !(address.contains(":") || (!address.isEmpty && address.allSatisfy { $0.isNumber || $0 == "." })) {
            throw ValidationError("--trusted-proxy \(address): give the proxy's IP address, as this server sees it connect (e.g. 127.0.0.1)")
        }
        if (tlsCert == nil) != (tlsKey == nil) {
            throw ValidationError("--tls-cert and --tls-key go together: the certificate and its private key")
        }
        for (flag, path) in [("--tls-cert", tlsCert), ("--tls-key", tlsKey)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                throw ValidationError("\(flag) \(path): no such readable file")
            }
        }
        guard turnCredentialHours > 0, turnCredentialHours <= 24 * 7 else {
            throw ValidationError("--turn-credential-hours must be more than 0 and at most 168")
        }
    }

    /// `--turn-secret`, or `VCALL_TURN_SECRET` (kept out of the process list).
    var effectiveTurnSecret: String? { turnSecret ?? ProcessInfo.processInfo.environment["VCALL_TURN_SECRET"] }

    func parseTurn(_ value: String) -> RTCIceServer? { RTCIceServer(turnArgument: value) }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var configuration = VCallServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.dataDirectory = storage.dataDir
        configuration.database = try storage.postgresURL()
        configuration.requireLogin = requireLogin
        configuration.roomCapacity = roomCapacity
        configuration.maxMessageBytes = maxMessageBytes
        configuration.rateLimitPerSecond = rateLimit
        configuration.rateLimitBurst = rateBurst
        configuration.webRoot = webRoot
        configuration.recordingsDirectory = recordings
        configuration.resumeGrace = .milliseconds(Int64((resumeGrace * 1000).rounded()))
        configuration.iceServers = (stun.isEmpty ? [] : [RTCIceServer(urls: stun)]) + turn.compactMap(parseTurn)
        configuration.turnSecret = effectiveTurnSecret
        configuration.trustedProxies = trustedProxy
        if let tlsCert, let tlsKey { configuration.tls = ServerTLS(certificateChainFile: tlsCert, privateKeyFile: tlsKey) }
        configuration.turnCredentialLifetime = .seconds(Int64(turnCredentialHours * 3600))

        let host = self.host
        let scheme = configuration.tls == nil ? "http" : "https"
        try await runServer(configuration: configuration, logger: Logger(label: "vcall-server")) { port in
            let shown = host.contains(":") ? "[\(host)]" : host
            FileHandle.standardOutput.write(Data("vcall-server listening on \(scheme)://\(shown):\(port)\n".utf8))
        }
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage API tokens for programs such as vcall-gateway.",
        subcommands: [Create.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API token and print it (it is shown only once).")

        @Argument(help: "A name for the program that will use the token; it is its display name in rooms.") var name: String
        @OptionGroup var storage: StorageOptions
        @Option(name: .customLong("expires-in-days"), help: "Days until the token expires (default: never).") var expiresInDays: Int?

        func run() async throws {
            var logger = Logger(label: "vcall-server")
            logger.logLevel = .warning
            let store = try await storage.openAccounts(logger: logger)
            do {
                let token = try await store.createToken(
                    name: name, username: nil,
                    lifetime: expiresInDays.map { .seconds($0 * 24 * 3600) }
                )
                await store.close()
                print(token)
            } catch {
                await store.close()
                throw ValidationError("cannot create the token: \(error)")
            }
        }
    }
}

struct User: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage accounts.",
        subcommands: [Admin.self]
    )

    struct Admin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Let an account see every recording (or, with --revoke, only those of rooms it was in)."
        )

        @Argument(help: "The account's username.") var name: String
        @Flag(help: "Take the admin flag away.") var revoke = false
        @OptionGroup var storage: StorageOptions

        func run() async throws {
            var logger = Logger(label: "vcall-server")
            logger.logLevel = .warning
            let store = try await storage.openAccounts(logger: logger)
            let result: Result<String?, any Error>
            do {
                result = .success(try await store.setAdmin(username: name, !revoke))
            } catch {
                result = .failure(error)
            }
            await store.close()
            switch result {
            case .success(let username?):
                print(revoke ? "\(username) is no longer an admin" : "\(username) is an admin: it sees every recording")
            case .success(nil):
                throw ValidationError("no account \"\(name)\" in \(storage.describe()): register it in the web app first, or check --data-dir / --database")
            case .failure(let error):
                throw ValidationError("cannot change \(name): \(error)")
            }
        }
    }
}

/// Where the data lives: `--data-dir` (SQLite) or `--database` / `VCALL_DATABASE` (PostgreSQL).
struct StorageOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Folder for vcall.sqlite (accounts, sessions, tokens) and resume-secret; unused with --database.")
    var dataDir = "./vcall-data"
    @Option(
        name: .customLong("database"),
        help: "Keep accounts, sessions, tokens and the resume secret in PostgreSQL instead (or set VCALL_DATABASE): postgres://USER[:PASSWORD]@HOST[:PORT]/DB. Nodes on one database form one service."
    ) var database: String?

    /// `--database`, or `VCALL_DATABASE` (kept out of the process list: it may hold a password).
    var databaseURL: String? { database ?? ProcessInfo.processInfo.environment["VCALL_DATABASE"].flatMap { $0.isEmpty ? nil : $0 } }

    func postgresURL() throws -> PostgresURL? {
        do {
            return try databaseURL.map { try PostgresURL(parsing: $0) }
        } catch {
            throw ValidationError("--database: \(error)")
        }
    }

    func validate() throws {
        _ = try postgresURL()
    }

    func describe() -> String {
        (try? postgresURL())??.description ?? "\(dataDir)/vcall.sqlite"
    }

    func openAccounts(logger: Logger) async throws -> AccountStore {
        let location: DatabaseLocation = try postgresURL().map { .postgres($0) } ?? .sqlite(dataDirectory: dataDir)
        return try await AccountStore.open(location, logger: logger)
    }
}
