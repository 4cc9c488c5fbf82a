import Foundation
import SignalingProtocol
@testable import SignalingServer
import Testing
import WebRTCTypes

extension ServerTests {
    /// Two vcall-server nodes on one PostgreSQL database, each a real server on its own port: what one node's
    /// clients do reaches the other's through the outbox (`ClusterBus`).
    @Suite(
        "Two nodes on one database", .timeLimit(.minutes(2)),
        .enabled(if: TestDatabase.postgres != nil, "needs VCALL_TEST_POSTGRES (scripts/test starts a throwaway cluster)")
    )
    struct ClusterTests {
        /// Runs two nodes on one fresh database.
        static func twoNodes(
            _ configure: @escaping @Sendable (inout VCallServerConfiguration) -> Void = { _ in },
            _ body: @Sendable (TestServer, TestServer) async throws -> Void
        ) async throws {
            let folder = try TemporaryDirectory()
            defer { folder.remove() }
            try await TestServer.run(dataDirectory: folder.path, configure) { a in
                try await TestServer.run(dataDirectory: folder.path, configure) { b in
                    try await body(a, b)
                }
            }
        }

        /// The member ids of the one room a node lists at /api/rooms.
        static func members(on node: TestServer) async throws -> Set<String> {
            let rooms = try await node.request(.get, "/api/rooms").json
            let members = ((rooms?["rooms"] as? [[String: Any]])?.first?["members"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            return Set(members ?? [])
        }

        static func lists(_ id: String, inCall: Bool? = nil) -> ([OnlineUser]) -> Bool {
            { users in users.contains { $0.id == id && (inCall == nil || $0.inCall == inCall) } }
        }

        @Test("people on two nodes see each other online, meet in one room, and a 20 KB offer crosses intact both ways")
        func roomAcrossNodes() async throws {
            try await Self.twoNodes { a, b in
                let ada = try await a.connect(query: "?name=Ada")
                let bob = try await b.connect(query: "?name=Bob")
                _ = try await ada.onlineUsers(where: Self.lists(bob.id))
                _ = try await bob.onlineUsers(where: Self.lists(ada.id))

                _ = try await ada.join("standup")
                // Bob's node knows Ada is in a call before Bob joins, so his room-joined lists her.
                _ = try await bob.onlineUsers(where: Self.lists(ada.id, inCall: true))
                let joined = try await bob.join("standup")
                #expect(joined == .roomJoined(roomId: "standup", self: PeerInfo(id: bob.id, name: "Bob"), peers: [PeerInfo(id: ada.id, name: "Ada")], capacity: 8))
                #expect(try await ada.next("user-joined") == .userJoined(from: bob.id, name: "Bob", roomUsers: [ada.id, bob.id]))

                // Far above NOTIFY's 8,000-byte payload limit: the outbox row carries it.
                let big = sdp("big") + String(repeating: "a=x-filler:0123456789abcdef0123456789abcdef0123456789abcdef0123456789\r\n", count: 290)
                #expect(big.utf8.count > 20_000)
                let offer = RTCSessionDescriptionInit(type: .offer, sdp: big)
                try await bob.send(.offer(to: ada.id, offer: offer))
                #expect(try await ada.next("offer") == .offer(from: bob.id, offer: offer))
                let answer = RTCSessionDescriptionInit(type: .answer, sdp: sdp("answer"))
                try await ada.send(.answer(to: bob.id, answer: answer))
                #expect(try await bob.next("answer") == .answer(from: ada.id, answer: answer))
                try await ada.send(.mediaState(MediaState(audio: true, video: false, screen: false)))
                #expect(try await bob.next("media-state") == .mediaState(from: ada.id, state: MediaState(audio: true, video: false, screen: false)))

                // Messages crossing nodes change nobody's presence: no `online-users` comes with them (each one is the
                // whole list, to every client).
                _ = try await ada.drain(within: .milliseconds(600))
                for index in 0..<20 {
                    try await bob.send(.iceCandidate(to: ada.id, candidate: RTCIceCandidateInit(candidate: "candidate:\(index) 1 udp 1 10.0.0.1 9 typ host", sdpMid: "0", sdpMLineIndex: 0)))
                }
                let arrived = try await ada.drain(within: .milliseconds(800))
                #expect(arrived.filter { $0.type == "ice-candidate" }.count == 20)
                #expect(arrived.filter { $0.type == "online-users" }.isEmpty)

                // Both nodes list the room with both members.
                for node in [a, b] {
                    #expect(try await Self.members(on: node) == [ada.id, bob.id])
                }

                await bob.close()
                #expect(try await ada.next("user-disconnected") == .userDisconnected(from: bob.id))
                _ = try await ada.onlineUsers(where: { !$0.contains { $0.id == bob.id } })
                await ada.close()
            }
        }

        @Test("a direct call rings on the other node and is answered; capacity holds across nodes")
        func callsAndCapacityAcrossNodes() async throws {
            try await Self.twoNodes { a, b in
                let ada = try await a.connect(query: "?name=Ada")
                let bob = try await b.connect(query: "?name=Bob")
                _ = try await ada.onlineUsers(where: Self.lists(bob.id))
                try await ada.send(.call(to: bob.id, roomId: "ada-bob"))
                #expect(try await bob.next("incoming-call") == .incomingCall(from: ada.id, name: "Ada", roomId: "ada-bob"))
                try await bob.send(.callAccept(to: ada.id))
                #expect(try await ada.next("call-accepted") == .callAccepted(from: bob.id))

                _ = try await ada.join("pair", capacity: 2)
                _ = try await bob.onlineUsers(where: Self.lists(ada.id, inCall: true))
                _ = try await bob.join("pair")
                try await ada.next("user-joined")
                // A third person, on either node, finds the room full.
                for node in [a, b] {
                    let carol = try await node.connect(query: "?name=Carol")
                    _ = try await carol.onlineUsers(where: Self.lists(bob.id, inCall: true))
                    try await carol.send(.joinRoom(roomId: "pair", name: nil, capacity: nil))
                    #expect(try await carol.next("full-room") == .fullRoom(roomId: "pair"))
                    await carol.close()
                }
                await ada.close()
                await bob.close()
            }
        }

        @Test("a member whose socket drops on one node resumes on the other with its id and room; the room sees nothing")
        func resumeOnTheOtherNode() async throws {
            try await Self.twoNodes { a, b in
                let ada = try await RawWebSocket.connect(port: a.port, path: "/ws?name=Ada")
                let bob = try await b.connect(query: "?name=Bob")
                try ada.send(.joinRoom(roomId: "moving", name: nil, capacity: nil))
                try await ada.next("room-joined")
                _ = try await bob.onlineUsers(where: Self.lists(ada.id, inCall: true))
                _ = try await bob.join("moving")
                try await ada.next("user-joined")

                ada.abort()
                _ = try await bob.onlineUsers(where: { !$0.contains { $0.id == ada.id } })
                let resumed = try await b.connect(query: "?resume=\(try #require(ada.resumeToken))")
                #expect(resumed.id == ada.id)
                #expect(resumed.name == "Ada")
                let joined = try await resumed.join("moving")
                #expect(joined == .roomJoined(roomId: "moving", self: PeerInfo(id: ada.id, name: "Ada"), peers: [PeerInfo(id: bob.id, name: "Bob")], capacity: 8))
                let offer = RTCSessionDescriptionInit(type: .offer, sdp: sdp("after the move"))
                try await bob.send(.offer(to: ada.id, offer: offer))
                #expect(try await resumed.next("offer") == .offer(from: bob.id, offer: offer))
                _ = try await bob.onlineUsers(where: Self.lists(ada.id, inCall: true))
                // Node A let go of her without telling anyone: Bob never saw her leave.
                let seen = try await bob.drain(within: .milliseconds(1500))
                #expect(!seen.contains { $0.type == "user-disconnected" || $0.type == "user-joined" })
                // And node A lists her in the room still, now as the other node's.
                #expect(try await Self.members(on: a) == [ada.id, bob.id])
                await resumed.close()
                await bob.close()
            }
        }

        @Test("a node that starts late learns who is already on the others (hello, snapshot)")
        func lateNodeLearnsTheOthers() async throws {
            let folder = try TemporaryDirectory()
            defer { folder.remove() }
            try await TestServer.run(dataDirectory: folder.path) { a in
                let ada = try await a.connect(query: "?name=Ada")
                _ = try await ada.join("early")
                try await TestServer.run(dataDirectory: folder.path) { b in
                    let bob = try await b.connect(query: "?name=Bob")
                    _ = try await bob.onlineUsers(where: Self.lists(ada.id, inCall: true))
                    let joined = try await bob.join("early")
                    #expect(joined == .roomJoined(roomId: "early", self: PeerInfo(id: bob.id, name: "Bob"), peers: [PeerInfo(id: ada.id, name: "Ada")], capacity: 8))
                    await bob.close()
                }
                await ada.close()
            }
        }

        @Test("/metrics counts the messages between nodes and their delay")
        func metrics() async throws {
            try await Self.twoNodes { a, b in
                let ada = try await a.connect(query: "?name=Ada")
                let bob = try await b.connect(query: "?name=Bob")
                _ = try await ada.onlineUsers(where: Self.lists(bob.id))
                let text = try await b.request(.get, "/metrics").text
                #expect(text.contains("vcall_cluster_messages_received_total"))
                #expect(text.contains("vcall_cluster_delivery_seconds_bucket"))
                #expect(try await a.request(.get, "/healthz").text.contains("ok"))
                await ada.close()
                await bob.close()
            }
        }
    }
}
