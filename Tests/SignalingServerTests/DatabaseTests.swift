import Foundation
import Logging
@testable import SignalingServer
import SQLiteNIO
import Testing

/// The storage layer: versioned migrations on SQLite and PostgreSQL, PostgreSQL URLs, placeholders.
@Suite("Database")
struct DatabaseTests {
    @Test("a PostgreSQL URL gives user, password, host, port, database and socket folder; the password never shows")
    func postgresURL() throws {
        let url = try PostgresURL(parsing: "postgres://vcall:s%40cret@db.example.org:6432/calls?sslmode=require")
        #expect(url.username == "vcall")
        #expect(url.password == "s@cret")
        #expect(url.host == "db.example.org")
        #expect(url.port == 6432)
        #expect(url.database == "calls")
        #expect(url.sslMode == "require")
        #expect(url.description == "postgres://vcall@db.example.org:6432/calls")
        let socket = try PostgresURL(parsing: "postgresql://vcall@/calls?host=/var/run/postgresql")
        #expect(socket.socketDirectory == "/var/run/postgresql")
        #expect(socket.description == "postgres://vcall@/calls?host=/var/run/postgresql")
        for bad in ["mysql://a@b/c", "postgres://db.example.org/calls", "postgres://vcall@db.example.org", "postgres://a@b/c?sslmode=verify-full"] {
            #expect(throws: DatabaseError.self) { try PostgresURL(parsing: bad) }
        }
        let error = try #require(throws: DatabaseError.self) { try PostgresURL(parsing: "mysql://vcall:hunter2@b/c") }
        #expect(!error.description.contains("hunter2"))
    }

    @Test("? placeholders are numbered for PostgreSQL, but not inside quotes")
    func placeholders() {
        let query = PostgresDatabase.postgresQuery("SELECT '?', \"a?\" FROM t WHERE a = ? AND b = lower(?)", [.text("x"), .integer(1)])
        #expect(query.sql == "SELECT '?', \"a?\" FROM t WHERE a = $1 AND b = lower($2)")
        #expect(query.binds.count == 2)
    }

    @Test("a SQLite database from before versioned migrations (with or without the admin column) is migrated and keeps its accounts")
    func migratesUnversionedSQLite() async throws {
        for withAdmin in [false, true] {
            let folder = try TemporaryDirectory()
            defer { folder.remove() }
            // The schema as vcall-server created it before schema_migrations existed.
            let old = try await SQLiteConnection.open(storage: .file(path: folder.path + "/vcall.sqlite"))
            _ = try await old.query("CREATE TABLE users (username TEXT PRIMARY KEY COLLATE NOCASE, password_hash TEXT NOT NULL, created_at INTEGER NOT NULL)")
            _ = try await old.query("CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, expires_at INTEGER NOT NULL)")
            _ = try await old.query("CREATE TABLE api_tokens (token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, username TEXT, created_at INTEGER NOT NULL, expires_at INTEGER)")
            if withAdmin { _ = try await old.query("ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0") }
            _ = try await old.query("INSERT INTO users (username, password_hash, created_at) VALUES ('Ada', 'x', 1)")
            try await old.close()

            let store = try await AccountStore.open(dataDirectory: folder.path, bcryptCost: 4, logger: Self.quiet)
            let versions = try await store.db.query("SELECT version FROM schema_migrations ORDER BY version").compactMap { $0["version"]?.integer }
            #expect(versions == Migrations.all.map(\.version))
            #expect(try await store.setAdmin(username: "ada", true) == "Ada")
            #expect(try await store.isAdmin(username: "ADA"))
            await store.close()
        }
    }

