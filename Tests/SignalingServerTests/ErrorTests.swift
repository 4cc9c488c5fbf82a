
import Foundation
import HTTPTypes
import SignalingProtocol
@testable import SignalingServer
import Testing
import WebRTCTypes

extension ServerTests {
    @Suite("Every error code over a live socket; the connection stays open", .timeLimit(.minutes(1)))
    struct ErrorTests {
        /// After an error the same connection still works.
        func stillWorks(_ peer: WSPeer) async throws {
            let room = "alive-\(UUID().uuidString.prefix(8))"
            _ = try await peer.join(room)
            try await peer.send(.leaveRoom)
        }

        @Test("bad-json for text that is not JSON and for binary frames")
        func badJSON() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                try await a.sendRaw("{not json")
                let error = try await a.nextError()
                #expect(error.code == .badJSON)
                #expect(!error.message.isEmpty)
                try await a.sendBinary([0xff, 0x00, 0x7b])
                #expect(try await a.nextError().code == .badJSON)
                try await stillWorks(a)
                await a.close()
            }
        }

        @Test("unknown-type for a type the server does not know")
        func unknownType() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                try await a.sendRaw(#"{"type":"teleport","roomId":"x"}"#)
                let error = try await a.nextError()
                #expect(error.code == .unknownType)
                #expect(error.message.contains("join-room"))
                try await stillWorks(a)
                await a.close()
            }
        }

        @Test("invalid-message for missing fields, wrong types and bad room ids")
        func invalidMessage() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                for text in [
                    #"{"type":"join-room"}"#, #"{"type":"join-room","roomId":"has space"}"#, #"{"type":"media-state","audio":"yes","video":true,"screen":false}"#,
                    #"{"roomId":"x"}"#, #"{"type":"offer","offer":{"type":"offer"}}"#,
                ] {
                    try await a.sendRaw(text)
                    #expect(try await a.nextError().code == .invalidMessage, "\(text)")
                }
                try await stillWorks(a)
                await a.close()
            }
        }

        @Test("too-large for a message over the limit, and the socket stays open")
        func tooLarge() async throws {
            try await TestServer.run({ $0.maxMessageBytes = 4096 }) { server in
                let a = try await server.connect()
                let b = try await server.connect()
                _ = try await a.join("big")
                _ = try await b.join("big")
                let huge = String(repeating: "a", count: 5000)
                try await a.send(.offer(to: nil, offer: RTCSessionDescriptionInit(type: .offer, sdp: huge)))
                let error = try await a.nextError()
                #expect(error.code == .tooLarge)
                #expect(error.message.contains("4096"))
                #expect(try await b.received("offer").isEmpty)
                // A default 64 KiB server accepts an SDP larger than Hummingbird's 16 KiB default frame size.
                try await a.send(.offer(to: nil, offer: RTCSessionDescriptionInit(type: .offer, sdp: String(repeating: "b", count: 3000))))
                _ = try await b.next("offer")
                await a.close()
                await b.close()
            }
        }

        @Test("a 40 KB offer passes under the default limit and a 100 KB one is too-large")
        func defaultLimitAboveFrameDefault() async throws {
            try await TestServer.run { server in
                let a = try await server.connect()
                let b = try await server.connect()
                _ = try await a.join("sdp")
                _ = try await b.join("sdp")
                let bigSDP = String(repeating: "a=candidate:x\r\n", count: 40_000 / 15)
                try await a.send(.offer(to: nil, offer: RTCSessionDescriptionInit(type: .offer, sdp: bigSDP)))
                #expect(try await b.next("offer") == .offer(from: a.id, offer: RTCSessionDescriptionInit(type: .offer, sdp: bigSDP)))
                try await a.send(.offer(to: nil, offer: RTCSessionDescriptionInit(type: .offer, sdp: String(repeating: "x", count: 100_000))))
                #expect(try await a.nextError().code == .tooLarge)
                try await stillWorks(a)
                await a.close()
                await b.close()
            }
        }

        @Test("rate-limited when a connection floods, and it recovers")
        func rateLimited() async throws {
            try await TestServer.run({
                $0.rateLimitBurst = 5
                $0.rateLimitPerSecond = 5
            }) { server in
                let a = try await server.connect()
                for _ in 0..<20 { try await a.sendRaw(#"{"type":"leave-room"}"#) }
                let errors = try await a.received("error", within: .milliseconds(500))
                let codes = errors.compactMap { if case .error(let code, _) = $0 { code } else { nil } }
                // The burst of 5 passes (a few more if sending took long enough to refill the bucket); the rest is dropped.
                #expect((5..<20).contains(codes.filter { $0 == .notInRoom }.count))
                #expect(codes.filter { $0 == .rateLimited }.count >= 1)
                try await Task.sleep(for: .milliseconds(600))
                try await stillWorks(a)
                await a.close()
            }
        }

        @Test("unauthorized when login is required and a guest joins or calls")
        func unauthorized() async throws {
            try await TestServer.run({ $0.requireLogin = true }) { server in
                let guest = try await server.connect()
                try await guest.send(.joinRoom(roomId: "private", name: nil, capacity: nil))
                let error = try await guest.nextError()
                #expect(error.code == .unauthorized)
                #expect(error.message.contains("token"))
                try await guest.send(.call(to: "someone", roomId: "r"))
                #expect(try await guest.nextError().code == .unauthorized)
                await guest.close()
            }
        }
    }
}
