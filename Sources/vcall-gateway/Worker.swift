import ArgumentParser
import Foundation
import Gateway
import Logging
import Recordings
import SignalingServer
import WebRTCTypes

/// `vcall-gateway worker`: one of a pool of recording workers on the servers' PostgreSQL database.
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Record the rooms people ask to record: take recording jobs from the servers' PostgreSQL database.",
        discussion: """
            Recording is asked for through vcall-server (the room page's record button, or POST \
            /api/rooms/ROOM/recording); each request is a job in the database. A worker takes jobs up to \
            --slots at a time, joins each room as a gateway that sends nothing, records every participant (and \
            the meeting as one file when asked) into --record DIR, and holds the job's lease while it records. \
            If a worker dies, another takes the job when the lease runs out and records part 2 in new files. \
            SIGINT or SIGTERM finalizes the files and hands the jobs back to the queue.
            """
    )

    @Option(help: "The servers' WebSocket, e.g. wss://calls.example.org/ws.") var server: String
    @Option(help: "The servers' PostgreSQL database, postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (default $VCALL_DATABASE).")
    var database: String?
    @Option(help: "Folder the recordings go to (the one vcall-server --recordings lists, when it is shared).") var record: String
    @Option(help: "How many rooms this worker records at once.") var slots = 1
    @Option(help: "An API token (vcall-server token create), for servers that require login.") var token: String?
    @Option(help: "The name people see in the room.") var name = "Recorder"
    @Option(name: .customLong("worker-id"), help: "This worker's name in the job queue (default HOST-RANDOM).") var workerID: String?
    @Option(help: "Seconds a job's lease lasts; renewed every fifth of it. A dead worker's job is taken over after at most this long.")
    var lease: Double = 10
    @Option(name: .customLong("empty-room-grace"), help: "Seconds a room may stay empty before its recording ends.")
    var emptyRoomGrace: Double = 15
    @OptionGroup var compositeFlags: CompositeFlags
    @OptionGroup var network: NetworkOptions
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: Logger.Level = .info

    private var databaseURL: String? { database ?? ProcessInfo.processInfo.environment["VCALL_DATABASE"] }

    func validate() throws {
        try NetworkOptions.checkServer(server)
        guard let databaseURL else {
            throw ValidationError("--database postgres://… (or VCALL_DATABASE) is required: the job queue lives in the servers' database")
        }
        do {
            _ = try PostgresURL(parsing: databaseURL)
        } catch {
            throw ValidationError("--database: \(error)")
        }
        guard (1...64).contains(slots) else { throw ValidationError("--slots must be 1…64") }
        guard (2...600).contains(lease) else { throw ValidationError("--lease must be 2…600 seconds") }
        guard emptyRoomGrace >= 0 else { throw ValidationError("--empty-room-grace must be 0 or more seconds") }
    }

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in ConsoleLogHandler(label: label, logLevel: level) }
        let logger = Logger(label: "vcall.worker")
        let folder = URL(fileURLWithPath: record, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw ValidationError("--record \(record): the folder cannot be made (\(error.localizedDescription))")
        }
        let (queue, database): (RecordingJobQueue, any SQLDatabase)
        do {
            (queue, database) = try await RecordingJobQueue.open(url: databaseURL!, logger: logger)
        } catch {
            throw ValidationError("\(error)")
        }

        var call = CallConfiguration(room: "-", serverURL: URL(string: server)!, name: name, token: token)
        network.apply(to: &call)
        var template = GatewayOptions(call: call)
        template.recordDirectory = folder
        compositeFlags.apply(to: &template.compositeOptions, latency: network.latency)

        let id = workerID ?? "\(ProcessInfo.processInfo.hostName)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        var options = RecordingWorker.Options(id: id, session: template)
        options.slots = slots
        options.lease = .milliseconds(Int(lease * 1000))
        options.emptyRoomGrace = .milliseconds(Int(emptyRoomGrace * 1000))
        let worker = RecordingWorker(options: options, source: PostgresJobSource(queue: queue), logger: logger)

        let quit = QuitSignal()
        quit.installSignalHandlers()
        Console.shared.line("worker \(id): recording up to \(slots) room(s) into \(folder.path), jobs from \(databaseURL.map { (try? PostgresURL(parsing: $0))?.description ?? $0 } ?? "")")
        let running = Task { await worker.run() }
        await quit.wait()
        Console.shared.line("stopping: finalizing recordings and handing their jobs back (at most 20 s)…")
        ExitDeadline.start(.seconds(30))
        _ = await finishes(within: .seconds(20)) { await worker.shutdown() }
        running.cancel()
        await database.close()
        Foundation.exit(0)
    }
}

/// The worker's view of the servers' job queue.
struct PostgresJobSource: RecordingJobSource {
    let queue: RecordingJobQueue

    func heartbeat(worker: String, slots: Int, busy: Int) async throws {
        try await queue.heartbeat(worker: worker, slots: slots, busy: busy)
    }

    func leave(worker: String) async throws {
        try await queue.leave(worker: worker)
    }

    func claim(worker: String, lease: Duration) async throws -> ClaimedRecordingJob? {
        try await queue.claim(worker: worker, lease: lease).map {
            ClaimedRecordingJob(id: $0.id, room: $0.room, composite: $0.composite, part: $0.part, files: $0.files, reports: $0.reports)
        }
    }

    func renew(_ job: ClaimedRecordingJob, lease: Duration, files: [String]) async throws -> LeaseRenewal {
        switch try await queue.renew(job: job.id, part: job.part, lease: lease, files: files) {
        case .renewed: .renewed
        case .stopRequested: .stopRequested
        case .lost: .lost
        }
    }

    func finish(_ job: ClaimedRecordingJob, failure: String?, files: [String], reports: [RecordingReport]) async throws -> Bool {
        try await queue.finish(job: job.id, part: job.part, state: failure == nil ? .done : .failed, files: files, reports: reports,
                               reason: failure)
    }

    func release(_ job: ClaimedRecordingJob, files: [String], reports: [RecordingReport]) async throws {
        try await queue.release(job: job.id, part: job.part, files: files, reports: reports)
    }
}
