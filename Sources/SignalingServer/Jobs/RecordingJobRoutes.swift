import Foundation
import HTTPTypes
import Hummingbird
import Logging
import SignalingProtocol

/// `GET|POST|DELETE /api/rooms/ROOM/recording`: a room's recording as a job for the worker pool
/// (`vcall-gateway worker`), for a logged-in account or an API token.
///
/// Without PostgreSQL there is no pool: GET says `enabled: false` and POST answers 409 with what to do instead.
struct RecordingJobRoutes: Sendable {
    let queue: RecordingJobQueue?
    let accounts: AccountStore
    let logger: Logger

    struct RequestBody: Decodable {
        var composite: Bool?
    }

    struct JobResponse: Encodable {
        /// The server has a worker pool (PostgreSQL).
        var enabled: Bool
        var job: RecordingJob?
        var pool: RecordingWorkerPool?
        /// What the job is doing, in words (why it waits, who records it).
        var message: String?
    }

    func add(to router: Router<BasicRequestContext>) {
        let route = router.group("api/rooms/:room/recording")

        route.get { request, context -> Response in
            let (room, _) = try await authorize(request, context)
            guard let queue else { return jsonResponse(JobResponse(enabled: false, message: Self.disabled)) }
            let job = try await databaseCall { try await queue.latestJob(room: room) }
            let pool = try await databaseCall { try await queue.pool() }
            return jsonResponse(JobResponse(enabled: true, job: job, pool: pool, message: job?.summary(pool: pool)))
        }

        route.post { request, context -> Response in
            let (room, requester) = try await authorize(request, context)
            guard let queue else { throw APIError(.conflict, "no-workers", Self.disabled) }
            // An empty body asks for the default: every participant, and the meeting as one file.
            let bytes = try await request.body.collect(upTo: 16 * 1024)
            guard let body = bytes.readableBytes == 0 ? RequestBody() : try? JSONDecoder().decode(RequestBody.self, from: Data(bytes.readableBytesView)) else {
                throw APIError.invalidRequest("send no body, or JSON like {\"composite\":false} (composite: also record the meeting as one file; default true)")
            }
            let (job, created) = try await databaseCall {
                try await queue.request(room: room, composite: body.composite ?? true, by: requester)
            }
            let pool = try await databaseCall { try await queue.pool() }
            if created { logger.info("recording job \(job.id) for room \(room), asked by \(requester)") }
            return jsonResponse(JobResponse(enabled: true, job: job, pool: pool, message: job.summary(pool: pool)),
                                status: created ? .accepted : .ok)
        }

        route.delete { request, context -> Response in
            let (room, requester) = try await authorize(request, context)
            guard let queue else { throw APIError(.conflict, "no-workers", Self.disabled) }
            guard let job = try await databaseCall({ try await queue.stop(room: room) }) else {
                throw APIError(.notFound, "no-recording", "room \(room) has no recording waiting or running: nothing to stop")
            }
            logger.info("recording job \(job.id) for room \(room): stop asked by \(requester)")
            return jsonResponse(JobResponse(enabled: true, job: job, message: job.summary(pool: nil)))
        }
    }

    /// The room from the path and the name of whoever asks (an account, or a command-line token's name).
    private func authorize(_ request: Request, _ context: BasicRequestContext) async throws -> (room: String, requester: String) {
        guard let identity = await Authentication.identity(of: request, accounts: accounts).identity else {
            throw APIError(.unauthorized, "unauthorized", "log in (or send Authorization: Bearer TOKEN) to record a room")
        }
        guard let room = context.parameters.get("room"), SignalingLimits.isValidRoomID(room) else {
            throw APIError.invalidRequest("a room id is 1–\(SignalingLimits.maxRoomIDLength) characters of A-Z, a-z, 0-9, _ and -")
        }
        return (room, identity.username ?? identity.name)
    }

    /// A query that fails because the database is away answers 503, not 500.
    private func databaseCall<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            logger.warning("recording jobs: \(PostgresDatabase.describe(error))")
            throw APIError(.serviceUnavailable, "unavailable", "the database does not answer, so recordings cannot be asked for or stopped now: try again shortly")
        }
    }

    static let disabled = "this server has no recording workers: they share its PostgreSQL database (vcall-server --database postgres://…); with SQLite, record with a gateway in the room (vcall-gateway --room ROOM --record DIR)"
}
