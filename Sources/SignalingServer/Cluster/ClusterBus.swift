import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOSSL
import PostgresNIO
import ServiceLifecycle

/// How vcall-server nodes on one PostgreSQL database reach each other: an outbox table, with LISTEN/NOTIFY
/// only as a doorbell.
///
/// A node writes its events (`ClusterEvent`) as rows of `cluster_outbox`, one writer at a time, in batches; a
/// transaction-scoped advisory lock around each insert makes rows commit in the order of their ids, so a
/// reader that goes on from the last id it saw never skips one committed late. After each batch it sends
/// `NOTIFY vcall_cluster` (outside any long transaction). Each node keeps one connection of its own
/// listening on that channel (with a keepalive query) and, when rung — or every second anyway, which
/// covers the time its listening connection spends reconnecting — reads the rows after its last id. An
/// SDP larger than NOTIFY's 8,000-byte payload therefore crosses like any other message, and nothing sent
/// while a node was not listening is lost. Rows older than two minutes are deleted.
///
/// Nodes heartbeat in `cluster_nodes`; a node whose heartbeat is older than `deadAfter` is dead, and its
/// clients are treated as if their sockets had dropped (the hub holds them for the resume grace).
/// When the database is unreachable, events wait in memory and are retried; those older than
/// `deliveryDeadline` are given up and their senders told (`Handlers.undeliverable`).
final class ClusterBus: Service, Sendable {
    static let channel = "vcall_cluster"
    static let heartbeatInterval: Duration = .seconds(2)
    static let deadAfterMilliseconds: Int64 = 10_000
    static let deliveryDeadlineMilliseconds: Int64 = 5_000
    static let retentionMilliseconds: Int64 = 120_000
    /// Orders the outbox's inserts across nodes (any number, the same on every node).
    static let outboxLockKey = 0x7663_6f75_74

    let node: String
    private let database: PostgresDatabase
    private let logger: Logger
    private let metrics: ServerMetrics
    private let state = NIOLockedValueBox(State())
    private let wakeWriter: AsyncStream<Void>.Continuation
    private let writerWakes: AsyncStream<Void>
    private let wakeReader: AsyncStream<Void>.Continuation
    private let readerWakes: AsyncStream<Void>

    /// What the bus tells its owner (the hub), set once before `run`.
    struct Handlers: Sendable {
        /// Receives the other nodes' events, in order.
        var events: @Sendable ([ClusterEvent]) -> Void = { _ in }
        /// Receives the nodes found dead.
        var nodeDead: @Sendable (String) -> Void = { _ in }
        /// Called when the database answers again after a silence the other nodes may have taken for death.
        var reconnected: @Sendable () -> Void = {}
        /// Receives events given up on (the database was unreachable too long).
        var undeliverable: @Sendable ([ClusterEvent]) -> Void = { _ in }
    }

    /// In a struct, not a box of their own: a closure kept directly in a generic box is re-wrapped in a
    /// reabstraction thunk by every `withLockedValue` (the inout write-back), so each call would have gone
    /// through one more layer than the last (found in a profile: thousands deep after a minute of traffic).
    private let handlerBox = NIOLockedValueBox(Handlers())

    var handlers: Handlers {
        get { handlerBox.withLockedValue { $0 } }
        set { handlerBox.withLockedValue { $0 = newValue } }
    }

    private struct State {
        var queue: [ClusterEnvelope] = []
        var lastSeenID: Int64 = 0
        /// When the database last answered (milliseconds since 1970).
        var lastContact: Int64 = nowMilliseconds()
        var lastError: String?
        var aliveNodes: Set<String> = []
        var deadNodes: Set<String> = []
    }

    init(node: String, database: PostgresDatabase, metrics: ServerMetrics, logger: Logger) {
        self.node = node
        self.database = database
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "node"] = "\(node)"
        self.logger = logger
        (writerWakes, wakeWriter) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
        (readerWakes, wakeReader) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Registers this node and finds where the outbox ends, so that it reads only what comes after its start.
    func start() async throws {
        let client = database.client
        try await client.query("""
            INSERT INTO cluster_nodes (node, started_ms, heartbeat_ms) VALUES (\(node), \(nowMilliseconds()), \(nowMilliseconds()))
            ON CONFLICT (node) DO UPDATE SET heartbeat_ms = EXCLUDED.heartbeat_ms
            """)
        var last: Int64 = 0
        for try await (id) in try await client.query("SELECT coalesce(max(id), 0) FROM cluster_outbox").decode(Int64.self) {
            last = id
        }
        state.withLockedValue { $0.lastSeenID = last }
        publish([.hello(node: node)])
    }