    @Test("migrations run once: reopening applies nothing; a database from a newer vcall-server is refused with what to do")
    func migrationsRunOnceAndRefuseNewer() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let location = try await TestDatabase.location(forDataDirectory: folder.path)
        let first = try await location.open(logger: Self.quiet)
        let count = try await first.query("SELECT count(*) AS n FROM schema_migrations").first?["n"]?.integer
        #expect(count == Migrations.all.count)
        await first.close()
        let second = try await location.open(logger: Self.quiet)
        #expect(try await second.query("SELECT count(*) AS n FROM schema_migrations").first?["n"]?.integer == count)
        try await second.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'from the future', 0)")
        await second.close()
        let error = try await #require(throws: DatabaseError.self) { _ = try await location.open(logger: Self.quiet) }
        #expect(error.description.contains("schema version 999"))
        #expect(error.description.contains("newer vcall-server"))
    }

    @Test("a failing migration leaves the database as it was (one transaction)")
    func failingMigrationRollsBack() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let location = try await TestDatabase.location(forDataDirectory: folder.path)
        let database = try await location.open(logger: Self.quiet)
        let broken = Migrations.all + [
            Migration(version: 1000, name: "creates a table, then fails") { db in
                try await db.query("CREATE TABLE half_done (x INTEGER)")
                try await db.query("SELECT * FROM no_such_table")
            },
        ]
        await #expect(throws: (any Error).self) { try await Migrations.apply(to: database, steps: broken, logger: Self.quiet) }
        let versions = try await database.query("SELECT version FROM schema_migrations").compactMap { $0["version"]?.integer }
        #expect(!versions.contains(1000))
        await #expect(throws: (any Error).self) { try await database.query("SELECT * FROM half_done") }
        await database.close()
    }

    @Test("PostgreSQL: nodes on one database share the resume secret, and an unreachable server is a clear error",
          .enabled(if: TestDatabase.postgres != nil, "needs VCALL_TEST_POSTGRES (scripts/test starts a throwaway cluster)"))
    func postgresSharedSecretAndUnreachable() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let location = try await TestDatabase.location(forDataDirectory: folder.path)
        let a = try await location.open(logger: Self.quiet)
        let b = try await location.open(logger: Self.quiet)
        let tokensA = try await ResumeTokens.load(database: a)
        let tokensB = try await ResumeTokens.load(database: b)
        #expect(tokensB.id(from: tokensA.token(for: "peer-1")) == "peer-1")
        await a.close()
        await b.close()

        var nowhere = try #require(TestDatabase.postgres)
        nowhere.socketDirectory = folder.path  // no server listens here
        let error = try await #require(throws: DatabaseError.self) { _ = try await DatabaseLocation.postgres(nowhere).open(logger: Self.quiet) }
        #expect(error.description.contains("cannot use PostgreSQL at postgres://vcall@"))
    }

    static var quiet: Logger {
        var logger = Logger(label: "vcall-test")
        logger.logLevel = .critical
        return logger
    }
}

@Suite("Cluster batches")
struct ClusterBatchTests {
    @Test("a batch of frames and events unpacks to the same events, whatever their text holds")
    func roundTrip() throws {
        let member = ClusterMember(
            id: "p1", node: "n1", name: "Zoë: 🎥", identity: Identity(name: "zoe", username: "zoe", credential: .session),
            roomId: "r", capacity: 4, relay: false, visible: true, connectedAt: 1
        )
        let events: [ClusterEvent] = [
            .frame(to: "b2", from: "a1", text: #"{"type":"offer","sdp":"v=0\r\n:12:F3:"}"#),
            .member(member),
            .frame(to: "c3", from: nil, text: ""),
            .gone(id: "p1", node: "n1"),
            .frame(to: "ü", from: "ß", text: String(repeating: "€", count: 5000)),
        ]
        #expect(try ClusterBatch.unpack(ClusterBatch.pack(events)) == events)
        #expect(try ClusterBatch.unpack("") == [])
        #expect(throws: ClusterBatch.Malformed.self) { try ClusterBatch.unpack("F5:ab") }
        #expect(throws: ClusterBatch.Malformed.self) { try ClusterBatch.unpack("X1:a") }
    }
}
