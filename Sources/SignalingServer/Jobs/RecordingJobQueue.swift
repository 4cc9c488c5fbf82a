import Foundation
import Logging
import Recordings

/// A recording asked of the worker pool: one row of `recording_jobs`.
public struct RecordingJob: Sendable, Codable, Equatable {
    public enum State: String, Sendable, Codable {
        /// No worker has it yet (every worker is full, or none runs).
        case waiting
        /// A worker holds its lease and records the room.
        case recording
        /// Stopped and finalized (by the stop request, or because the room emptied).
        case done
        /// Stopped before any worker took it.
        case cancelled
        /// The worker could not record the room (`reason` says why).
        case failed
    }

    public var id: Int
    public var room: String
    public var composite: Bool
    public var state: State
    public var requestedBy: String
    public var requested: Date
    public var stopRequested: Bool
    /// The worker holding the job, or the last one that held it.
    public var worker: String?
    /// The fencing token, raised by every claim: the holder's writes carry it and count only while it is current.
    /// It is also the part the holder records (part 2 after a takeover).
    public var part: Int
    public var leaseUntil: Date?
    /// Every part's recordings (file names in the worker's folder), as the workers reported them.
    public var files: [String]
    /// The reports of the recordings finalized by a worker that finished its part (a part cut off by a dead
    /// worker has only the provisional report beside its file, until `repair`).
    public var reports: [RecordingReport]
    public var ended: Date?
    public var reason: String?

    /// What the job is doing, in words (why it waits, who records it): the API's `message` and `recording-job`'s.
    public func summary(pool: RecordingWorkerPool?) -> String {
        switch state {
        case .waiting: "waiting for a worker: " + (pool?.waitingReason ?? "none has taken it yet")
        case .recording where stopRequested: "stopping: worker \(worker ?? "?") is finalizing the files"
        case .recording: "recording by worker \(worker ?? "?")" + (part > 1 ? ", part \(part)" : "")
        case .done: "finished: \(files.count) file(s)" + (reason.map { "; \($0)" } ?? "")
        case .cancelled: "cancelled before a worker took it"
        case .failed: "failed: \(reason ?? "no reason given")"
        }
    }
}

/// The workers alive now (a heartbeat within `RecordingJobQueue.workerTimeout`) and their room for more.
public struct RecordingWorkerPool: Sendable, Codable, Equatable {
    public var workers: Int
    public var slots: Int
    public var busy: Int
    /// Jobs no worker has taken yet.
    public var waiting: Int

    public var isFull: Bool { busy >= slots }

    /// Why a waiting job waits, in words a user can act on.
    public var waitingReason: String {
        if workers == 0 {
            "no recording worker is running: start one with `vcall-gateway worker --database … --server … --record DIR`"
        } else if isFull {
            "every recording worker is busy (\(busy) of \(slots) slot(s) on \(workers) worker(s)): the recording starts when one is free"
        } else {
            "\(slots - busy) free slot(s) on \(workers) worker(s): one takes it within a second"
        }
    }
}

/// Recording jobs in PostgreSQL: the server files requests and stop requests, workers (`vcall-gateway worker`)
/// claim jobs with `FOR UPDATE SKIP LOCKED`, hold them by a lease they renew, and complete them.
///
/// Leases are measured on the database's clock, so workers' clocks need not agree. Every claim raises the
/// job's fence: a worker's renewal and completion name the fence it claimed with and change nothing once
/// another worker has taken over (a worker that was paused past its lease cannot overwrite its successor's
/// state).
public struct RecordingJobQueue: Sendable {
    let database: any SQLDatabase
    /// A worker whose heartbeat is older than this no longer counts in the pool.
    public static let workerTimeout: Duration = .seconds(10)
    /// The database's clock in milliseconds.
    static let now = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"

    public init(database: any SQLDatabase) throws {
        guard database.dialect == .postgres else {
            throw DatabaseError("recording workers need PostgreSQL (vcall-server --database postgres://…); with SQLite, record with a gateway in the room (vcall-gateway --room ROOM --record DIR)")
        }
        self.database = database
    }

    /// Opens the PostgreSQL database at `url` (migrating it like a server would) for a worker.
    public static func open(url: String, logger: Logger) async throws -> (RecordingJobQueue, any SQLDatabase) {
        let database = try await DatabaseLocation.postgres(PostgresURL(parsing: url)).open(logger: logger)
        return (try RecordingJobQueue(database: database), database)
    }

    // MARK: Asking