    /// Queues events for the other nodes (or `node` alone); never waits.
    func publish(_ events: [ClusterEvent], to targetNode: String? = nil) {
        guard !events.isEmpty else { return }
        let now = nowMilliseconds()
        let depth = state.withLockedValue { state in
            state.queue.append(contentsOf: events.map { ClusterEnvelope(event: $0, targetNode: targetNode, queuedAt: now) })
            return state.queue.count
        }
        metrics.clusterQueue.set(Double(depth))
        wakeWriter.yield()
    }

    /// Whether the database answered within the last few seconds; nil when it did, else why not.
    var problem: String? {
        state.withLockedValue { state in
            let silent = nowMilliseconds() - state.lastContact
            guard silent > 6_000 else { return nil }
            return "the database has not answered for \(silent / 1000) s (\(state.lastError ?? "no answer"))"
        }
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.writeLoop(); self.logger.trace("writeLoop ended") }
                group.addTask { await self.readLoop(); self.logger.trace("readLoop ended") }
                group.addTask { await self.listenLoop(); self.logger.trace("listenLoop ended") }
                group.addTask { await self.heartbeatLoop(); self.logger.trace("heartbeatLoop ended") }
                group.addTask { await self.cleanupLoop(); self.logger.trace("cleanupLoop ended") }
                await group.waitForAll()
            }
        }
        // Leaving cleanly: the others need not wait for the heartbeat to go stale.
        _ = try? await database.client.query("DELETE FROM cluster_nodes WHERE node = \(node)")
    }

    private func contact(_ error: (any Error)?) {
        let silence = state.withLockedValue { state -> Int64 in
            if let error {
                state.lastError = PostgresDatabase.describe(error)
                return 0
            }
            let now = nowMilliseconds()
            defer {
                state.lastContact = now
                state.lastError = nil
            }
            return now - state.lastContact
        }
        // Silent long enough for the others to think this node dead: they may have dropped its clients, so
        // it tells them all of them again.
        if silence > Self.deadAfterMilliseconds / 2 {
            logger.notice("the database answers again after \(silence / 1000) s: announcing this node's clients")
            handlers.reconnected()
        }
    }

    // MARK: writing

    private func writeLoop() async {
        for await _ in writerWakes {
            while !Task.isCancelled {
                let batch = state.withLockedValue { Array($0.queue.prefix(1000)) }
                guard !batch.isEmpty else { break }
                do {
                    // postgres-nio's pool waits for a connection without end while the server is away.
                    try await withDeadline(.seconds(3), what: "writing to the cluster outbox") { try await self.insert(batch) }
                    contact(nil)
                    let depth = state.withLockedValue { state in
                        state.queue.removeFirst(batch.count)
                        return state.queue.count
                    }
                    metrics.clusterQueue.set(Double(depth))
                    metrics.clusterSent.increment(by: Int64(batch.count))
                } catch {
                    contact(error)
                    logger.warning("cannot write to the cluster outbox: \(PostgresDatabase.describe(error)); retrying")
                    giveUpOnOldEvents()
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
        }
    }

    /// One statement per batch (the lock, the rows, the doorbell): one round trip, and one row per run of events
    /// for the same node(s) (`ClusterBatch`), in order.
    private func insert(_ batch: [ClusterEnvelope]) async throws {
        var targets: [String] = [], bodies: [String] = [], queuedAt: [Int64] = []
        var start = batch.startIndex
        while start < batch.endIndex {
            let target = batch[start].targetNode
            let end = batch[start...].firstIndex { $0.targetNode != target } ?? batch.endIndex
            targets.append(target ?? "")
            bodies.append(try ClusterBatch.pack(batch[start..<end].map(\.event)))
            queuedAt.append(batch[start].queuedAt)
            start = end
        }
        try await database.client.query("""
            WITH ordered AS (SELECT pg_advisory_xact_lock(\(Self.outboxLockKey))),
            written AS (
                INSERT INTO cluster_outbox (origin, target, body, created_ms)
                SELECT \(node), t, b, q FROM ordered,
                    unnest(\(targets)::text[], \(bodies)::text[], \(queuedAt)::bigint[]) WITH ORDINALITY AS u(t, b, q, n)
                ORDER BY n
                RETURNING 1)
            SELECT pg_notify(\(Self.channel), '') FROM (SELECT count(*) FROM written) AS c
            """)
    }

    /// Drops queued events older than the delivery deadline, telling their senders.
    private func giveUpOnOldEvents() {
        let cutoff = nowMilliseconds() - Self.deliveryDeadlineMilliseconds
        let dropped = state.withLockedValue { state -> [ClusterEvent] in
            let old = state.queue.prefix { $0.queuedAt < cutoff }
            state.queue.removeFirst(old.count)
            return old.map(\.event)
        }
        guard !dropped.isEmpty else { return }
        metrics.clusterUndeliverable.increment(by: Int64(dropped.count))
        logger.error("gave up on \(dropped.count) messages for other nodes: the database was unreachable for \(Self.deliveryDeadlineMilliseconds / 1000) s")
        handlers.undeliverable(dropped)
    }

    // MARK: reading

    private func readLoop() async {
        // A timer rings too: rows written while this node's listening connection was away are read all the same.
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                wakeReader.yield()
            }
        }
        defer { ticker.cancel() }
        for await _ in readerWakes {
            if Task.isCancelled { break }
            do {
                while try await withDeadline(.seconds(5), what: "reading the cluster outbox", { try await self.readBatch() }) {}
                contact(nil)
            } catch {
                contact(error)
                logger.debug("cannot read the cluster outbox: \(PostgresDatabase.describe(error))")
            }
        }
    }

    /// Reads and hands over the next rows; true when there may be more.
    private func readBatch() async throws -> Bool {
        let last = state.withLockedValue { $0.lastSeenID }
        let limit = 200
        // This node's own rows and those for another node are skipped by the query.
        let rows = try await database.client.query("""
            SELECT id, body, created_ms FROM cluster_outbox
            WHERE id > \(last) AND origin <> \(node) AND (target = '' OR target = \(node))
            ORDER BY id LIMIT \(limit)
            """)
        var events: [ClusterEvent] = []
        var newest = last
        var count = 0
        let now = nowMilliseconds()
        for try await (id, body, created) in rows.decode((Int64, String, Int64).self) {
            count += 1
            newest = id
            do {
                let unpacked = try ClusterBatch.unpack(body)
                events += unpacked
                let delay = Double(max(0, now - created)) / 1000
                for _ in unpacked { metrics.clusterDelay.record(delay) }
            } catch {
                logger.error("skipping an outbox row (\(id)) this node cannot read: \(error); are the nodes on different versions?")
            }
        }
        if newest > last { state.withLockedValue { $0.lastSeenID = max($0.lastSeenID, newest) } }
        if !events.isEmpty {
            metrics.clusterReceived.increment(by: Int64(events.count))
            handlers.events(events)
        }
        return count == limit
    }

    /// One connection of its own, listening; reconnects after a second when it fails (its keepalive query
    /// fails, or the notifications end), and rings the reader each time it is back.
    private func listenLoop() async {
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: try database.url.connectionConfiguration(), id: 1, logger: logger
                )
                let notifications: PostgresNotificationSequence
                do {
                    notifications = try await connection.listen(Self.channel)
                } catch {
                    // A connection dropped unclosed trips postgres-nio's assertion (a crash in debug builds): LISTEN
                    // fails when the server shuts down right after the connection is made.
                    try? await connection.closeAndWait()
                    throw error
                }
                wakeReader.yield()
                // Whichever ends first (the notifications, the keepalive, or this task's cancellation) ends the
                // connection: postgres-nio's notification sequence does not end by itself when the task is cancelled.
                let (ended, end) = AsyncStream<Void>.makeStream()
                let listener = Task {
                    do {
                        for try await _ in notifications { self.wakeReader.yield() }
                    } catch {}
                    end.finish()
                }
                let keepalive = Task {
                    do {
                        while !Task.isCancelled {
                            try await Task.sleep(for: .seconds(10))
                            _ = try await connection.query("SELECT 1", logger: self.logger)
                        }
                    } catch {}
                    end.finish()
                }
                for await _ in ended {}
                listener.cancel()
                keepalive.cancel()
                try? await connection.closeAndWait()
                if !Task.isCancelled { logger.debug("the listening connection ended; reconnecting") }
            } catch {
                if Task.isCancelled { return }
                contact(error)
                logger.debug("listening on \(Self.channel) failed: \(PostgresDatabase.describe(error)); reconnecting in 1 s")
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    // MARK: nodes

    private func heartbeatLoop() async {
        while !Task.isCancelled {
            do {
                try await withDeadline(.seconds(3), what: "heartbeating") { try await self.heartbeat() }
            } catch {
                contact(error)
                logger.warning("cannot heartbeat: \(PostgresDatabase.describe(error))")
            }
            try? await Task.sleep(for: Self.heartbeatInterval)
        }
    }

    /// Writes this node's heartbeat, reads the others', and reports the nodes that have just gone silent.
    private func heartbeat() async throws {
        let now = nowMilliseconds()
        try await database.client.query("""
            INSERT INTO cluster_nodes (node, started_ms, heartbeat_ms) VALUES (\(node), \(now), \(now))
            ON CONFLICT (node) DO UPDATE SET heartbeat_ms = EXCLUDED.heartbeat_ms
            """)
        var nodes: [(String, Int64)] = []
        for try await row in try await database.client.query("SELECT node, heartbeat_ms FROM cluster_nodes").decode((String, Int64).self) {
            nodes.append(row)
        }
        contact(nil)
        let (dead, alive) = state.withLockedValue { state -> ([String], Int) in
            var newlyDead: [String] = []
            for (other, heartbeat) in nodes where other != node {
                if now - heartbeat > Self.deadAfterMilliseconds {
                    if !state.deadNodes.contains(other) {
                        state.deadNodes.insert(other)
                        newlyDead.append(other)
                    }
                    state.aliveNodes.remove(other)
                } else {
                    state.aliveNodes.insert(other)
                    state.deadNodes.remove(other)
                }
            }
            return (newlyDead, state.aliveNodes.count + 1)
        }
        metrics.clusterNodes.set(Double(alive))
        for other in dead {
            logger.warning("node \(other) stopped heartbeating: its clients are treated as disconnected")
            handlers.nodeDead(other)
        }
    }

    /// Deletes rows every node has long read (and nodes silent for an hour); samples the backlog.
    private func cleanup() async throws {
        let cutoff = nowMilliseconds() - Self.retentionMilliseconds
        try await database.client.query("DELETE FROM cluster_outbox WHERE created_ms < \(cutoff)")
        try await database.client.query("DELETE FROM cluster_nodes WHERE heartbeat_ms < \(cutoff - 3_600_000)")
        for try await count in try await database.client.query("SELECT count(*) FROM cluster_outbox").decode(Int64.self) {
            metrics.clusterOutboxRows.set(Double(count))
        }
    }

    private func cleanupLoop() async {
        while !Task.isCancelled {
            do {
                try await withDeadline(.seconds(5), what: "cleaning the cluster outbox") { try await self.cleanup() }
            } catch {
                contact(error)
            }
            try? await Task.sleep(for: .seconds(15))
        }
    }
}

extension PostgresURL {
    /// The same server and login for a single connection (the listening one).
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        if let socketDirectory {
            return .init(unixSocketPath: socketDirectory + "/.s.PGSQL.\(port)", username: username, password: password, database: database)
        }
        let tls: PostgresConnection.Configuration.TLS =
            switch sslMode {
            case "disable": .disable
            case "require": .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            default: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
        return .init(host: host, port: port, username: username, password: password, database: database, tls: tls)
    }
}

extension PostgresConnection {
    /// Closes the connection and waits until it is closed (postgres-nio asserts that a connection is closed
    /// before it goes away).
    func closeAndWait() async throws {
        let closing: EventLoopFuture<Void> = close()
        try await closing.get()
    }
}
