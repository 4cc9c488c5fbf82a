import Foundation
import Logging
import Recordings

/// A recording job as a worker holds it: the room, what to record, and the part it records (the job's
/// fencing token: every claim raises it).
public struct ClaimedRecordingJob: Sendable, Equatable {
    public var id: Int
    public var room: String
    public var composite: Bool
    public var part: Int
    /// The files earlier parts wrote.
    public var files: [String]
    /// The reports of the earlier parts' finalized recordings.
    public var reports: [RecordingReport]

    public init(id: Int, room: String, composite: Bool, part: Int, files: [String], reports: [RecordingReport] = []) {
        self.id = id
        self.room = room
        self.composite = composite
        self.part = part
        self.files = files
        self.reports = reports
    }
}

/// What renewing a lease found.
public enum LeaseRenewal: Sendable, Equatable {
    case renewed
    /// Renewed, and someone asked the recording to stop.
    case stopRequested
    /// Another worker took the job over: stop recording and write nothing more to the job.
    case lost
}

/// Where a worker finds its jobs (vcall-gateway implements it on the server's PostgreSQL job queue). Every call
/// that changes a job names the part it was claimed with, and changes nothing once another worker holds it.
public protocol RecordingJobSource: Sendable {
    func heartbeat(worker: String, slots: Int, busy: Int) async throws
    func leave(worker: String) async throws
    func claim(worker: String, lease: Duration) async throws -> ClaimedRecordingJob?
    func renew(_ job: ClaimedRecordingJob, lease: Duration, files: [String]) async throws -> LeaseRenewal
    /// Completes the job (done, or failed with a reason) with every part's files and the finished parts' reports.
    /// False when another worker holds it.
    func finish(_ job: ClaimedRecordingJob, failure: String?, files: [String], reports: [RecordingReport]) async throws -> Bool
    /// Hands the job back to the queue (this worker is shutting down): the next worker records the next part.
    func release(_ job: ClaimedRecordingJob, files: [String], reports: [RecordingReport]) async throws
}

