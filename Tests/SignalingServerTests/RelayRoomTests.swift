import Foundation
import HTTPTypes
import Logging
import SignalingProtocol
@testable import SignalingServer
import Testing

extension ServerTests {
    @Suite("Relay rooms: the relay role, relay-changed and track-map", .timeLimit(.minutes(1)))
    struct RelayRoomTests {
        /// In-process tokens (token → name) most tests give their relays.
        static let relayToken = "vct_test-relay-0123456789abcdef0123456789"
        static let secondToken = "vct_test-second-0123456789abcdef012345678"
        static func withTokens(_ configuration: inout VCallServerConfiguration) {
            configuration.inProcessTokens = [relayToken: "relay", secondToken: "second-relay"]
        }

        static func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

        /// What a member is told about the room, up to and including the first message of `type`: presence
        /// lists left out.
        static func roomNews(_ peer: WSPeer, until type: String, timeout: Duration = .seconds(20)) async throws -> [ServerMessage] {
            try await peer.collect(timeout: timeout) { $0.type == type }.filter { $0.type != "online-users" }
        }

        /// `GET /api/rooms`, by room id.
        static func rooms(_ server: TestServer) async throws -> [String: [String: Any]] {
            let rooms = try #require(try await server.request(.get, "/api/rooms").json?["rooms"] as? [[String: Any]])
            return Dictionary(uniqueKeysWithValues: rooms.map { ($0["roomId"] as? String ?? "?", $0) })
        }

        static func memberIDs(_ room: [String: Any]?) -> [String] {
            (room?["members"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        }

        @Test("a guest asking for the relay role gets unauthorized, saying how to get a token; nothing changes")
        func guestIsUnauthorized() async throws {
            try await TestServer.run { server in
                let ada = try await server.connect(query: "?name=Ada")
                _ = try await ada.join("standup")
                let guest = try await server.connect(query: "?name=Mallory")
                _ = try await guest.join("lobby")

                try await guest.send(.joinRoom(roomId: "standup", name: "relay", capacity: nil, role: .relay))
                let error = try await guest.nextError()
                #expect(error.code == .unauthorized)
                #expect(error.message.contains("API token"))
                #expect(error.message.contains("vcall-server token create"))
                #expect(error.message.contains("Authorization: Bearer"))

                // Not joined, not renamed, still in its room; the room heard nothing.
                #expect(try await guest.received("room-joined").isEmpty)
                #expect(try await ada.received("user-joined").isEmpty)
                let rooms = try await Self.rooms(server)
                #expect(Self.memberIDs(rooms["standup"]) == [ada.id])
                #expect(rooms["standup"]?["relay"] is NSNull)
                #expect(Self.memberIDs(rooms["lobby"]) == [guest.id])
                #expect((rooms["lobby"]?["members"] as? [[String: Any]])?.first?["name"] as? String == "Mallory")
                await ada.close()
                await guest.close()
            }
        }

        @Test("a logged-in web session (cookie) is not enough for the relay role; it joins as a member")
        func sessionIsUnauthorized() async throws {
            try await TestServer.run { server in
                let registered = try await server.request(.post, "/api/register", json: #"{"username":"ada","password":"correct horse"}"#)
                let cookie = try #require(registered.sessionCookie)
                let ada = try await server.connect(headers: [.cookie: cookie])
                #expect(ada.name == "ada")

                try await ada.send(.joinRoom(roomId: "standup", name: nil, capacity: nil, role: .relay))
                #expect(try await ada.nextError().code == .unauthorized)
                #expect(try await Self.rooms(server).isEmpty)

                // Without the role the same connection joins, and room-joined says there is no relay, as null.
                try await ada.send(.joinRoom(roomId: "standup", name: nil, capacity: nil))
                let joined = try await ada.nextText("room-joined")
                #expect(joined.contains(#""relay":null"#))
                #expect(try ServerMessage.decode(joined) == .roomJoined(
                    roomId: "standup", self: PeerInfo(id: ada.id, name: "ada", account: "ada"), peers: [], capacity: 8, relay: nil
                ))
                await ada.close()
            }
        }

        @Test("a token holder joins as the relay: room-joined names itself, members get user-joined then relay-changed, later members and /api/rooms see it")
        func tokenHolderBecomesRelay() async throws {
            try await TestServer.run { server in
                // A user's token, made with POST /api/tokens.
                let cookie = try #require(
                    try await server.request(.post, "/api/register", json: #"{"username":"owner","password":"correct horse"}"#).sessionCookie
                )
                let created = try await server.request(.post, "/api/tokens", json: #"{"name":"sfu"}"#, headers: [.cookie: cookie])
                let token = try #require(created.json?["token"] as? String)

                let ada = try await server.connect(query: "?name=Ada")
                let bob = try await server.connect(query: "?name=Bob")
                _ = try await ada.join("standup")
                _ = try await bob.join("standup")
                try await ada.next("user-joined")

                let relay = try await server.connect(headers: Self.bearer(token))
                let joined = try await relay.join("standup", name: "relay", role: .relay)
                #expect(joined == .roomJoined(
                    // The token is a user's: the relay's member info names that account (a recorder's reports list it).
                    roomId: "standup", self: PeerInfo(id: relay.id, name: "relay", account: "owner"),
                    peers: [PeerInfo(id: ada.id, name: "Ada"), PeerInfo(id: bob.id, name: "Bob")], capacity: 8, relay: relay.id
                ))
                for member in [ada, bob] {
                    #expect(try await Self.roomNews(member, until: "relay-changed") == [
                        .userJoined(from: relay.id, name: "relay", roomUsers: [ada.id, bob.id, relay.id], account: "owner"),
                        .relayChanged(relay: relay.id),
                    ])
                }
                // The relay is a member like any other: online and in call.
                _ = try await ada.onlineUsers { users in users.contains { $0.id == relay.id && $0.inCall } }

