import Foundation
import Gateway
import GStreamer
import Synchronization
import Testing
import WebRTC
import WebRTCDemo

/// Two gateways in one room through a real vcall-server: signaling, mesh negotiation and media.
@Suite("Calls through vcall-server", .serialized)
struct CallTests {
    init() throws { try GStreamer.initialize() }

    final class Counters: Sendable {
        let counters = Mutex<[String: [DecodedFrameCounter]]>([:])
    }

    /// A gateway in its own pipeline sending test media, decoding what it receives.
    final class TestGateway: Sendable {
        let call: Call
        let pipeline: Pipeline
        let decoded = Counters()
        let task: Task<Void, Never>
        let watcher: Task<Void, Never>

        init(room: String, name: String, server: TestServer, firstOfferTimeout: Duration = .seconds(5)) throws {
            pipeline = try Pipeline(name: "\(name)-call")
            let media = try TestMedia(pipeline: pipeline, prefix: name)
            try pipeline.setState(.playing)
            var configuration = CallConfiguration(room: room, serverURL: server.webSocketURL, name: name)
            configuration.firstOfferTimeout = firstOfferTimeout
            let call = Call(configuration: configuration, pipeline: pipeline,
                            tracks: [OutgoingTrack(codec: .vp8, tee: media.videoTee), OutgoingTrack(codec: .opus, tee: media.audioTee)])
            self.call = call
            let pipeline = self.pipeline
            let decoded = self.decoded
            watcher = Task {
                for await event in call.events {
                    if case .remoteTrack(let participant, _, let track) = event, let counter = try? track.decode(in: pipeline) {
                        decoded.counters.withLock { $0[participant, default: []].append(counter) }
                    }
                }
            }
            task = Task { await call.run() }
        }

        func frames(from participant: String, kind: MediaKind) -> Int {
            decoded.counters.withLock { $0[participant]?.filter { $0.kind == kind }.map(\.count).reduce(0, +) ?? 0 }
        }

        func participantIDs() async -> [String] { await call.status().members.map(\.id) }

        func stop() async {
            await call.leave()
            await task.value
            watcher.cancel()
            _ = try? pipeline.setState(.null)
        }
    }

    @Test("two gateways in a room connect and each decodes the other's video and audio; only the newcomer offers",
          .timeLimit(.minutes(1)))
    func twoGateways() async throws {
        let server = try await TestServer.start()
        let (alice, bob) = try await connectPair(room: "gw-pair", server: server, aliceFirstOfferTimeout: .seconds(5))
        #expect(await bob.call.offersSent == 1)
        #expect(await alice.call.offersSent == 0)

        // Bob leaves: Alice's mesh shrinks to nobody.
        await bob.stop()
        #expect(await eventually(within: .seconds(5)) { await alice.participantIDs().isEmpty })
        await alice.stop()
        await server.stop()
    }

    /// Alice offers the instant Bob joins while Bob, the newcomer, offers too: glare. The polite side
    /// (the higher id) answers with a fresh peer; the impolite side keeps its offer.
    @Test("an offer collision resolves and both directions carry media", .timeLimit(.minutes(1)))
    func offerCollision() async throws {
        let server = try await TestServer.start()
        let (alice, bob) = try await connectPair(room: "gw-glare", server: server, aliceFirstOfferTimeout: .zero)
        let offers = (await alice.call.offersSent, await bob.call.offersSent)
        #expect(offers.1 == 1 && offers.0 <= 1, "offers: alice \(offers.0), bob \(offers.1)")
        await bob.stop()
        await alice.stop()
        await server.stop()
    }

    /// vcall-server goes away mid-call and comes back on the same port and data folder: both gateways
    /// resume their ids, rejoin, keep their peer connections (no new offer) and media never stops.
    @Test("after a server restart both gateways resume their ids and keep their peer connections", .timeLimit(.minutes(1)))
    func serverRestart() async throws {
        let server = try await TestServer.start()
        let (alice, bob) = try await connectPair(room: "gw-restart", server: server, aliceFirstOfferTimeout: .seconds(5))
        let aliceID = try #require(await alice.call.status().selfID)
        let bobID = try #require(await bob.call.status().selfID)
        await server.stop(keepingData: true)
        #expect(await eventually(within: .seconds(5)) { await !alice.call.status().signalingConnected })

        // Media is peer to peer: it goes on without the server.
        let before = bob.frames(from: aliceID, kind: .video)
        #expect(await eventually(within: .seconds(5)) { bob.frames(from: aliceID, kind: .video) > before + 30 })

        let restarted = try await TestServer.start(port: server.port, dataDirectory: server.dataDirectory)
        #expect(await eventually(within: .seconds(20)) {
            let (a, b) = (await alice.call.status(), await bob.call.status())
            return a.signalingConnected && b.signalingConnected && a.inRoom && b.inRoom
        })
        #expect(await alice.call.status().selfID == aliceID)
        #expect(await bob.call.status().selfID == bobID)
        #expect(await alice.participantIDs() == [bobID])
        #expect(await bob.participantIDs() == [aliceID])
        #expect(await alice.call.offersSent == 0)
        #expect(await bob.call.offersSent == 1)
        let after = alice.frames(from: bobID, kind: .video)
        #expect(await eventually(within: .seconds(5)) { alice.frames(from: bobID, kind: .video) > after + 30 })
        await bob.stop()
        await alice.stop()
        await restarted.stop()
    }

    /// Starts Alice, then Bob in the same room, and waits until each decodes the other's video and audio.
    private func connectPair(room: String, server: TestServer, aliceFirstOfferTimeout: Duration) async throws -> (TestGateway, TestGateway) {
        let alice = try TestGateway(room: room, name: "alice", server: server, firstOfferTimeout: aliceFirstOfferTimeout)
        #expect(await eventually { await alice.call.status().selfID != nil })
        let bob = try TestGateway(room: room, name: "bob", server: server)
        #expect(await eventually {
            let (a, b) = (await alice.participantIDs(), await bob.participantIDs())
            return a.count == 1 && b.count == 1
        })
        let aliceID = try #require(await alice.call.status().selfID)
        let bobID = try #require(await bob.call.status().selfID)
        let carried = await eventually {
            alice.frames(from: bobID, kind: .video) > 30 && alice.frames(from: bobID, kind: .audio) > 30
                && bob.frames(from: aliceID, kind: .video) > 30 && bob.frames(from: aliceID, kind: .audio) > 30
        }
        #expect(carried, "alice got \(alice.frames(from: bobID, kind: .video)) video frames, bob \(bob.frames(from: aliceID, kind: .video))")
        #expect(await alice.call.status().members.map(\.connectionState) == [.connected])
        #expect(await bob.call.status().members.map(\.connectionState) == [.connected])
        return (alice, bob)
    }
}