/// `vcall-gateway worker`: takes recording jobs from the queue, up to `slots` at once, and records each room as
/// a gateway that sends nothing (every participant, and the composite when the job asks), holding the job's
/// lease while it records.
///
/// A job ends when someone asks it to stop (the API, or the room page's button, which reaches this gateway
/// as `recording-request`), when the room stays empty for `emptyRoomGrace`, or when the lease is lost to
/// another worker (this one was paused or cut off past the lease). A worker killed outright leaves its lease
/// to run out; the next claim records part 2 in new files.
public actor RecordingWorker {
    public struct Options: Sendable {
        public var id: String
        public var slots = 1
        /// How long a claim or renewal holds the job; renewed every fifth of it.
        public var lease: Duration = .seconds(10)
        /// How often an idle slot looks for a job.
        public var pollInterval: Duration = .milliseconds(500)
        /// How long the room may stay empty before the recording ends.
        public var emptyRoomGrace: Duration = .seconds(15)
        /// How long finalizing a job's files may take when it ends.
        public var finalizeTimeout: Duration = .seconds(10)
        /// Every job's session: the server, the folder, the network; the worker sets the room and what to record.
        public var session: GatewayOptions

        public init(id: String, session: GatewayOptions) {
            self.id = id
            self.session = session
        }
    }

    /// How a job's recording ended.
    enum Ending: Equatable {
        case stopRequested
        case stoppedInRoom
        case roomEmpty
        case lost
        case failed(String)
        case shutdown
    }

    public nonisolated let options: Options
    private let source: any RecordingJobSource
    private let logger: Logger
    private var jobs: [Int: Task<Void, Never>] = [:]
    private var shuttingDown = false

    public init(options: Options, source: any RecordingJobSource, logger: Logger) {
        self.options = options
        self.source = source
        self.logger = logger
    }

    /// Heartbeats and claims until the task is cancelled or `shutdown()` is called.
    public func run() async {
        logger.notice("worker \(options.id): \(options.slots) slot(s), lease \(options.lease)")
        var lastHeartbeat: ContinuousClock.Instant?
        var lastProblem: String?
        while !Task.isCancelled, !shuttingDown {
            do {
                let now = ContinuousClock.now
                if lastHeartbeat.map({ now - $0 >= .seconds(2) }) ?? true {
                    try await source.heartbeat(worker: options.id, slots: options.slots, busy: jobs.count)
                    lastHeartbeat = now
                }
                while jobs.count < options.slots, !shuttingDown, let job = try await source.claim(worker: options.id, lease: options.lease) {
                    start(job)
                    try await source.heartbeat(worker: options.id, slots: options.slots, busy: jobs.count)
                }
                if lastProblem != nil {
                    logger.notice("the job queue answers again")
                    lastProblem = nil
                }
            } catch {
                let text = "\(error)"
                if text != lastProblem { logger.error("the job queue: \(text); retrying") }
                lastProblem = text
            }
            try? await Task.sleep(for: options.pollInterval)
        }
    }

    /// Finalizes every recording, hands the jobs back to the queue for other workers, and leaves the pool.
    public func shutdown() async {
        shuttingDown = true
        let running = Array(jobs.values)
        for task in running { task.cancel() }
        for task in running { await task.value }
        try? await source.leave(worker: options.id)
    }

    private func start(_ job: ClaimedRecordingJob) {
        logger.notice("job \(job.id): recording room \(job.room)\(job.composite ? " with the composite" : "")\(job.part > 1 ? ", part \(job.part) (taken over)" : "")")
        jobs[job.id] = Task { [weak self] in
            await self?.record(job)
            await self?.ended(job.id)
        }
    }

    private func ended(_ id: Int) {
        jobs[id] = nil
    }

    /// Records one job's room until it ends, then completes the job (unless another worker holds it now).
    private func record(_ job: ClaimedRecordingJob) async {
        var gatewayOptions = options.session
        gatewayOptions.call.room = job.room
        gatewayOptions.video = "none"
        gatewayOptions.audio = "none"
        gatewayOptions.recordFromStart = true
        gatewayOptions.composite = job.composite
        let session: GatewaySession
        do {
            session = try GatewaySession(options: gatewayOptions, logger: logger)
        } catch {
            await complete(job, .failed("the recording gateway did not start: \(error)"), files: job.files, reports: job.reports)
            return
        }
        let running = Task { await session.run() }
        let ending = await hold(job, session: session)
        logger.notice("job \(job.id): \(Self.describe(ending)); finalizing")
        // Not cancelled with the job's task (a shutdown cancels it): the files and the job's state must still be written.
        await Task {
            _ = await finishes(within: options.finalizeTimeout) { await session.stop() }
            running.cancel()
            let finished = await session.finishedRecordings()
            await complete(job, ending, files: Self.files(of: job, recording: (await session.status()).recordings, finished: finished,
                                                          in: session.options.recordDirectory),
                           reports: job.reports + finished)
        }.value
    }

    /// The earlier parts' files and this part's that are on disk (a recorder that got no media removes its file).
    static func files(of job: ClaimedRecordingJob, recording: [RecordingStatus], finished: [RecordingReport], in folder: URL?) -> [String] {
        var files = job.files
        let own = recording.map(\.file.lastPathComponent) + finished.map(\.file)
        add(own.filter { name in folder.map { FileManager.default.fileExists(atPath: $0.appendingPathComponent(name).path) } ?? false },
            to: &files)
        return files
    }

    /// Renews the lease every fifth of it, watching the session, until the recording should end.
    private func hold(_ job: ClaimedRecordingJob, session: GatewaySession) async -> Ending {
        let interval = options.lease / 5
        var wasRecording = false
        var emptySince: ContinuousClock.Instant?
        var lastRenewal = ContinuousClock.now
        while true {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return .shutdown
            }
            let status = await session.status()
            if let failure = await session.signalingFailure { return .failed(failure) }
            let files = Self.files(of: job, recording: status.recordings, finished: await session.finishedRecordings(),
                                   in: session.options.recordDirectory)
            do {
                switch try await source.renew(job, lease: options.lease, files: files) {
                case .lost: return .lost
                case .stopRequested: return .stopRequested
                case .renewed: lastRenewal = .now
                }
            } catch {
                // The database may be away for everyone; recording goes on, and the lease tells whether it still may.
                logger.warning("job \(job.id): the lease could not be renewed (\(error))")
                if ContinuousClock.now - lastRenewal > options.lease {
                    logger.error("job \(job.id): no renewal for longer than the lease: another worker may record part \(job.part + 1)")
                }
            }
            // Someone pressed Stop in the room (the request came to this gateway).
            if wasRecording, !status.recording { return .stoppedInRoom }
            wasRecording = status.recording
            if status.call.inRoom, status.call.members.isEmpty {
                let since = emptySince ?? .now
                emptySince = since
                if ContinuousClock.now - since >= options.emptyRoomGrace { return .roomEmpty }
            } else {
                emptySince = nil
            }
        }
    }

    private func complete(_ job: ClaimedRecordingJob, _ ending: Ending, files: [String], reports: [RecordingReport]) async {
        do {
            switch ending {
            case .lost:
                logger.warning("job \(job.id): another worker holds it now; its files here (\(files.count)) are kept, the job is left to it")
            case .shutdown:
                try await source.release(job, files: files, reports: reports)
                logger.notice("job \(job.id): handed back to the queue for another worker")
            case .failed(let reason):
                _ = try await source.finish(job, failure: reason, files: files, reports: reports)
            case .stopRequested, .stoppedInRoom, .roomEmpty:
                if try await source.finish(job, failure: nil, files: files, reports: reports) {
                    logger.notice("job \(job.id): done, \(files.count) file(s)")
                } else {
                    logger.warning("job \(job.id): finished here, but another worker held it by then")
                }
            }
        } catch {
            logger.error("job \(job.id): its end could not be written (\(error)); its lease runs out and the job is taken again")
        }
    }

    static func add(_ new: [String], to files: inout [String]) {
        for file in new where !files.contains(file) { files.append(file) }
    }

    static func describe(_ ending: Ending) -> String {
        switch ending {
        case .stopRequested: "stop requested"
        case .stoppedInRoom: "stopped from the room"
        case .roomEmpty: "the room is empty"
        case .lost: "lease lost to another worker"
        case .failed(let reason): "failed: \(reason)"
        case .shutdown: "the worker is shutting down"
        }
    }
}

/// Runs `work`, but returns once `timeout` has passed even if it has not finished: `true` if it did.
/// (A task group racing the work against a timer would wait for the work anyway, as it awaits all
/// its children before returning.)
public func finishes(within timeout: Duration, _ work: @escaping @Sendable () async -> Void) async -> Bool {
    let (outcomes, sink) = AsyncStream.makeStream(of: Bool.self)
    Task {
        await work()
        sink.yield(true)
    }
    let timer = Task {
        try? await Task.sleep(for: timeout)
        sink.yield(false)
    }
    var iterator = outcomes.makeAsyncIterator()
    let finished = await iterator.next() ?? false
    timer.cancel()
    return finished
}
