import Foundation
import Logging
import NIOCore
import PostgresNIO

/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require][&host=/socket/dir]`, the
/// form libpq and psql take (`postgresql://` too). `host=/dir` in the query connects through the Unix
/// socket in that folder (Debian's `/var/run/postgresql`, with peer authentication).
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public var username: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var socketDirectory: String?
    public var sslMode: String

    public init(parsing text: String) throws {
        guard let components = URLComponents(string: text),
              let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme)
        else {
            throw DatabaseError("\"\(Self.redacted(text))\" is not a PostgreSQL URL: write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        guard let user = components.user, !user.isEmpty else {
            throw DatabaseError("\(Self.redacted(text)) names no user: write postgres://USER@HOST/DATABASE")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else {
            throw DatabaseError("\(Self.redacted(text)) names no database: end it with /DATABASE (create it with `createdb`)")
        }
        username = user.removingPercentEncoding ?? user
        password = components.password.map { $0.removingPercentEncoding ?? $0 }
        socketDirectory = query["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? (socketDirectory == nil ? "localhost" : "")
        port = components.port ?? 5432
        self.database = database
        sslMode = query["sslmode"] ?? "prefer"
        guard ["disable", "prefer", "require"].contains(sslMode) else {
            throw DatabaseError("sslmode=\(sslMode) is not supported: use disable, prefer or require")
        }
    }

    /// The URL without its password: what logs and errors show.
    public var description: String {
        var text = "postgres://\(username)@\(host)"
        if socketDirectory == nil { text += ":\(port)" }
        text += "/\(database)"
        if let socketDirectory { text += "?host=\(socketDirectory)" }
        return text
    }

    static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? text
    }

    var clientConfiguration: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let socketDirectory {
            configuration = .init(
                unixSocketPath: socketDirectory + "/.s.PGSQL.\(port)", username: username, password: password, database: database
            )
        } else {
            let tls: PostgresClient.Configuration.TLS =
                switch sslMode {
                case "disable": .disable
                case "require": .require(.makeClientConfiguration())
                default: .prefer(.makeClientConfiguration())
                }
            configuration = .init(host: host, port: port, username: username, password: password, database: database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(15))
        return configuration
    }
}

/// A PostgreSQL database through postgres-nio's connection pool.
///
/// The pool runs in a task of its own from `open` to `close`. Queries use `?` placeholders (see `SQLExecutor`),
/// numbered `$1 …` here.
final class PostgresDatabase: SQLDatabase {
    let client: PostgresClient
    let url: PostgresURL
    private let runTask: Task<Void, Never>
    private let logger: Logger
    var dialect: SQLDialect { .postgres }
    var location: String { url.description }

    private init(client: PostgresClient, url: PostgresURL, runTask: Task<Void, Never>, logger: Logger) {
        self.client = client
        self.url = url
        self.runTask = runTask
        self.logger = logger
    }

    /// Connects; fails with a clear error when the server cannot be reached within 10 s or refuses the login.
    static func open(url: PostgresURL, logger: Logger) async throws -> PostgresDatabase {
        let client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
        let runTask = Task { await client.run() }
        let database = PostgresDatabase(client: client, url: url, runTask: runTask, logger: logger)
        do {
            try await withDeadline(.seconds(10), what: "connecting to PostgreSQL at \(url)") {
                _ = try await database.query("SELECT 1", [])
            }
        } catch {
            await database.close()
            throw DatabaseError("cannot use PostgreSQL at \(url): \(Self.describe(error)). Check that the server runs, the database exists (createdb) and the user may log in")
        }
        return database
    }

    @discardableResult

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await Self.collect(client.query(Self.postgresQuery(sql, binds), logger: logger))
    }

    func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await body(ConnectionExecutor(connection: connection, logger: self.logger))
            }
        } catch let error as PostgresTransactionError {
            // The caller's own error (rolled back) is what matters; BEGIN's or COMMIT's otherwise.
            if let closureError = error.closureError, error.rollbackError == nil { throw closureError }
            throw error.closureError ?? error.commitError ?? error.beginError ?? error.rollbackError ?? error
        }
    }

    func close() async {
        runTask.cancel()
        await runTask.value
    }

    /// One leased connection, inside a transaction.
    private struct ConnectionExecutor: SQLExecutor {
        let connection: PostgresConnection
        let logger: Logger
        var dialect: SQLDialect { .postgres }

        @discardableResult

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            try await PostgresDatabase.collect(connection.query(PostgresDatabase.postgresQuery(sql, binds), logger: logger))
        }
    }

    /// `?` → `$n`, outside quoted literals and identifiers.
    static func postgresQuery(_ sql: String, _ binds: [SQLValue]) -> PostgresQuery {
        var text = ""
        text.reserveCapacity(sql.utf8.count + 8)
        var number = 0
        var quote: Character? = nil
        for character in sql {
            if let open = quote {
                if character == open { quote = nil }
                text.append(character)
            } else if character == "'" || character == "\"" {
                quote = character
                text.append(character)
            } else if character == "?" {
                number += 1
                text += "$\(number)"
            } else {
                text.append(character)
            }
        }
        var bindings = PostgresBindings(capacity: binds.count)
        for bind in binds {
            switch bind {
            case .text(let value): bindings.append(value)
            case .integer(let value): bindings.append(value)
            case .null: bindings.appendNull()
            }
        }
        return PostgresQuery(unsafeSQL: text, binds: bindings)
    }

    static func collect(_ rows: PostgresRowSequence) async throws -> [SQLRow] {
        var result: [SQLRow] = []
        for try await row in rows {
            var values: [String: SQLValue] = [:]
            for cell in row {
                values[cell.columnName] = try value(cell)
            }
            result.append(SQLRow(values: values))
        }
        return result
    }

    private static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .integer(try cell.decode(Int.self))
        case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
        default: return .text(try cell.decode(String.self))
        }
    }

    /// What went wrong, in words: the server's own message for a server error (postgres-nio's description hides
    /// it so that queries do not leak into logs), the error code otherwise.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        return "\(error)"
    }
}

/// Runs `body`, failing with a `DatabaseError` naming `what` when it takes longer than `limit`.
func withDeadline<T: Sendable>(_ limit: Duration, what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw DatabaseError("\(what) took longer than \(limit)")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