    /// Files a job for `room`, or returns the room's job that is already waiting or recording (`created` false).
    public func request(room: String, composite: Bool, by requester: String) async throws -> (job: RecordingJob, created: Bool) {
        let inserted = try await query("""
            INSERT INTO recording_jobs (room, composite, state, requested_by, requested_ms)
            VALUES (?, ?, 'waiting', ?, \(Self.now))
            ON CONFLICT (room) WHERE state IN ('waiting', 'recording') DO NOTHING
            RETURNING *
            """, [.text(room), .integer(composite ? 1 : 0), .text(requester)])
        if let row = inserted.first { return (try Self.job(row), true) }
        // Taken by another request a moment ago, and possibly finished since: look again.
        if let existing = try await activeJob(room: room) { return (existing, false) }
        return try await request(room: room, composite: composite, by: requester)
    }

    /// Asks the room's job to stop: a waiting job is cancelled at once, a recording one is finalized by its
    /// worker at its next renewal. Nil when the room has no job waiting or recording.
    public func stop(room: String) async throws -> RecordingJob? {
        try await query("""
            UPDATE recording_jobs SET stop_requested = 1,
                state = CASE WHEN state = 'waiting' THEN 'cancelled' ELSE state END,
                ended_ms = CASE WHEN state = 'waiting' THEN \(Self.now) ELSE ended_ms END
            WHERE room = ? AND state IN ('waiting', 'recording')
            RETURNING *
            """, [.text(room)]).first.map(Self.job)
    }

    /// The room's job that is waiting or recording.
    public func activeJob(room: String) async throws -> RecordingJob? {
        try await query("SELECT * FROM recording_jobs WHERE room = ? AND state IN ('waiting', 'recording')", [.text(room)])
            .first.map(Self.job)
    }

    /// The room's newest job, whatever its state.
    public func latestJob(room: String) async throws -> RecordingJob? {
        try await query("SELECT * FROM recording_jobs WHERE room = ? ORDER BY id DESC LIMIT 1", [.text(room)])
            .first.map(Self.job)
    }

    public func job(id: Int) async throws -> RecordingJob? {
        try await query("SELECT * FROM recording_jobs WHERE id = ?", [.integer(id)]).first.map(Self.job)
    }

    /// The workers alive now, their slots, and the jobs that wait.
    public func pool() async throws -> RecordingWorkerPool {
        let cutoff = Int(Self.workerTimeout.components.seconds) * 1000
        let workers = try await query("""
            SELECT COUNT(*) AS workers, COALESCE(SUM(slots), 0) AS slots, COALESCE(SUM(busy), 0) AS busy
            FROM recording_workers WHERE heartbeat_ms > \(Self.now) - ?
            """, [.integer(cutoff)]).first
        let waiting = try await query("SELECT COUNT(*) AS waiting FROM recording_jobs WHERE state = 'waiting'").first
        return RecordingWorkerPool(
            workers: workers?["workers"]?.integer ?? 0, slots: workers?["slots"]?.integer ?? 0,
            busy: workers?["busy"]?.integer ?? 0, waiting: waiting?["waiting"]?.integer ?? 0
        )
    }

    // MARK: Working

    /// Says that `worker` is alive with `busy` of its `slots` taken; forgets workers silent for a minute.
    public func heartbeat(worker: String, slots: Int, busy: Int) async throws {
        try await query("""
            INSERT INTO recording_workers (worker, slots, busy, heartbeat_ms) VALUES (?, ?, ?, \(Self.now))
            ON CONFLICT (worker) DO UPDATE SET slots = excluded.slots, busy = excluded.busy, heartbeat_ms = excluded.heartbeat_ms
            """, [.text(worker), .integer(slots), .integer(busy)])
        try await query("DELETE FROM recording_workers WHERE heartbeat_ms < \(Self.now) - 60000")
    }

    /// The worker stops: the pool no longer counts its slots.
    public func leave(worker: String) async throws {
        try await query("DELETE FROM recording_workers WHERE worker = ?", [.text(worker)])
    }

    /// Takes the oldest job that waits, or whose worker let its lease run out, for `lease`; nil when there is none.
    /// Jobs that were asked to stop and whose worker vanished are closed on the way.
    public func claim(worker: String, lease: Duration) async throws -> RecordingJob? {
        try await query("""
            UPDATE recording_jobs SET state = 'done', ended_ms = \(Self.now),
                reason = 'its worker stopped renewing the lease after the stop was asked: its last part may need vcall-gateway repair'
            WHERE state = 'recording' AND stop_requested = 1 AND lease_until_ms < \(Self.now)
            """)
        return try await query("""
            UPDATE recording_jobs SET state = 'recording', worker = ?, fence = fence + 1, lease_until_ms = \(Self.now) + ?
            WHERE id = (
                SELECT id FROM recording_jobs
                WHERE stop_requested = 0 AND (state = 'waiting' OR (state = 'recording' AND lease_until_ms < \(Self.now)))
                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING *
            """, [.text(worker), .integer(Self.milliseconds(lease))]).first.map(Self.job)
    }

