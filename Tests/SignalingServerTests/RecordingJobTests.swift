import Foundation
import HTTPTypes
import Logging
import Recordings
@testable import SignalingServer
import Testing

/// The recording job queue on a real PostgreSQL database: claims that skip each other's rows, leases on the
/// database's clock, and the fencing token that keeps a worker who lost its lease from writing.
@Suite(
    "Recording jobs", .serialized, .timeLimit(.minutes(2)),
    .enabled(if: TestDatabase.postgres != nil, "needs VCALL_TEST_POSTGRES (scripts/test starts a throwaway cluster)")
)
struct RecordingJobTests {
    /// A queue on a fresh database of its own.
    static func withQueue(_ body: (RecordingJobQueue) async throws -> Void) async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let database = try await TestDatabase.location(forDataDirectory: folder.path).open(logger: Logger(label: "vcall-test"))
        do {
            try await body(try RecordingJobQueue(database: database))
        } catch {
            await database.close()
            throw error
        }
        await database.close()
    }

    @Test("a request waits, says why, is claimed once, renewed, asked to stop, and finished with its files")
    func lifecycle() async throws {
        try await Self.withQueue { queue in
            let (job, created) = try await queue.request(room: "standup", composite: true, by: "ada")
            #expect(created)
            #expect(job.state == .waiting && job.composite && job.requestedBy == "ada" && job.part == 0)
            let again = try await queue.request(room: "standup", composite: false, by: "bob")
            #expect(!again.created && again.job.id == job.id)

            var pool = try await queue.pool()
            #expect(pool == RecordingWorkerPool(workers: 0, slots: 0, busy: 0, waiting: 1))
            #expect(pool.waitingReason.contains("no recording worker is running"))
            try await queue.heartbeat(worker: "w1", slots: 1, busy: 1)
            pool = try await queue.pool()
            #expect(pool.isFull && pool.waitingReason.contains("every recording worker is busy (1 of 1"))
            try await queue.heartbeat(worker: "w1", slots: 1, busy: 0)

            let claimed = try #require(try await queue.claim(worker: "w1", lease: .seconds(10)))
            #expect(claimed.id == job.id && claimed.state == .recording && claimed.worker == "w1" && claimed.part == 1)
            #expect(try await queue.claim(worker: "w2", lease: .seconds(10)) == nil)
            #expect(try await queue.renew(job: job.id, part: 1, lease: .seconds(10), files: ["a.webm"]) == .renewed)

            let stopping = try #require(try await queue.stop(room: "standup"))
            #expect(stopping.state == .recording && stopping.stopRequested)
            #expect(try await queue.renew(job: job.id, part: 1, lease: .seconds(10), files: ["a.webm", "b.webm"]) == .stopRequested)
            let report = RecordingReport(participantID: "p1", displayName: "Ada", room: "standup", file: "a.webm",
                                         start: Date(timeIntervalSince1970: 1_800_000_000), end: Date(timeIntervalSince1970: 1_800_000_060),
                                         duration: 60, videoCodec: "VP8", audioCodec: "OPUS", videoFrames: 1800, keyframes: 20,
                                         audioPackets: 3000, videoGaps: [], bytes: 4_000_000, finalizedCleanly: true, error: nil,
                                         accounts: ["ada"])
            #expect(try await queue.finish(job: job.id, part: 1, state: .done, files: ["a.webm", "b.webm"], reports: [report]))
            let done = try #require(try await queue.latestJob(room: "standup"))
            #expect(done.state == .done && done.files == ["a.webm", "b.webm"] && done.ended != nil && done.leaseUntil == nil)
            #expect(done.reports == [report])
            #expect(try await queue.activeJob(room: "standup") == nil)
            // Done is final: a late finish changes nothing, and the room can be recorded again.
            #expect(!(try await queue.finish(job: job.id, part: 1, state: .failed, files: [])))
            #expect(try await queue.request(room: "standup", composite: true, by: "ada").job.id != job.id)
        }
    }

    @Test("workers claiming at once take every job exactly once (FOR UPDATE SKIP LOCKED)")
    func concurrentClaims() async throws {
        try await Self.withQueue { queue in
            for room in 0..<12 { _ = try await queue.request(room: "room\(room)", composite: false, by: "ada") }
            let claims = try await withThrowingTaskGroup(of: [Int].self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var taken: [Int] = []
                        while let job = try await queue.claim(worker: "w\(worker)", lease: .seconds(30)) { taken.append(job.id) }
                        return taken
                    }
                }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            #expect(claims.count == 12)
            #expect(Set(claims).count == 12)
        }
    }

    @Test("a lease that runs out passes the job to another worker as part 2; the first worker's writes are fenced off")
    func leaseAndFence() async throws {
        try await Self.withQueue { queue in
            let job = try await queue.request(room: "standup", composite: false, by: "ada").job
            let first = try #require(try await queue.claim(worker: "w1", lease: .milliseconds(300)))
            #expect(try await queue.renew(job: job.id, part: first.part, lease: .milliseconds(300), files: ["part1.webm"]) == .renewed)
            // Still held: nobody else may take it.
            #expect(try await queue.claim(worker: "w2", lease: .seconds(10)) == nil)
            try await Task.sleep(for: .milliseconds(500))

            let second = try #require(try await queue.claim(worker: "w2", lease: .seconds(10)))
            #expect(second.id == job.id && second.part == 2 && second.worker == "w2" && second.files == ["part1.webm"])
            // The first worker wakes up (it was paused, not dead): none of its writes count any more.
            #expect(try await queue.renew(job: job.id, part: first.part, lease: .seconds(10), files: []) == .lost)
            #expect(!(try await queue.finish(job: job.id, part: first.part, state: .failed, files: [], reason: "late")))
            try await queue.release(job: job.id, part: first.part, files: [])
            let held = try #require(try await queue.activeJob(room: "standup"))
            #expect(held.state == .recording && held.worker == "w2" && held.part == 2 && held.files == ["part1.webm"])

            #expect(try await queue.finish(job: job.id, part: 2, state: .done, files: ["part1.webm", "part2.webm"]))
            #expect(try await queue.latestJob(room: "standup")?.files == ["part1.webm", "part2.webm"])
        }
    }

    @Test("a waiting job is cancelled by a stop; a released job waits for the next worker; a stopped job whose worker vanished is closed")
    func cancelReleaseAndAbandon() async throws {
        try await Self.withQueue { queue in
            let waiting = try await queue.request(room: "a", composite: false, by: "ada").job
            #expect(try await queue.stop(room: "a")?.state == .cancelled)
            #expect(try await queue.stop(room: "a") == nil)
            #expect(try await queue.job(id: waiting.id)?.ended != nil)

            let released = try await queue.request(room: "b", composite: false, by: "ada").job
            let first = try #require(try await queue.claim(worker: "w1", lease: .seconds(10)))
            try await queue.release(job: released.id, part: first.part, files: ["b1.webm"])
            #expect(try await queue.job(id: released.id)?.state == .waiting)
            let next = try #require(try await queue.claim(worker: "w2", lease: .seconds(10)))
            #expect(next.id == released.id && next.part == 2 && next.files == ["b1.webm"])

            // Asked to stop, and its worker died before finishing: the next claim closes it rather than record again.
            _ = try await queue.request(room: "c", composite: false, by: "ada")
            let abandoned = try #require(try await queue.claim(worker: "w1", lease: .milliseconds(200)))
            _ = try await queue.stop(room: "c")
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await queue.claim(worker: "w2", lease: .seconds(10)) == nil)
            let closed = try #require(try await queue.job(id: abandoned.id))
            #expect(closed.state == .done && closed.reason?.contains("repair") == true)
        }
    }
}

