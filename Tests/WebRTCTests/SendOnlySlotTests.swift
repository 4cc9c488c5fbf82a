import GStreamer
import Testing
@testable import WebRTC
import WebRTCDemo
import WebRTCTypes

/// What a relay needs of `WebRTCPeer`: m-lines whose mids it chooses before offering, send-only tracks
/// announced under a stream id of its choosing, and a track that stops (silent, still send-only: 1.22
/// refuses to make an inactive m-line active again) and later carries another stream on the same m-line,
/// so a session does not grow with every publisher.
@Suite("Send-only slots: chosen mids, msid, stop and reuse", .timeLimit(.minutes(1)))
struct SendOnlySlotTests {
    init() throws { try GStreamer.initialize() }

    /// One offer/answer round between `offerer` and `answerer` (no ICE needed: only the descriptions).
    func negotiate(_ offerer: WebRTCPeer, _ answerer: WebRTCPeer) async throws -> SDPSummary {
        let offer = try await offerer.createOffer()
        try await offerer.setLocalDescription(offer)
        try await answerer.setRemoteDescription(offer)
        let answer = try await answerer.createAnswer()
        try await answerer.setLocalDescription(answer)
        try await offerer.setRemoteDescription(answer)
        return SDPSummary(offer.sdp)
    }

    @Test("the offer uses the chosen mids and msid; a stopped track keeps its m-line and carries the next stream")
    func slotLifecycle() async throws {
        let pipeline = try Pipeline(name: "slots")
        let media = try TestMedia(pipeline: pipeline, prefix: "slots-a")
        let other = try TestMedia(pipeline: pipeline, prefix: "slots-b")
        let relay = try WebRTCPeer(configuration: WebRTCConfiguration(name: "slots-relay"), pipeline: pipeline)
        let member = try WebRTCPeer(configuration: WebRTCConfiguration(name: "slots-member"), pipeline: pipeline)
        try pipeline.setState(.playing)
        defer { _ = try? pipeline.setState(.null) }

        let ownAudio = try await relay.addReceiveOnly(.opus, mid: "0")
        let ownVideo = try await relay.addReceiveOnly(.vp8, mid: "1")
        let forwarded = try await relay.addTrack(.vp8, from: media.videoTee, streamID: "ada", sendOnly: true, mid: "2")
        let mids = [await relay.mid(of: ownAudio), await relay.mid(of: ownVideo), await relay.mid(of: forwarded)]
        #expect(mids == ["0", "1", "2"])
        await #expect(throws: WebRTCError.self) { try await relay.addTrack(.opus, from: media.audioTee, mid: "9") }

        let first = try await negotiate(relay, member)
        #expect(first.mids == ["0", "1", "2"])
        #expect(first.media.map(\.direction) == ["recvonly", "recvonly", "sendonly"])
        let firstOffer = try #require(await relay.localDescription?.sdp)
        #expect(firstOffer.contains(" msid:ada "), "the forwarded track's msid names its publisher")

        try await relay.setSource(of: forwarded, to: nil, streamID: nil)
        let stopped = try await negotiate(relay, member)
        #expect(stopped.mids == ["0", "1", "2"])
        #expect(stopped.media[2].direction == "sendonly")

        try await relay.setSource(of: forwarded, to: other.videoTee, streamID: "bob")
        let reused = try await negotiate(relay, member)
        #expect(reused.mids == ["0", "1", "2"], "the same m-line carries the next stream")
        #expect(reused.media[2].direction == "sendonly")
        let reusedOffer = try #require(await relay.localDescription?.sdp)
        #expect(reusedOffer.contains(" msid:bob ") && !reusedOffer.contains(" msid:ada "))

        await relay.close()
        await member.close()
    }
}
