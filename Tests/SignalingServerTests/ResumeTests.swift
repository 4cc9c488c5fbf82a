
import Foundation
import SignalingProtocol
@testable import SignalingServer
import Testing
import WebRTCTypes

extension ServerTests {
    @Suite("Resuming after a dropped socket", .timeLimit(.minutes(1)))
    struct ResumeTests {
        /// Messages that would tell a member someone left or arrived.
        static func membershipChanges(_ messages: [ServerMessage]) -> [ServerMessage] {
            messages.filter { $0.type == "user-disconnected" || $0.type == "user-joined" }
        }

        static func isOnlineInCall(_ id: String) -> (ServerMessage) -> Bool {
            { message in
                guard case .onlineUsers(let users) = message else { return false }
                return users.contains { $0.id == id && $0.inCall }
            }
        }

        static func isOffline(_ id: String) -> (ServerMessage) -> Bool {
            { message in
                guard case .onlineUsers(let users) = message else { return false }
                return !users.contains { $0.id == id }
            }
        }

        @Test("welcome carries a resume token for the connection's own id")
        func welcomeHasResumeToken() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                let token = try #require(a.resumeToken)
                #expect(token.hasPrefix(a.id + "."))
                await a.close()
            }
        }

        @Test("a member whose socket drops without a close frame and resumes within the grace keeps its id and room; the others see nothing")
        func resumeWithinGrace() async throws {
            try await TestServer.run { server in
                let ada = try await RawWebSocket.connect(port: server.port, path: "/ws?name=Ada")
                let bob = try await server.connect(query: "?name=Bob")
                try ada.send(.joinRoom(roomId: "resume", name: nil, capacity: nil))
                try await ada.next("room-joined")
                _ = try await bob.join("resume")
                try await ada.next("user-joined")

                var seen = try await bob.collect(until: Self.isOnlineInCall(ada.id))
                ada.abort()
                // Ada is offline in presence while her socket is gone, but still a member of the room.
                seen += try await bob.collect(until: Self.isOffline(ada.id))
                let rooms = try await server.request(.get, "/api/rooms").json
                let members = ((rooms?["rooms"] as? [[String: Any]])?.first?["members"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
                #expect(members == [ada.id, bob.id])
                // What Bob sends her meanwhile is held for her.
                let offer = RTCSessionDescriptionInit(type: .offer, sdp: sdp("held"))
                try await bob.send(.offer(to: ada.id, offer: offer))
                try await bob.send(.mediaState(MediaState(audio: false, video: true, screen: false)))

                let resumed = try await server.connect(query: "?resume=\(try #require(ada.resumeToken))")
                #expect(resumed.id == ada.id)
                #expect(resumed.name == "Ada")
                #expect(resumed.resumeToken == ada.resumeToken)
                let joined = try await resumed.join("resume")
                #expect(joined == .roomJoined(roomId: "resume", self: PeerInfo(id: ada.id, name: "Ada"), peers: [PeerInfo(id: bob.id, name: "Bob")], capacity: 8))
                // The held messages follow room-joined, in order.
                let after = try await resumed.collect { $0.type == "media-state" }.filter { $0.type != "online-users" }
                #expect(after == [
                    .offer(from: bob.id, offer: offer),
                    .mediaState(from: bob.id, state: MediaState(audio: false, video: true, screen: false)),
                ])

                // Bob never saw Ada leave or come back; presence shows her online again.
                seen += try await bob.collect { message in
                    guard case .onlineUsers(let users) = message else { return false }
                    return users.contains { $0.id == ada.id && $0.inCall }
                }
                seen += try await bob.drain(within: .milliseconds(500))
                #expect(Self.membershipChanges(seen) == [])
                // And the relay works both ways again.
                try await resumed.send(.answer(to: bob.id, answer: RTCSessionDescriptionInit(type: .answer, sdp: sdp("a"))))
                #expect(try await bob.next("answer") == .answer(from: ada.id, answer: RTCSessionDescriptionInit(type: .answer, sdp: sdp("a"))))
                await resumed.close()
                await bob.close()
            }
        }

        @Test("when the grace ends without a resume the others get user-disconnected; a later resume keeps the id but joins afresh")
        func graceExpires() async throws {
            try await TestServer.run({ $0.resumeGrace = .milliseconds(700) }) { server in
                let ada = try await RawWebSocket.connect(port: server.port, path: "/ws")
                let bob = try await server.connect()
                try ada.send(.joinRoom(roomId: "expire", name: nil, capacity: nil))
                try await ada.next("room-joined")
                _ = try await bob.join("expire")
                try await ada.next("user-joined")

                let dropped = ContinuousClock.now
                ada.abort()
                try await bob.next("user-disconnected", timeout: .seconds(10))
                #expect(ContinuousClock.now - dropped >= .milliseconds(600))
                let rooms = try await server.request(.get, "/api/rooms").json
                let members = ((rooms?["rooms"] as? [[String: Any]])?.first?["members"] as? [[String: Any]])?.count
                #expect(members == 1)

                let resumed = try await server.connect(query: "?resume=\(try #require(ada.resumeToken))")
                #expect(resumed.id == ada.id)
                _ = try await resumed.join("expire")
                #expect(try await bob.next("user-joined") == .userJoined(from: ada.id, name: resumed.name, roomUsers: [bob.id, ada.id]))
                await resumed.close()
                await bob.close()
            }
        }

        @Test("a resumed socket that never rejoins its room leaves it when the grace ends")
        func resumedButNotRejoined() async throws {
            try await TestServer.run({ $0.resumeGrace = .milliseconds(700) }) { server in
                let ada = try await RawWebSocket.connect(port: server.port, path: "/ws")
                let bob = try await server.connect()
                try ada.send(.joinRoom(roomId: "idle", name: nil, capacity: nil))
                try await ada.next("room-joined")
                _ = try await bob.join("idle")
                ada.abort()
                let resumed = try await server.connect(query: "?resume=\(try #require(ada.resumeToken))")
                #expect(resumed.id == ada.id)
                #expect(try await bob.next("user-disconnected", timeout: .seconds(10)) == .userDisconnected(from: ada.id))
                // Still connected, and no longer in a room.
                try await resumed.send(.leaveRoom)
                #expect(try await resumed.nextError().code == .notInRoom)
                await resumed.close()
                await bob.close()
            }
        }

        @Test("a clean close (1000) or going away (1001) tells the room at once, whatever the grace")
        func cleanCloseIsImmediate() async throws {
            try await TestServer.run({ $0.resumeGrace = .seconds(60) }) { server in
                let bob = try await server.connect()
                _ = try await bob.join("clean")
                let ada = try await server.connect()
                _ = try await ada.join("clean")
                await ada.close()  // code 1000
                #expect(try await bob.next("user-disconnected", timeout: .seconds(3)) == .userDisconnected(from: ada.id))

                let cat = try await RawWebSocket.connect(port: server.port, path: "/ws")
                try cat.send(.joinRoom(roomId: "clean", name: nil, capacity: nil))
                try await cat.next("room-joined")
                try await cat.close(code: 1001)
                #expect(try await bob.next("user-disconnected", timeout: .seconds(3)) == .userDisconnected(from: cat.id))
                await bob.close()
            }
        }

        @Test("a close frame with another code (4000) counts as a drop: the room keeps the member")
        func otherCloseCodeIsADrop() async throws {
            try await TestServer.run({ $0.resumeGrace = .seconds(60) }) { server in
                let bob = try await server.connect()
                _ = try await bob.join("code")
                let ada = try await RawWebSocket.connect(port: server.port, path: "/ws")
                try ada.send(.joinRoom(roomId: "code", name: nil, capacity: nil))
                try await ada.next("room-joined")
                // Ada's arrival (user-joined, then presence with her in a call) comes before the drop.
                _ = try await bob.collect(until: Self.isOnlineInCall(ada.id))
                try await ada.close(code: 4000)
                var seen = try await bob.collect(until: Self.isOffline(ada.id))
                let resumed = try await server.connect(query: "?resume=\(try #require(ada.resumeToken))")
                #expect(resumed.id == ada.id)
                _ = try await resumed.join("code")
                seen += try await bob.drain(within: .milliseconds(500))
                #expect(Self.membershipChanges(seen) == [])
                await resumed.close()
                await bob.close()
            }
        }

        @Test("with the grace off (0) a dropped socket leaves its room at once, as before resume existed")
        func zeroGrace() async throws {
            try await TestServer.run({ $0.resumeGrace = .zero }) { server in
                let bob = try await server.connect()
                _ = try await bob.join("no-grace")
                let ada = try await RawWebSocket.connect(port: server.port, path: "/ws")
                try ada.send(.joinRoom(roomId: "no-grace", name: nil, capacity: nil))
                try await ada.next("room-joined")
                ada.abort()
                #expect(try await bob.next("user-disconnected", timeout: .seconds(3)) == .userDisconnected(from: ada.id))
                await bob.close()
            }
        }

        @Test("a resume replaces a half-open socket of the same id silently")
        func resumeReplacesHalfOpenSocket() async throws {
            try await TestServer.run { server in
                let ada = try await server.connect()
                let bob = try await server.connect()
                _ = try await ada.join("half-open")
                _ = try await bob.join("half-open")
                let again = try await server.connect(query: "?resume=\(try #require(ada.resumeToken))")
                #expect(again.id == ada.id)
                #expect(await ada.closedByServer(within: .seconds(5)))
                let joined = try await again.join("half-open")
                #expect(joined == .roomJoined(roomId: "half-open", self: PeerInfo(id: ada.id, name: ada.name), peers: [PeerInfo(id: bob.id, name: bob.name)], capacity: 8))
                #expect(Self.membershipChanges(try await bob.drain(within: .milliseconds(500))) == [])
                await again.close()
                #expect(try await bob.next("user-disconnected", timeout: .seconds(3)) == .userDisconnected(from: ada.id))
                await bob.close()
            }
        }

        @Test("a forged token, or one signed by another server, gets a fresh id")
        func forgedTokens() async throws {
            try await TestServer.run { server in
                let ada = try await server.connect()
                let token = try #require(ada.resumeToken)
                let mac = String(token.split(separator: ".").last ?? "")
                let flipped = String(mac.dropLast()) + (mac.hasSuffix("0") ? "1" : "0")
                let otherServer = ResumeTokens(secret: RandomToken.bytes(32)).token(for: ada.id)
                let forged = [
                    ada.id, ada.id + ".", "\(ada.id).\(flipped)", "\(ada.id).\(mac.prefix(32))", otherServer,
                    "garbage", "\(ada.id)0.\(mac)", ".\(mac)",
                ]
                for candidate in forged {
                    let other = try await server.connect(query: "?resume=\(candidate)")
                    #expect(other.id != ada.id, "token \(candidate) resumed \(ada.id)")
                    #expect(other.resumeToken?.hasPrefix(other.id + ".") == true)
                    await other.close()
                }
                // The genuine token still works.
                let again = try await server.connect(query: "?resume=\(token)")
                #expect(again.id == ada.id)
                await again.close()
            }
        }

        @Test("an id held by a logged-in user is not handed to a connection with other credentials")
        func resumeNeedsTheSameCredentials() async throws {
            try await TestServer.run { server in
                try await server.request(.post, "/api/register", json: #"{"username":"ada","password":"correct horse"}"#)
                let login = try await server.request(.post, "/api/login", json: #"{"username":"ada","password":"correct horse"}"#)
                let cookie = try #require(login.sessionCookie)
                let ada = try await server.connect(headers: [.cookie: cookie])
                #expect(ada.name == "ada")
                let token = try #require(ada.resumeToken)
                let guest = try await server.connect(query: "?resume=\(token)")
                #expect(guest.id != ada.id)
                let same = try await server.connect(query: "?resume=\(token)", headers: [.cookie: cookie])
                #expect(same.id == ada.id)
                await guest.close()
                await same.close()
            }
        }

        @Test("resume tokens survive a server restart on the same data folder (or database)")
        func tokensSurviveRestart() async throws {
            let folder = try TemporaryDirectory()
            defer { folder.remove() }
            let (id, token) = try await TestServer.run(dataDirectory: folder.path) { server in
                let ada = try await server.connect()
                _ = try await ada.join("restart")
                await ada.close()
                return (ada.id, try #require(ada.resumeToken))
            }
            if TestDatabase.postgres == nil {
                let attributes = try FileManager.default.attributesOfItem(atPath: folder.path + "/" + ResumeTokens.fileName)
                #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            }

            try await TestServer.run(dataDirectory: folder.path) { server in
                let ada = try await server.connect(query: "?resume=\(token)")
                #expect(ada.id == id)
                #expect(ada.resumeToken == token)
                // Rooms did not survive: rejoining creates the room again and the others hear of it.
                let bob = try await server.connect()
                _ = try await bob.join("restart")
                let joined = try await ada.join("restart")
                #expect(joined == .roomJoined(roomId: "restart", self: PeerInfo(id: id, name: ada.name), peers: [PeerInfo(id: bob.id, name: bob.name)], capacity: 8))
                #expect(try await bob.next("user-joined") == .userJoined(from: id, name: ada.name, roomUsers: [bob.id, id]))
                await ada.close()
                await bob.close()
            }
            // Another data folder (database) means another secret: the token is foreign there.
            try await TestServer.run { server in
                let other = try await server.connect(query: "?resume=\(token)")
                #expect(other.id != id)
                await other.close()
            }
        }
    }
}