extension ServerTests {
    @Suite("Recording a room through the API", .timeLimit(.minutes(1)))
    struct RecordingJobAPITests {
        @Test("POST, GET and DELETE /api/rooms/ROOM/recording: a job on PostgreSQL, a clear 409 on SQLite, 401 for guests")
        func recordingThroughTheAPI() async throws {
            try await TestServer.run { server in
                let guest = try await server.request(.post, "/api/rooms/standup/recording")
                #expect(guest.status == .unauthorized)
                let registered = try await server.request(.post, "/api/register", json: #"{"username":"ada","password":"correct horse"}"#)
                let cookie = try #require(registered.sessionCookie)
                let headers: HTTPFields = [.cookie: cookie]

                guard TestDatabase.postgres != nil else {
                    let state = try await server.request(.get, "/api/rooms/standup/recording", headers: headers)
                    #expect(state.status == .ok && state.json?["enabled"] as? Bool == false)
                    let refused = try await server.request(.post, "/api/rooms/standup/recording", headers: headers)
                    #expect(refused.status == .conflict)
                    #expect((refused.json?["error"] as? [String: Any])?["code"] as? String == "no-workers")
                    #expect(((refused.json?["error"] as? [String: Any])?["message"] as? String)?.contains("PostgreSQL") == true)
                    return
                }
                let asked = try await server.request(.post, "/api/rooms/standup/recording", headers: headers)
                #expect(asked.status == .accepted)
                let job = try #require(asked.json?["job"] as? [String: Any])
                #expect(job["state"] as? String == "waiting" && job["room"] as? String == "standup" && job["composite"] as? Bool == true)
                #expect((asked.json?["message"] as? String)?.contains("no recording worker is running") == true)
                let again = try await server.request(.post, "/api/rooms/standup/recording", json: #"{"composite":false}"#, headers: headers)
                #expect(again.status == .ok && (again.json?["job"] as? [String: Any])?["id"] as? Int == job["id"] as? Int)
                let bad = try await server.request(.post, "/api/rooms/standup/recording", json: #"{"composite":"yes"}"#, headers: headers)
                #expect(bad.status == .badRequest)
                let badRoom = try await server.request(.get, "/api/rooms/no%20such/recording", headers: headers)
                #expect(badRoom.status == .badRequest)

                let state = try await server.request(.get, "/api/rooms/standup/recording", headers: headers)
                #expect(state.json?["enabled"] as? Bool == true && (state.json?["pool"] as? [String: Any])?["waiting"] as? Int == 1)
                let stopped = try await server.request(.delete, "/api/rooms/standup/recording", headers: headers)
                #expect(stopped.status == .ok && (stopped.json?["job"] as? [String: Any])?["state"] as? String == "cancelled")
                let nothing = try await server.request(.delete, "/api/rooms/standup/recording", headers: headers)
                #expect(nothing.status == .notFound)
            }
        }

        @Test("recording-request without `to` asks the workers: recording-job answers, with errors for guests, outsiders and SQLite")
        func recordingThroughTheProtocol() async throws {
            try await TestServer.run { server in
                let registered = try await server.request(.post, "/api/register", json: #"{"username":"ada","password":"correct horse"}"#)
                let ada = try await server.connect(headers: [.cookie: try #require(registered.sessionCookie)])
                try await ada.send(.recordingRequest(to: nil, action: .start))
                #expect(try await ada.nextError().code == .notInRoom)
                let guest = try await server.connect()
                _ = try await guest.join("standup")
                try await guest.send(.recordingRequest(to: nil, action: .start))
                #expect(try await guest.nextError().code == .unauthorized)
                _ = try await ada.join("standup")

                try await ada.send(.recordingRequest(to: nil, action: .start))
                guard TestDatabase.postgres != nil else {
                    let refused = try await ada.nextError()
                    #expect(refused.code == .noRecorder && refused.message.contains("PostgreSQL"))
                    return
                }
                guard case .recordingJob(let room, let job, let state, let part, let message) = try await ada.next("recording-job") else {
                    Issue.record("no recording-job")
                    return
                }
                #expect(room == "standup" && state == "waiting" && part == 0 && message.contains("no recording worker is running"))
                try await ada.send(.recordingRequest(to: nil, action: .stop))
                #expect(try await ada.next("recording-job") == .recordingJob(roomId: "standup", job: job, state: "cancelled", part: 0,
                                                                              message: "cancelled before a worker took it"))
                try await ada.send(.recordingRequest(to: nil, action: .stop))
                #expect(try await ada.nextError().code == .noRecorder)
            }
        }
    }
}
