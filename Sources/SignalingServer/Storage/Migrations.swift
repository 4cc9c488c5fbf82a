import Foundation
import Logging

/// One step of the schema, applied once per database and recorded in `schema_migrations`.
struct Migration: Sendable {
    let version: Int
    let name: String
    let apply: @Sendable (any SQLExecutor) async throws -> Void
}

/// The schema's history, oldest first; `apply(to:)` runs the steps a database has not seen, in one transaction.
///
/// Never edit a step that has shipped: add a new one. Steps are written so that a database made before
/// versioned migrations (SQLite, whose tables and `admin` column were created ad hoc) passes through them
/// unharmed. On PostgreSQL an advisory lock makes nodes that start together migrate one after the other.
enum Migrations {
    static let all: [Migration] = [
        Migration(version: 1, name: "accounts, sessions and API tokens") { db in
            switch db.dialect {
            case .sqlite:
                try await db.query("""
                    CREATE TABLE IF NOT EXISTS users (
                        username TEXT PRIMARY KEY COLLATE NOCASE,
                        password_hash TEXT NOT NULL,
                        created_at INTEGER NOT NULL)
                    """)
            case .postgres:
                try await db.query("""
                    CREATE TABLE IF NOT EXISTS users (
                        username TEXT PRIMARY KEY,
                        password_hash TEXT NOT NULL,
                        created_at BIGINT NOT NULL)
                    """)
            }
            // Usernames are unique whatever their case (and looked up by lower(username)).
            try await db.query("CREATE UNIQUE INDEX IF NOT EXISTS users_username_lower ON users (lower(username))")
            try await db.query("""
                CREATE TABLE IF NOT EXISTS sessions (
                    token_hash TEXT PRIMARY KEY,
                    username TEXT NOT NULL,
                    expires_at BIGINT NOT NULL)
                """)
            try await db.query("""
                CREATE TABLE IF NOT EXISTS api_tokens (
                    token_hash TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    username TEXT,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT)
                """)
        },
        Migration(version: 2, name: "admin flag on accounts") { db in
            switch db.dialect {
            case .sqlite:
                // Databases from before versioned migrations may have the column already.
                let columns = try await db.query("PRAGMA table_info(users)").compactMap { $0["name"]?.string }
                if !columns.contains("admin") {
                    try await db.query("ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0")
                }
            case .postgres:
                try await db.query("ALTER TABLE users ADD COLUMN IF NOT EXISTS admin INTEGER NOT NULL DEFAULT 0")
            }
        },
        Migration(version: 3, name: "server settings (the resume-token secret on PostgreSQL)") { db in
            try await db.query("CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        },
        Migration(version: 4, name: "nodes and their outbox (PostgreSQL only)") { db in
            // A single SQLite node has nobody to talk to; the version is recorded all the same.
            guard db.dialect == .postgres else { return }
            try await db.query("""
                CREATE TABLE cluster_nodes (
                    node TEXT PRIMARY KEY,
                    started_ms BIGINT NOT NULL,
                    heartbeat_ms BIGINT NOT NULL)
                """)
            // UNLOGGED: rows live two minutes and are written at the rate of every message, so they skip the
            // write-ahead log (a database crash empties the table; the id sequence goes on, so no node rereads).
            try await db.query("""
                CREATE UNLOGGED TABLE cluster_outbox (
                    id BIGSERIAL PRIMARY KEY,
                    origin TEXT NOT NULL,
                    -- the node it is for, or '' for every node
                    target TEXT NOT NULL,
                    -- a run of events (ClusterBatch)
                    body TEXT NOT NULL,
                    created_ms BIGINT NOT NULL)
                """)
            try await db.query("CREATE INDEX cluster_outbox_created ON cluster_outbox (created_ms)")
            // A batch is up to hundreds of KB of text read once: kept out of line but not compressed.
            try await db.query("ALTER TABLE cluster_outbox ALTER COLUMN body SET STORAGE EXTERNAL")
        },
        Migration(version: 5, name: "recording jobs and the workers that take them (PostgreSQL only)") { db in
            // Workers claim jobs with FOR UPDATE SKIP LOCKED, which SQLite lacks; one machine records with a gateway.
            guard db.dialect == .postgres else { return }
            try await db.query("""
                CREATE TABLE recording_jobs (
                    id BIGSERIAL PRIMARY KEY,
                    room TEXT NOT NULL,
                    composite INTEGER NOT NULL DEFAULT 0,
                    -- waiting, recording, done, cancelled or failed
                    state TEXT NOT NULL,
                    requested_by TEXT NOT NULL,
                    requested_ms BIGINT NOT NULL,
                    stop_requested INTEGER NOT NULL DEFAULT 0,
                    worker TEXT,
                    -- the fencing token: raised by every claim, and the part number its holder records
                    fence INTEGER NOT NULL DEFAULT 0,
                    lease_until_ms BIGINT,
                    -- a JSON array of the recordings' file names, every part's
                    files TEXT NOT NULL DEFAULT '[]',
                    -- a JSON array of the finalized recordings' reports, of the parts whose worker finished them
                    reports TEXT NOT NULL DEFAULT '[]',
                    ended_ms BIGINT,
                    reason TEXT)
                """)
            // One recording at a time per room: a second request finds the first.
            try await db.query("CREATE UNIQUE INDEX recording_jobs_active_room ON recording_jobs (room) WHERE state IN ('waiting', 'recording')")
            try await db.query("""
                CREATE TABLE recording_workers (
                    worker TEXT PRIMARY KEY,
                    slots INTEGER NOT NULL,
                    busy INTEGER NOT NULL,
                    heartbeat_ms BIGINT NOT NULL)
                """)
        },
    ]

    /// Any number; the same on every node, so concurrent start-ups take turns.
    static let advisoryLockKey = 0x7663_616c_6c

    /// Brings `database` up to the newest version; refuses a database migrated by a newer vcall-server.
    static func apply(to database: any SQLDatabase, steps: [Migration] = all, logger: Logger) async throws {
        let applied = try await database.transaction { db -> [Int] in
            if db.dialect == .postgres {
                try await db.query("SELECT pg_advisory_xact_lock(?)", [.integer(advisoryLockKey)])
            }
            try await db.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_at BIGINT NOT NULL)
                """)
            let done = Set(try await db.query("SELECT version FROM schema_migrations").compactMap { $0["version"]?.integer })
            let known = steps.map(\.version).max() ?? 0
            if let newest = done.max(), newest > known {
                throw DatabaseError(
                    "the database \(database.location) is at schema version \(newest), newer than this vcall-server knows (\(known)): run the newer vcall-server, or restore a backup made before it"
                )
            }
            var applied: [Int] = []
            for step in steps.sorted(by: { $0.version < $1.version }) where !done.contains(step.version) {
                try await step.apply(db)
                try await db.query(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    [.integer(step.version), .text(step.name), .integer(Int(Date().timeIntervalSince1970))]
                )
                applied.append(step.version)
            }
            return applied
        }
        if !applied.isEmpty {
            logger.info("database \(database.location): applied schema migrations \(applied.map(String.init).joined(separator: ", "))")
        }
    }
}
