
import Foundation
import HTTPTypes
import SignalingProtocol
@testable import SignalingServer
import Testing
import WebRTCTypes

extension ServerTests {
    @Suite("Signaling over a live WebSocket", .timeLimit(.minutes(1)))
    struct SignalingTests {
        @Test("a new connection gets welcome with its id, a guest name and the configured ICE servers")
        func welcome() async throws {
            try await TestServer.run({ $0.iceServers = [RTCIceServer(urls: ["stun:stun.example.org:3478"])] }) { server in
                let a = try await server.connect()
                let b = try await server.connect()
                #expect(a.id != b.id)
                #expect(a.name.hasPrefix("guest-"))
                #expect(a.iceServers == [RTCIceServer(urls: ["stun:stun.example.org:3478"])])
                await a.close()
                await b.close()
            }
        }

        @Test("a guest's ?name= becomes its name in welcome; an invalid one falls back to a guest name")
        func guestNameFromQuery() async throws {
            try await TestServer.run { server in
                let named = try await server.connect(query: "?name=Grace%20Hopper")
                #expect(named.name == "Grace Hopper")
                let blank = try await server.connect(query: "?name=%20%20")
                #expect(blank.name.hasPrefix("guest-"))
                await named.close()
                await blank.close()
            }
        }

        @Test("joining tells the joiner its peers and the others who joined")
        func joinAnnouncesMembers() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                let b = try await server.connect()
                let first = try await a.join("room-1", name: "Ada")
                #expect(first == .roomJoined(roomId: "room-1", self: PeerInfo(id: a.id, name: "Ada"), peers: [], capacity: 8))
                let second = try await b.join("room-1", name: "Bob")
                #expect(second == .roomJoined(roomId: "room-1", self: PeerInfo(id: b.id, name: "Bob"), peers: [PeerInfo(id: a.id, name: "Ada")], capacity: 8))
                let joined = try await a.next("user-joined")
                #expect(joined == .userJoined(from: b.id, name: "Bob", roomUsers: [a.id, b.id]))
                await a.close()
                await b.close()
            }
        }

        @Test("offer, answer and candidates are relayed unchanged with the true sender stamped as from")
        func relayStampsSender() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                let b = try await server.connect()
                _ = try await a.join("relay")
                _ = try await b.join("relay")
                // A forged from is ignored.
                try await a.sendRaw(#"{"type":"offer","from":"forged","offer":{"type":"offer","sdp":"\#(sdp("a").replacingOccurrences(of: "\r\n", with: "\\r\\n"))"}}"#)
                #expect(try await b.next("offer") == .offer(from: a.id, offer: RTCSessionDescriptionInit(type: .offer, sdp: sdp("a"))))
                try await b.send(.answer(to: a.id, answer: RTCSessionDescriptionInit(type: .answer, sdp: sdp("b"))))
                #expect(try await a.next("answer") == .answer(from: b.id, answer: RTCSessionDescriptionInit(type: .answer, sdp: sdp("b"))))
                let candidate = RTCIceCandidateInit(candidate: "candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host", sdpMid: "0", sdpMLineIndex: 0, usernameFragment: "abcd")
                try await a.send(.iceCandidate(to: b.id, candidate: candidate))
                #expect(try await b.next("ice-candidate") == .iceCandidate(from: a.id, candidate: candidate))
                try await a.send(.iceCandidate(to: nil, candidate: nil))
                #expect(try await b.next("ice-candidate") == .iceCandidate(from: a.id, candidate: nil))
                await a.close()
                await b.close()
            }
        }

        @Test("to must name a member of the sender's room, else unknown-peer and nothing is delivered")
        func unknownPeer() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                let b = try await server.connect()
                let outsider = try await server.connect()
                _ = try await a.join("r1")
                _ = try await b.join("r1")
                _ = try await outsider.join("r2")
                try await a.send(.offer(to: outsider.id, offer: RTCSessionDescriptionInit(type: .offer, sdp: "x")))
                #expect(try await a.nextError().code == .unknownPeer)
                try await a.send(.offer(to: a.id, offer: RTCSessionDescriptionInit(type: .offer, sdp: "x")))
                #expect(try await a.nextError().code == .unknownPeer)
                try await a.send(.answer(to: "nobody", answer: RTCSessionDescriptionInit(type: .answer, sdp: "x")))
                #expect(try await a.nextError().code == .unknownPeer)
                #expect(try await outsider.received("offer").isEmpty)
                #expect(try await b.received("offer").isEmpty)
                await a.close()
                await b.close()
                await outsider.close()
            }
        }

        @Test("without to a message goes to the other member of a two-person room, and is refused otherwise")
        func routingWithoutTo() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                let b = try await server.connect()
                let c = try await server.connect()
                _ = try await a.join("three")
                try await a.send(.offer(to: nil, offer: RTCSessionDescriptionInit(type: .offer, sdp: "alone")))
                #expect(try await a.nextError().code == .invalidMessage)
                _ = try await b.join("three")
                try await a.send(.offer(to: nil, offer: RTCSessionDescriptionInit(type: .offer, sdp: "pair")))
                #expect(try await b.next("offer") == .offer(from: a.id, offer: RTCSessionDescriptionInit(type: .offer, sdp: "pair")))
                _ = try await c.join("three")
                try await a.send(.iceCandidate(to: nil, candidate: nil))
                let error = try await a.nextError()
                #expect(error.code == .invalidMessage)
                #expect(error.message.contains("\"to\" is required"))
                // With to, only the named member receives it.
                try await a.send(.offer(to: c.id, offer: RTCSessionDescriptionInit(type: .offer, sdp: "to-c")))
                #expect(try await c.next("offer") == .offer(from: a.id, offer: RTCSessionDescriptionInit(type: .offer, sdp: "to-c")))
                #expect(try await b.received("offer").isEmpty)
                for peer in [a, b, c] { await peer.close() }
            }
        }

        @Test("relaying or leaving outside a room is not-in-room")
        func notInRoom() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                try await a.send(.offer(to: nil, offer: RTCSessionDescriptionInit(type: .offer, sdp: "x")))
                #expect(try await a.nextError().code == .notInRoom)
                try await a.send(.leaveRoom)
                #expect(try await a.nextError().code == .notInRoom)
                try await a.send(.mediaState(MediaState(audio: true, video: true, screen: false)))
                #expect(try await a.nextError().code == .notInRoom)
                await a.close()
            }
        }

        @Test("a full room answers full-room and leaves the others undisturbed")
        func capacity() async throws {
            try await TestServer.run({ $0.roomCapacity = 3 }) { server in
                let peers = try await [server.connect(), server.connect(), server.connect(), server.connect()]
                for peer in peers.prefix(3) { _ = try await peer.join("small") }
                try await peers[3].send(.joinRoom(roomId: "small", name: nil, capacity: nil))
                #expect(try await peers[3].next("full-room") == .fullRoom(roomId: "small"))
                #expect(try await peers[0].received("user-joined", within: .milliseconds(200)).count == 2)
                // A creator may ask for less than the server's capacity, never more.
                let big = try await peers[3].join("big", capacity: 100)
                guard case .roomJoined(_, _, _, let capacity, _) = big else { Issue.record("expected room-joined"); return }
                #expect(capacity == 3)
                for peer in peers { await peer.close() }
            }
        }

        @Test("a room created with capacity 2 is a 1-on-1 room; the third member gets full-room")
        func oneOnOneRoom() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                let b = try await server.connect()
                let c = try await server.connect()
                let joined = try await a.join("pair", capacity: 2)
                guard case .roomJoined(_, _, _, let capacity, _) = joined else { Issue.record("expected room-joined"); return }
                #expect(capacity == 2)
                _ = try await b.join("pair", capacity: 8)  // ignored: only the creator sets the capacity
                try await c.send(.joinRoom(roomId: "pair", name: nil, capacity: nil))
                #expect(try await c.next("full-room") == .fullRoom(roomId: "pair"))
                for peer in [a, b, c] { await peer.close() }
            }
        }

        @Test("leaving or closing the socket sends user-disconnected to the room")
        func userDisconnected() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                let b = try await server.connect()
                let c = try await server.connect()
                for peer in [a, b, c] { _ = try await peer.join("bye") }
                try await b.send(.leaveRoom)
                #expect(try await a.next("user-disconnected") == .userDisconnected(from: b.id))
                await c.close()
                #expect(try await a.next("user-disconnected") == .userDisconnected(from: c.id))
                await a.close()
                await b.close()
            }
        }

        @Test("media-state goes to the other members of the room with from")
        func mediaState() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                let b = try await server.connect()
                _ = try await a.join("media")
                _ = try await b.join("media")
                try await a.send(.mediaState(MediaState(audio: false, video: true, screen: true)))
                #expect(try await b.next("media-state") == .mediaState(from: a.id, state: MediaState(audio: false, video: true, screen: true)))
                #expect(try await a.received("media-state").isEmpty)
                await a.close()
                await b.close()
            }
        }

        @Test("online-users goes to everyone on connect, join, leave and disconnect")
        func presence() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                _ = try await a.onlineUsers { $0.map(\.id) == [a.id] }
                let b = try await server.connect()
                _ = try await a.onlineUsers { $0.map(\.id) == [a.id, b.id] }
                _ = try await b.join("presence", name: "Bob")
                let users = try await a.onlineUsers { $0.contains { $0.id == b.id && $0.inCall } }
                #expect(users.first { $0.id == b.id }?.name == "Bob")
                #expect(users.first { $0.id == a.id }?.inCall == false)
                try await b.send(.leaveRoom)
                _ = try await a.onlineUsers { $0.contains { $0.id == b.id && !$0.inCall } }
                await b.close()
                _ = try await a.onlineUsers { $0.map(\.id) == [a.id] }
                await a.close()
            }
        }

        @Test("a direct call rings the callee, who accepts, and both meet in the caller's room")
        func directCallAccepted() async throws {
            try await TestServer.run { server in
                let ada = try await server.connect()
                let bob = try await server.connect()
                try await ada.send(.joinRoom(roomId: "lobby-ada", name: "Ada", capacity: nil))
                try await ada.send(.leaveRoom)
                try await ada.send(.call(to: bob.id, roomId: "call-7f3a"))
                #expect(try await bob.next("incoming-call") == .incomingCall(from: ada.id, name: "Ada", roomId: "call-7f3a"))
                try await bob.send(.callAccept(to: ada.id))
                #expect(try await ada.next("call-accepted") == .callAccepted(from: bob.id))
                _ = try await ada.join("call-7f3a", capacity: 2)
                _ = try await bob.join("call-7f3a", capacity: 2)
                try await ada.send(.offer(to: nil, offer: RTCSessionDescriptionInit(type: .offer, sdp: "call")))
                #expect(try await bob.next("offer") == .offer(from: ada.id, offer: RTCSessionDescriptionInit(type: .offer, sdp: "call")))
                try await bob.send(.hangup(to: nil))
                #expect(try await ada.next("hangup") == .hangup(from: bob.id))
                await ada.close()
                await bob.close()
            }
        }

        @Test("a direct call can be rejected or hung up while ringing; calling an offline id is unknown-peer")
        func directCallRejectedAndHungUp() async throws {
            try await TestServer.run { server in
                let ada = try await server.connect()
                let bob = try await server.connect()
                try await ada.send(.call(to: bob.id, roomId: "call-1"))
                _ = try await bob.next("incoming-call")
                try await bob.send(.callReject(to: ada.id))
                #expect(try await ada.next("call-rejected") == .callRejected(from: bob.id))
                try await ada.send(.call(to: bob.id, roomId: "call-2"))
                _ = try await bob.next("incoming-call")
                try await ada.send(.hangup(to: bob.id))
                #expect(try await bob.next("hangup") == .hangup(from: ada.id))
                try await ada.send(.call(to: "offline-id", roomId: "call-3"))
                #expect(try await ada.nextError().code == .unknownPeer)
                try await ada.send(.callAccept(to: "offline-id"))
                #expect(try await ada.nextError().code == .unknownPeer)
                try await ada.send(.hangup(to: nil))
                #expect(try await ada.nextError().code == .invalidMessage)
                let bobID = bob.id
                await bob.close()
                _ = try await ada.onlineUsers { !$0.contains { $0.id == bobID } }
                try await ada.send(.call(to: bobID, roomId: "call-4"))
                #expect(try await ada.nextError().code == .unknownPeer)
                await ada.close()
            }
        }
    }
}