                let carol = try await server.connect(query: "?name=Carol")
                #expect(try await carol.join("standup") == .roomJoined(
                    roomId: "standup", self: PeerInfo(id: carol.id, name: "Carol"),
                    peers: [PeerInfo(id: ada.id, name: "Ada"), PeerInfo(id: bob.id, name: "Bob"), PeerInfo(id: relay.id, name: "relay", account: "owner")],
                    capacity: 8, relay: relay.id
                ))
                // A plain member's arrival changes no relay.
                #expect(try await Self.roomNews(ada, until: "user-joined") == [.userJoined(from: carol.id, name: "Carol", roomUsers: [ada.id, bob.id, relay.id, carol.id])])
                #expect(try await ada.received("relay-changed").isEmpty)

                let listed = try await server.request(.get, "/api/rooms")
                #expect(listed.text.contains(#""relay":"\#(relay.id)""#))
                let room = try #require(try await Self.rooms(server)["standup"])
                #expect(room["relay"] as? String == relay.id)
                #expect(Self.memberIDs(room) == [ada.id, bob.id, relay.id, carol.id])
                for peer in [ada, bob, relay, carol] { await peer.close() }
            }
        }

        @Test("a second token holder asking for the relay role of a room that has one gets relay-taken naming the room and the relay; nothing changes")
        func secondRelayIsRefused() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            // The second relay holds a command-line token (`vcall-server token create`).
            let store = try await TestDatabase.accounts(dataDirectory: directory.path)
            let commandLineToken = try await store.createToken(name: "other-sfu", username: nil)
            await store.close()
            try await TestServer.run(dataDirectory: directory.path, Self.withTokens) { server in
                let relay = try await server.connect(headers: Self.bearer(Self.relayToken))
                #expect(relay.name == "relay")
                _ = try await relay.join("standup", role: .relay)
                let second = try await server.connect(headers: Self.bearer(commandLineToken))
                #expect(second.name == "other-sfu")
                _ = try await second.join("lobby")

                try await second.send(.joinRoom(roomId: "standup", name: nil, capacity: nil, role: .relay))
                let error = try await second.nextError()
                #expect(error.code == .relayTaken)
                #expect(error.message.contains("standup"))
                #expect(error.message.contains("relay (\(relay.id))"))
                #expect(try await second.received("room-joined").isEmpty)
                #expect(try await relay.received("user-joined").isEmpty)
                let rooms = try await Self.rooms(server)
                #expect(Self.memberIDs(rooms["standup"]) == [relay.id])
                #expect(rooms["standup"]?["relay"] as? String == relay.id)
                #expect(Self.memberIDs(rooms["lobby"]) == [second.id])

                // The relay asking again for its own room only repeats room-joined.
                #expect(try await relay.join("standup", role: .relay) == .roomJoined(
                    roomId: "standup", self: PeerInfo(id: relay.id, name: "relay"), peers: [], capacity: 8, relay: relay.id
                ))
                // Without the role the second one joins as a member, and learns who the relay is.
                #expect(try await second.join("standup") == .roomJoined(
                    roomId: "standup", self: PeerInfo(id: second.id, name: "other-sfu"), peers: [PeerInfo(id: relay.id, name: "relay")],
                    capacity: 8, relay: relay.id
                ))
                await relay.close()
                await second.close()
            }
        }

        @Test("a relay whose socket drops without a close frame leaves at once, not after the grace: user-disconnected, then relay-changed null")
        func droppedRelayLeavesAtOnce() async throws {
            try await TestServer.run({ Self.withTokens(&$0); $0.resumeGrace = .seconds(20) }) { server in
                let ada = try await server.connect(query: "?name=Ada")
                let bob = try await server.connect(query: "?name=Bob")
                _ = try await ada.join("standup")
                _ = try await bob.join("standup")
                let relay = try await RawWebSocket.connect(port: server.port, path: "/ws?token=\(Self.relayToken)")
                try relay.send(.joinRoom(roomId: "standup", name: nil, capacity: nil, role: .relay))
                guard case .roomJoined(_, _, _, _, let named) = try await relay.next("room-joined") else { fatalError() }
                #expect(named == relay.id)
                for member in [ada, bob] { _ = try await Self.roomNews(member, until: "relay-changed") }

                let dropped = ContinuousClock.now
                relay.abort()
                for member in [ada, bob] {
                    #expect(try await Self.roomNews(member, until: "relay-changed", timeout: .seconds(5)) == [
                        .userDisconnected(from: relay.id), .relayChanged(relay: nil),
                    ])
                }
                #expect(ContinuousClock.now - dropped < .seconds(5))
                let room = try #require(try await Self.rooms(server)["standup"])
                #expect(room["relay"] is NSNull)
                #expect(Self.memberIDs(room) == [ada.id, bob.id])

                // A relay that comes back keeps its id but joins as a newcomer.
                let back = try await server.connect(query: "?token=\(Self.relayToken)&resume=\(try #require(relay.resumeToken))")
                #expect(back.id == relay.id)
                _ = try await back.join("standup", role: .relay)
                #expect(try await Self.roomNews(ada, until: "relay-changed") == [
                    .userJoined(from: relay.id, name: "relay", roomUsers: [ada.id, bob.id, relay.id]), .relayChanged(relay: relay.id),
                ])
                for peer in [ada, bob, back] { await peer.close() }
            }
        }

        @Test("a relay leaving by leave-room, by joining another room or by a goodbye close: user-disconnected, then relay-changed null")
        func relayLeavesEveryWay() async throws {
            try await TestServer.run(Self.withTokens) { server in
                let ada = try await server.connect(query: "?name=Ada")
                _ = try await ada.join("standup")
                let relay = try await server.connect(query: "?token=\(Self.relayToken)")
                let left: [ServerMessage] = [.userDisconnected(from: relay.id), .relayChanged(relay: nil)]

                _ = try await relay.join("standup", role: .relay)
                _ = try await Self.roomNews(ada, until: "relay-changed")
                try await relay.send(.leaveRoom)
                #expect(try await Self.roomNews(ada, until: "relay-changed") == left)

                _ = try await relay.join("standup", role: .relay)
                _ = try await Self.roomNews(ada, until: "relay-changed")
                _ = try await relay.join("elsewhere")
                #expect(try await Self.roomNews(ada, until: "relay-changed") == left)
                #expect(try await Self.rooms(server)["elsewhere"]?["relay"] is NSNull)

                _ = try await relay.join("standup", role: .relay)
                _ = try await Self.roomNews(ada, until: "relay-changed")
                await relay.close()
                #expect(try await Self.roomNews(ada, until: "relay-changed") == left)
                await ada.close()
            }
        }

        @Test("a socket that resumes a live relay's id takes the relay out of its room: the new socket starts outside it")
        func resumeTakesRelayOut() async throws {
            try await TestServer.run(Self.withTokens) { server in
                let ada = try await server.connect(query: "?name=Ada")
                _ = try await ada.join("standup")
                let relay = try await server.connect(query: "?token=\(Self.relayToken)")
                _ = try await relay.join("standup", role: .relay)
                _ = try await Self.roomNews(ada, until: "relay-changed")

                let replacement = try await server.connect(query: "?token=\(Self.relayToken)&resume=\(try #require(relay.resumeToken))")
                #expect(replacement.id == relay.id)
                #expect(try await Self.roomNews(ada, until: "relay-changed") == [.userDisconnected(from: relay.id), .relayChanged(relay: nil)])
                try await replacement.send(.leaveRoom)
                #expect(try await replacement.nextError().code == .notInRoom)
                await replacement.close()
                await ada.close()
            }
        }

        @Test("a member may take its room's free relay role, and the relay drop it, by joining again: the others get relay-changed alone")
        func roleChangesInPlace() async throws {
            try await TestServer.run(Self.withTokens) { server in
                let ada = try await server.connect(query: "?name=Ada")
                _ = try await ada.join("standup")
                let member = try await server.connect(headers: Self.bearer(Self.relayToken))
                _ = try await member.join("standup")
                _ = try await Self.roomNews(ada, until: "user-joined")

                guard case .roomJoined(_, _, _, _, let relay) = try await member.join("standup", role: .relay) else { fatalError() }
                #expect(relay == member.id)
                #expect(try await Self.roomNews(ada, until: "relay-changed") == [.relayChanged(relay: member.id)])
                guard case .roomJoined(_, _, _, _, let none) = try await member.join("standup") else { fatalError() }
                #expect(none == nil)
                #expect(try await Self.roomNews(ada, until: "relay-changed") == [.relayChanged(relay: nil)])
                await member.close()
                await ada.close()
            }
        }

        @Test("track-map goes to the member named in to, its payload as sent and from stamped; a bad kind, a missing to or an unknown peer is refused and nothing is delivered")
        func trackMapIsRelayed() async throws {
            try await TestServer.run(Self.withTokens) { server in
                let ada = try await server.connect(query: "?name=Ada")
                let bob = try await server.connect(query: "?name=Bob")
                _ = try await ada.join("standup")
                _ = try await bob.join("standup")
                let relay = try await server.connect(headers: Self.bearer(Self.relayToken))
                _ = try await relay.join("standup", role: .relay)

                let tracks = #"[{"mid":"0","participant":"\#(ada.id)","kind":"audio"}, {"kind":"video","participant":"\#(ada.id)","mid":"1"},{"mid":"2","participant":"\#(bob.id)","kind":"video"}]"#
                try await relay.sendRaw(#"{"type":"track-map","from":"forged","to":"\#(ada.id)","tracks":\#(tracks)}"#)
                #expect(try await ada.nextText("track-map") == #"{"type":"track-map","from":"\#(relay.id)","tracks":\#(tracks)}"#)

                // A map the raw path does not take (an escape) goes through the parser, re-encoded, from stamped too.
                try await relay.sendRaw(#"{"type":"track-map","to":"\#(bob.id)","tracks":[{"mid":"\u0033","participant":"\#(ada.id)","kind":"audio"}]}"#)
                #expect(try await bob.next("track-map") == .trackMap(from: relay.id, tracks: [TrackMapEntry(mid: "3", participant: ada.id, kind: .audio)]))
                try await relay.send(.trackMap(to: bob.id, tracks: []))
                #expect(try await bob.next("track-map") == .trackMap(from: relay.id, tracks: []))

                let entry = #"{"mid":"0","participant":"\#(ada.id)","kind":"audio"}"#
                try await relay.sendRaw(#"{"type":"track-map","to":"\#(ada.id)","tracks":[{"mid":"0","participant":"\#(ada.id)","kind":"screen"}]}"#)
                let badKind = try await relay.nextError()
                #expect(badKind.code == .invalidMessage)
                #expect(badKind.message.contains("tracks[0].kind"))
                try await relay.sendRaw(#"{"type":"track-map","tracks":[\#(entry)]}"#)
                let noTo = try await relay.nextError()
                #expect(noTo.code == .invalidMessage)
                #expect(noTo.message.contains(#""to" is required"#))
                try await relay.sendRaw(#"{"type":"track-map","to":"nobody","tracks":[\#(entry)]}"#)
                #expect(try await relay.nextError().code == .unknownPeer)
                try await relay.sendRaw(#"{"type":"track-map","to":"\#(relay.id)","tracks":[\#(entry)]}"#)
                #expect(try await relay.nextError().code == .unknownPeer)
                #expect(try await ada.received("track-map").isEmpty)
                #expect(try await bob.received("track-map").isEmpty)

                // Outside a room.
                let outsider = try await server.connect()
                try await outsider.sendRaw(#"{"type":"track-map","to":"\#(ada.id)","tracks":[\#(entry)]}"#)
                #expect(try await outsider.nextError().code == .notInRoom)
                #expect(try await ada.received("track-map").isEmpty)
                for peer in [ada, bob, relay, outsider] { await peer.close() }
            }
        }

        @Test("an in-process token works like a command-line token (name, /api/me, the relay role) and is never stored")
        func inProcessToken() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let token = "vct_in-process-" + UUID().uuidString
            try await TestServer.run(dataDirectory: directory.path, { $0.requireLogin = true; $0.inProcessTokens = [token: "gateway"] }) { server in
                let gateway = try await server.connect(headers: Self.bearer(token))
                #expect(gateway.name == "gateway")
                #expect(try await gateway.received("error").isEmpty)
                guard case .roomJoined(_, _, _, _, let relay) = try await gateway.join("recorded", role: .relay) else { fatalError() }
                #expect(relay == gateway.id)
                let me = try await server.request(.get, "/api/me", headers: Self.bearer(token))
                #expect(me.status == .ok)
                #expect(me.json?["username"] as? String == "gateway")
                let byQuery = try await server.connect(query: "?token=\(token)")
                #expect(byQuery.name == "gateway")
                await gateway.close()
                await byQuery.close()
            }
            // The same data folder without it: the token is unknown.
            try await TestServer.run(dataDirectory: directory.path) { server in
                let stranger = try await server.connect(headers: Self.bearer(token))
                #expect(try await stranger.nextError().code == .unauthorized)
                #expect(try await server.request(.get, "/api/me", headers: Self.bearer(token)).status == .unauthorized)
                await stranger.close()
            }
        }

        @Test("an in-process token too short to be secret, or with an unusable name, stops the server from starting")
        func badInProcessTokens() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            for tokens in [["short": "gateway"], [Self.relayToken: ""], [Self.relayToken: String(repeating: "n", count: 65)]] {
                var configuration = VCallServerConfiguration()
                configuration.dataDirectory = directory.path
                configuration.inProcessTokens = tokens
                await #expect(throws: AccountStore.InProcessTokenError.self) {
                    _ = try await buildApplication(configuration: configuration)
                }
            }
        }
    }
}
