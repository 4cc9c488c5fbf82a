
import Foundation
import HTTPTypes
import SignalingProtocol
@testable import SignalingServer
import Testing
import WebRTCTypes

extension ServerTests {
    @Suite("Abuse: floods of malformed frames", .timeLimit(.minutes(2)))
    struct AbuseTests {
        /// Frames a hostile or broken client might send.
        static func randomFrame(_ rng: inout some RandomNumberGenerator, victims: [String]) -> String {
            let target = victims.randomElement(using: &rng) ?? "x"
            let choices: [String] = [
                "", "{", "}", "null", "[]", "[{}]", "\"string\"", "12345", "true", "{\"type\":null}",
                #"{"type":"offer"}"#, #"{"type":"offer","offer":null}"#, #"{"type":"offer","offer":{"type":1,"sdp":[]}}"#,
                #"{"type":"join-room","roomId":{"a":1}}"#, #"{"type":"join-room","roomId":"../../etc"}"#,
                #"{"type":"join-room","roomId":"victim-room"}"#, #"{"type":"join-room","roomId":"flood","capacity":-5}"#,
                #"{"type":"join-room","roomId":"flood","capacity":99999999999999999999}"#,
                #"{"type":"leave-room"}"#, #"{"type":"ice-candidate","candidate":{"candidate":5}}"#,
                #"{"type":"offer","to":"\#(target)","from":"\#(target)","offer":{"type":"offer","sdp":"forged"}}"#,
                #"{"type":"call","to":"\#(target)","roomId":"victim-room"}"#, #"{"type":"hangup","to":"\#(target)"}"#,
                #"{"type":"media-state","audio":"loud"}"#, #"{"type":"\u0000\u0001"}"#, "\u{FEFF}{}",
                String(repeating: "[", count: 10_000), String(repeating: "{\"a\":", count: 2_000),
                "{\"type\":\"offer\",\"offer\":{\"type\":\"offer\",\"sdp\":\"" + String(repeating: "x", count: 70_000) + "\"}}",
                String((0..<200).map { _ in Character(UnicodeScalar(UInt8.random(in: 32...126, using: &rng))) }),
            ]
            return choices.randomElement(using: &rng)!
        }

        @Test("20 connections × 500 malformed frames: the server stays up, answers errors, stamps true senders, and a call elsewhere keeps working")
        func floodDoesNotDisturbOtherRooms() async throws {
            try await TestServer.run { server in
                // The call that must keep working.
                let alice = try await server.connect()
                let bob = try await server.connect()
                _ = try await alice.join("victim-room", capacity: 2)
                _ = try await bob.join("victim-room", capacity: 2)

                let attackers = try await withThrowingTaskGroup(of: WSPeer.self) { group in
                    for _ in 0..<20 { group.addTask { try await server.connect() } }
                    return try await group.reduce(into: [WSPeer]()) { $0.append($1) }
                }
                let victims = [alice.id, bob.id] + attackers.map(\.id)

                let flood = Task {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for (index, attacker) in attackers.enumerated() {
                            group.addTask {
                                var rng = SplitMix(seed: UInt64(index + 1))
                                for _ in 0..<500 {
                                    try await attacker.sendRaw(Self.randomFrame(&rng, victims: victims))
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                }

                // Meanwhile the call negotiates: offer, answer, candidates, each stamped with the true sender.
                for round in 0..<10 {
                    try await alice.send(.offer(to: bob.id, offer: RTCSessionDescriptionInit(type: .offer, sdp: sdp("offer-\(round)"))))
                    try await bob.send(.answer(to: nil, answer: RTCSessionDescriptionInit(type: .answer, sdp: sdp("answer-\(round)"))))
                    try await alice.send(.iceCandidate(to: nil, candidate: RTCIceCandidateInit(candidate: "candidate:\(round)", sdpMid: "0", sdpMLineIndex: 0)))
                    var sawOffer = false
                    while !sawOffer {
                        // Attackers may forge offers to bob from alice's id; the server stamps their own id instead.
                        guard case .offer(let from, let offer) = try await bob.next("offer") else { continue }
                        if offer.sdp == "forged" {
                            #expect(from != alice.id && from != bob.id)
                        } else {
                            #expect(from == alice.id)
                            #expect(offer.sdp == sdp("offer-\(round)"))
                            sawOffer = true
                        }
                    }
                    #expect(try await alice.next("answer") == .answer(from: bob.id, answer: RTCSessionDescriptionInit(type: .answer, sdp: sdp("answer-\(round)"))))
                    #expect(try await bob.next("ice-candidate") == .iceCandidate(from: alice.id, candidate: RTCIceCandidateInit(candidate: "candidate:\(round)", sdpMid: "0", sdpMLineIndex: 0)))
                }
                try await flood.value

                // Every attacker got error answers and is still connected: after its bucket refills, a join works.
                for attacker in attackers {
                    let errors = try await attacker.received("error", within: .milliseconds(20))
                    #expect(!errors.isEmpty)
                }
                // The server may still be working through a backlog that empties the bucket again, so retry.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for attacker in attackers {
                        group.addTask {
                            for attempt in 1...20 {
                                try await attacker.send(.joinRoom(roomId: "after-\(attacker.id)", name: nil, capacity: nil))
                                if (try? await attacker.next("room-joined", timeout: .seconds(2))) != nil { return }
                                if attempt == 20 { Issue.record("\(attacker.id) could not join after the flood") }
                            }
                        }
                    }
                    try await group.waitForAll()
                }

                // The server is healthy and its metrics saw the errors.
                #expect(try await server.request(.get, "/healthz").status == .ok)
                let metrics = try await server.request(.get, "/metrics").text
                #expect(metrics.contains(#"vcall_errors_total{code="bad-json"}"#))
                #expect(!metrics.contains(#"vcall_errors_total{code="bad-json"} 0"#))
                // The victim room still holds its two members.
                let rooms = try await server.request(.get, "/api/rooms").text
                #expect(rooms.contains(alice.id) && rooms.contains(bob.id))

                for peer in attackers + [alice, bob] { await peer.close() }
            }
        }

        @Test("errors flow back to a flooding client, and rate limiting answers rate-limited")
        func floodGetsErrors() async throws {
            try await TestServer.run { server in
                let attacker = try await server.connect()
                for _ in 0..<1000 { try await attacker.sendRaw("{bad") }
                let errors = try await attacker.received("error", within: .seconds(1))
                let codes = Set(errors.compactMap { if case .error(let code, _) = $0 { code } else { nil } })
                #expect(codes == [.badJSON, .rateLimited])
                #expect(errors.count >= 200)
                await attacker.close()
            }
        }
    }
}

/// A small seeded generator so a failing flood can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
