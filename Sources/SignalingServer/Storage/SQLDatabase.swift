import Foundation
import Logging

/// A value bound into, or read out of, a query: the few types vcall's tables use.
public enum SQLValue: Sendable, Equatable {
    case text(String)
    case integer(Int)
    case null

    public var string: String? {
        if case .text(let value) = self { return value }
        return nil
    }

    public var integer: Int? {
        if case .integer(let value) = self { return value }
        return nil
    }
}

/// One result row, by column name.
public struct SQLRow: Sendable {
    public var values: [String: SQLValue]

    public subscript(_ column: String) -> SQLValue? { values[column] }
}

/// Which SQL the database speaks, where the two differ (types, upserts, how a column is added).
public enum SQLDialect: String, Sendable {
    case sqlite
    case postgres
}

/// Runs queries. SQL is written with `?` placeholders for both databases; PostgreSQL's driver numbers them.
public protocol SQLExecutor: Sendable {
    var dialect: SQLDialect { get }
    @discardableResult
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
}

extension SQLExecutor {
    @discardableResult
    public func query(_ sql: String) async throws -> [SQLRow] {
        try await query(sql, [])
    }
}

/// The store behind accounts, sessions and tokens: SQLite in the data folder (one machine) or PostgreSQL
/// (several vcall-server nodes on one database).
public protocol SQLDatabase: SQLExecutor {
    /// Runs `body` in one transaction on one connection: committed when it returns, rolled back when it throws.
    func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T
    /// Where the data lives, for log lines and error messages (a PostgreSQL URL without its password).
    var location: String { get }
    func close() async
}

/// Why the database could not be opened or used, with what to do about it.
public struct DatabaseError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// Where the server keeps its data: `--data-dir` (SQLite, the default) or `--database postgres://…`.
public enum DatabaseLocation: Sendable, Equatable {
    /// `vcall.sqlite` in this folder.
    case sqlite(dataDirectory: String)
    /// A PostgreSQL database.
    case postgres(PostgresURL)

    /// Opens the database and brings its schema up to date (`Migrations`).
    public func open(logger: Logger) async throws -> any SQLDatabase {
        let database: any SQLDatabase
        switch self {
        case .sqlite(let dataDirectory):
            database = try await SQLiteDatabase.open(dataDirectory: dataDirectory, logger: logger)
        case .postgres(let url):
            database = try await PostgresDatabase.open(url: url, logger: logger)
        }
        do {
            try await Migrations.apply(to: database, logger: logger)
        } catch {
            await database.close()
            throw error
        }
        return database
    }
}
