
import Foundation
import SignalingProtocol
@testable import SignalingServer
import Testing
import WebRTCTypes

extension ServerTests {
    @Suite("Relay: payloads pass through as sent, stamped with the true sender", .timeLimit(.minutes(2)))
    struct RelayTests {
        @Test("an offer, an answer and candidates keep their payload's bytes and get the sender's from, whatever from the client wrote")
        func payloadAsSentWithTrueSender() async throws {
            try await TestServer.run { server in
                let ada = try await server.connect()
                let bob = try await server.connect()
                _ = try await ada.join("relay", capacity: 2)
                _ = try await bob.join("relay", capacity: 2)

                let offer = #"{"sdp":"v=0\r\ns=relay\r\n", "type":"offer"}"#
                try await ada.sendRaw(#"{"from":"\#(bob.id)","type":"offer","to":"\#(bob.id)","offer":\#(offer)}"#)
                #expect(try await bob.nextText("offer") == #"{"type":"offer","from":"\#(ada.id)","offer":\#(offer)}"#)

                let answer = #"{"type":"answer","sdp":"v=0\r\n"}"#
                try await bob.sendRaw(#"{"type":"answer","answer":\#(answer),"from":"\#(ada.id)"}"#)
                #expect(try await ada.nextText("answer") == #"{"type":"answer","from":"\#(bob.id)","answer":\#(answer)}"#)

                let candidate = #"{"candidate":"candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"Ab3d"}"#
                try await ada.sendRaw(#"{"type":"ice-candidate","from":"forged","candidate":\#(candidate)}"#)
                #expect(try await bob.nextText("ice-candidate") == #"{"type":"ice-candidate","from":"\#(ada.id)","candidate":\#(candidate)}"#)
                try await ada.sendRaw(#"{"type":"ice-candidate","to":"\#(bob.id)","candidate":null}"#)
                #expect(try await bob.next("ice-candidate") == .iceCandidate(from: ada.id, candidate: nil))
                await ada.close()
                await bob.close()
            }
        }

        @Test("a payload not in the relayed form is re-encoded: a candidate's missing sdpMid and sdpMLineIndex become null, extras are dropped")
        func reencodedWhenNotInRelayedForm() async throws {
            try await TestServer.run { server in
                let ada = try await server.connect()
                let bob = try await server.connect()
                _ = try await ada.join("reencode", capacity: 2)
                _ = try await bob.join("reencode", capacity: 2)

                try await ada.sendRaw(#"{"type":"ice-candidate","candidate":{"candidate":"candidate:1"}}"#)
                let candidate = try await bob.nextText("ice-candidate")
                #expect(candidate.contains(#""sdpMid":null"#) && candidate.contains(#""sdpMLineIndex":null"#))
                #expect(try ServerMessage.decode(candidate) == .iceCandidate(
                    from: ada.id, candidate: RTCIceCandidateInit(candidate: "candidate:1", sdpMid: nil, sdpMLineIndex: nil)
                ))

                try await ada.sendRaw(#"{"type":"offer","offer":{"type":"offer","sdp":"v=0","secret":"x"}}"#)
                let offer = try await bob.nextText("offer")
                #expect(!offer.contains("secret"))
                #expect(try ServerMessage.decode(offer) == .offer(from: ada.id, offer: RTCSessionDescriptionInit(type: .offer, sdp: "v=0")))
                await ada.close()
                await bob.close()
            }
        }

        @Test("relays are checked as before: not in a room, unknown peer, invalid SDP type, ambiguous target")
        func routingRulesStillApply() async throws {
            try await TestServer.run { server in
                let ada = try await server.connect()
                let bob = try await server.connect()
                let cid = try await server.connect()
                let offer = #"{"type":"offer","sdp":"v=0"}"#
                try await ada.sendRaw(#"{"type":"offer","to":"\#(bob.id)","offer":\#(offer)}"#)
                #expect(try await ada.nextError().code == .notInRoom)

                _ = try await ada.join("rules")
                _ = try await bob.join("rules")
                try await ada.sendRaw(#"{"type":"offer","to":"\#(cid.id)","offer":\#(offer)}"#)
                #expect(try await ada.nextError().code == .unknownPeer)
                try await ada.sendRaw(#"{"type":"offer","to":"\#(ada.id)","offer":\#(offer)}"#)
                #expect(try await ada.nextError().code == .unknownPeer)
                try await ada.sendRaw(#"{"type":"offer","to":"\#(bob.id)","offer":{"type":"bogus","sdp":"v=0"}}"#)
                #expect(try await ada.nextError().code == .invalidMessage)
                _ = try await cid.join("rules")
                try await ada.sendRaw(#"{"type":"offer","offer":\#(offer)}"#)
                #expect(try await ada.nextError().code == .invalidMessage)
                // None of these reached anyone.
                #expect(try await bob.received("offer").isEmpty)
                #expect(try await cid.received("offer").isEmpty)
                for peer in [ada, bob, cid] { await peer.close() }
            }
        }

        @Test("a client that stops reading is disconnected once 2048 messages wait for it; its room carries on")
        func stuckClientIsDisconnected() async throws {
            try await TestServer.run({
                $0.rateLimitPerSecond = 1_000_000
                $0.rateLimitBurst = 1_000_000
                $0.resumeGrace = .zero
            }) { server in
                let sender = try await server.connect()
                let stuck = try await RawWebSocket.connect(port: server.port, path: "/ws", receiveBuffer: 4096)
                _ = try await sender.join("stuck")
                try stuck.send(.joinRoom(roomId: "stuck", name: nil, capacity: nil))
                _ = try await stuck.next("room-joined")
                _ = try await sender.next("user-joined")
                // Enough to fill the socket's buffers (the server's send buffer grows to 4 MB; the reader's is fixed
                // small) and then the server's queue for the reader that never reads: 4,048 frames of 4 KB.
                let sdpText = String(repeating: "a=x\\r\\n", count: 600)
                let frame = #"{"type":"offer","to":"\#(stuck.id)","offer":{"type":"offer","sdp":"\#(sdpText)"}}"#
                for _ in 0..<(ClientHandle.queueLimit + 2_000) {
                    try await sender.sendRaw(frame)
                }
                #expect(try await sender.next("user-disconnected", timeout: .seconds(20)) == .userDisconnected(from: stuck.id))
                stuck.abort()
                await sender.close()
            }
        }
    }
}

extension ServerTests {
    @Suite("Presence under a burst of arrivals", .timeLimit(.minutes(2)))
    struct PresenceBurstTests {
        @Test("60 clients arriving at once get a few complete lists, the last one listing everyone")
        func burstIsCoalesced() async throws {
            try await TestServer.run { server in
                let watcher = try await server.connect()
                let others = try await withThrowingTaskGroup(of: WSPeer.self) { group in
                    for _ in 0..<60 { group.addTask { try await server.connect() } }
                    return try await group.reduce(into: [WSPeer]()) { $0.append($1) }
                }
                let everyone = Set([watcher.id] + others.map(\.id))
                var lists: [[OnlineUser]] = []
                while lists.last.map({ Set($0.map(\.id)) }) != everyone {
                    guard case .onlineUsers(let users) = try await watcher.next("online-users") else { continue }
                    lists.append(users)
                }
                // One list per arrival would be 61; coalescing sends far fewer, and nothing after the final state.
                #expect(lists.count < 30)
                #expect(try await watcher.received("online-users", within: .milliseconds(400)).isEmpty)
                await watcher.close()
                for peer in others { await peer.close() }
            }
        }
    }
}
