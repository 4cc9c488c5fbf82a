import Foundation
import Logging
import SQLiteNIO

/// `vcall.sqlite` in the data folder: one connection (SQLite serializes writers anyway), WAL journal.
final class SQLiteDatabase: SQLDatabase {
    static let fileName = "vcall.sqlite"
    let connection: SQLiteConnection
    let location: String
    var dialect: SQLDialect { .sqlite }

    private init(connection: SQLiteConnection, location: String) {
        self.connection = connection
        self.location = location
    }

    static func open(dataDirectory: String, logger: Logger) async throws -> SQLiteDatabase {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent(fileName).path
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        do {
            _ = try await connection.query("PRAGMA journal_mode=WAL")
            _ = try await connection.query("PRAGMA busy_timeout=5000")
        } catch {
            try? await connection.close()
            throw error
        }
        return SQLiteDatabase(connection: connection, location: path)
    }

    @discardableResult

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        try await lock.run { try await self.unlocked.query(sql, binds) }
    }

    /// A transaction is BEGIN … COMMIT on the one connection; `lock` keeps this process's other queries out of
    /// it meanwhile (they would otherwise land inside it).
    func transaction<T: Sendable>(_ body: @Sendable (any SQLExecutor) async throws -> T) async throws -> T {
        try await lock.run {
            try await self.unlocked.query("BEGIN IMMEDIATE", [])
            do {
                let result = try await body(self.unlocked)
                try await self.unlocked.query("COMMIT", [])
                return result
            } catch {
                _ = try? await self.unlocked.query("ROLLBACK", [])
                throw error
            }
        }
    }

    private let lock = AsyncSerialLock()
    private var unlocked: Unlocked { Unlocked(connection: connection) }

    /// Queries straight on the connection: inside the lock.
    private struct Unlocked: SQLExecutor {
        let connection: SQLiteConnection
        var dialect: SQLDialect { .sqlite }

        @discardableResult

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            let rows = try await connection.query(sql, binds.map(SQLiteDatabase.data))
            return rows.map { row in
                SQLRow(values: Dictionary(row.columns.map { ($0.name, SQLiteDatabase.value($0.data)) }, uniquingKeysWith: { first, _ in first }))
            }
        }
    }

    func close() async {
        try? await connection.close()
    }

    fileprivate static func data(_ value: SQLValue) -> SQLiteData {
        switch value {
        case .text(let text): .text(text)
        case .integer(let integer): .integer(integer)
        case .null: .null
        }
    }

    fileprivate static func value(_ data: SQLiteData) -> SQLValue {
        switch data {
        case .text(let text): .text(text)
        case .integer(let integer): .integer(integer)
        case .float(let float): .integer(Int(float))
        case .blob(let buffer): .text(String(buffer: buffer))
        case .null: .null
        }
    }
}

/// Runs async bodies one at a time, in the order they arrive.
actor AsyncSerialLock {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        }
        busy = true
        defer {
            if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
        }
        return try await body()
    }
}