    /// What a renewal found.
    public enum Renewal: Sendable, Equatable {
        /// The lease runs for another `lease`; keep recording.
        case renewed
        /// The lease is renewed, and someone asked the recording to stop.
        case stopRequested
        /// Another worker holds the job now (this one's lease ran out): stop, and write nothing more to the job.
        case lost
    }

    /// Extends the lease of the job claimed with `part` and records the files written so far.
    public func renew(job: Int, part: Int, lease: Duration, files: [String]) async throws -> Renewal {
        let rows = try await query("""
            UPDATE recording_jobs SET lease_until_ms = \(Self.now) + ?, files = ?
            WHERE id = ? AND fence = ? AND state = 'recording'
            RETURNING stop_requested
            """, [.integer(Self.milliseconds(lease)), .text(Self.encode(files)), .integer(job), .integer(part)])
        guard let row = rows.first else { return .lost }
        return row["stop_requested"]?.integer == 1 ? .stopRequested : .renewed
    }

    /// Completes the job claimed with `part`: `done` (or `failed`, with a reason), its files and the reports of every
    /// finished part. False when another worker holds it now, in which case nothing was written.
    @discardableResult
    public func finish(
        job: Int, part: Int, state: RecordingJob.State, files: [String], reports: [RecordingReport] = [], reason: String? = nil
    ) async throws -> Bool {
        let rows = try await query("""
            UPDATE recording_jobs SET state = ?, files = ?, reports = ?, reason = ?, ended_ms = \(Self.now), lease_until_ms = NULL
            WHERE id = ? AND fence = ? AND state = 'recording'
            RETURNING id
            """, [.text(state.rawValue), .text(Self.encode(files)), .text(Self.encode(reports)), reason.map(SQLValue.text) ?? .null,
                  .integer(job), .integer(part)])
        return !rows.isEmpty
    }

    /// Hands the job claimed with `part` back to the queue (its worker is shutting down): the next claim records
    /// the next part. A job asked to stop meanwhile is done instead.
    public func release(job: Int, part: Int, files: [String], reports: [RecordingReport] = []) async throws {
        try await query("""
            UPDATE recording_jobs SET state = CASE WHEN stop_requested = 1 THEN 'done' ELSE 'waiting' END,
                ended_ms = CASE WHEN stop_requested = 1 THEN \(Self.now) ELSE NULL END, lease_until_ms = NULL, files = ?, reports = ?
            WHERE id = ? AND fence = ? AND state = 'recording'
            """, [.text(Self.encode(files)), .text(Self.encode(reports)), .integer(job), .integer(part)])
    }

    /// A query with a deadline: postgres-nio's pool waits for a connection as long as the database is away.
    @discardableResult
    private func query(_ sql: String, _ binds: [SQLValue] = []) async throws -> [SQLRow] {
        let database = self.database
        return try await withDeadline(.seconds(5), what: "a recording jobs query") { try await database.query(sql, binds) }
    }

    // MARK: Rows

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }

    static func encode(_ values: [some Encodable]) -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        return String(decoding: (try? encoder.encode(values)) ?? Data("[]".utf8), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ value: SQLValue?, as type: [T].Type) -> [T] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return value?.string.flatMap { try? decoder.decode(type, from: Data($0.utf8)) } ?? []
    }

    static func date(_ value: SQLValue?) -> Date? {
        value?.integer.map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }

    static func job(_ row: SQLRow) throws -> RecordingJob {
        guard let id = row["id"]?.integer, let room = row["room"]?.string,
              let state = row["state"]?.string.flatMap(RecordingJob.State.init(rawValue:)),
              let requested = date(row["requested_ms"])
        else { throw DatabaseError("a recording_jobs row is not in the shape this vcall knows: \(row.values)") }
        return RecordingJob(
            id: id, room: room, composite: row["composite"]?.integer == 1, state: state,
            requestedBy: row["requested_by"]?.string ?? "", requested: requested,
            stopRequested: row["stop_requested"]?.integer == 1, worker: row["worker"]?.string,
            part: row["fence"]?.integer ?? 0, leaseUntil: date(row["lease_until_ms"]),
            files: decode(row["files"], as: [String].self), reports: decode(row["reports"], as: [RecordingReport].self),
            ended: date(row["ended_ms"]), reason: row["reason"]?.string
        )
    }
}
