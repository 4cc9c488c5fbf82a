import Foundation
import GStreamer
import SignalingProtocol
import Synchronization
import Testing
@testable import WebRTC
import WebRTCDemo
import WebRTCTypes

/// A sender of test media and a receive-only peer; candidates go through the signaling protocol's JSON.
private final class WirePair: Sendable {
    let sender: WebRTCPeer
    let receiver: WebRTCPeer
    let senderPipeline: Pipeline
    let tracks = Mutex<[ReceivedTrack]>([])
    /// The candidates as they arrived at the receiver, decoded from the wire.
    let candidatesAtReceiver = Mutex<[RTCIceCandidateInit]>([])
    private let tasks = Mutex<[Task<Void, Never>]>([])

    init(name: String) async throws {
        senderPipeline = try Pipeline(name: "\(name)-sender")
        let media = try TestMedia(pipeline: senderPipeline, prefix: name)
        try senderPipeline.setState(.playing)
        sender = try WebRTCPeer(configuration: WebRTCConfiguration(name: "\(name)-a"), pipeline: senderPipeline)
        receiver = try WebRTCPeer(configuration: WebRTCConfiguration(name: "\(name)-b"))
        try await sender.addTrack(.vp8, from: media.videoTee)
        try await sender.addTrack(.opus, from: media.audioTee)
        relay(from: sender, to: receiver, atReceiver: true)
        relay(from: receiver, to: sender, atReceiver: false)
        let offer = try await sender.createOffer()
        try await sender.setLocalDescription(offer)
        try await receiver.setRemoteDescription(offer)
        let answer = try await receiver.createAnswer()
        try await receiver.setLocalDescription(answer)
        try await sender.setRemoteDescription(answer)
    }

    /// Local candidates of `from` leave as a client's `ice-candidate` message and arrive at `to` as the
    /// server's (`atReceiver`: `to` is the receiver); the receiver's own events bring its tracks.
    private func relay(from: WebRTCPeer, to: WebRTCPeer, atReceiver: Bool) {
        let task = Task { [weak self] in
            for await event in from.events {
                switch event {
                case .localCandidate(let candidate):
                    let sent = Data(ClientMessage.iceCandidate(to: "peer", candidate: candidate).jsonString().utf8)
                    guard let object = try? JSONSerialization.jsonObject(with: sent) as? [String: Any],
                          let inner = object["candidate"] else { continue }
                    let relayed: [String: Any] = ["type": "ice-candidate", "from": "peer", "candidate": inner]
                    guard let data = try? JSONSerialization.data(withJSONObject: relayed),
                          case .iceCandidate(_, let arrived)? = try? ServerMessage.decode(String(decoding: data, as: UTF8.self)) else {
                        Issue.record("the candidate did not survive the wire")
                        continue
                    }
                    if atReceiver, let arrived { self?.candidatesAtReceiver.withLock { $0.append(arrived) } }
                    try? await to.addICECandidate(arrived)
                case .remoteTrack(let track) where !atReceiver:  // events of the receiver itself
                    self?.tracks.withLock { $0.append(track) }
                default:
                    break
                }
            }
        }
        tasks.withLock { $0.append(task) }
    }

    func waitForVideoTrack(timeout: Duration = .seconds(20)) async throws -> ReceivedTrack {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let video = tracks.withLock({ $0.first { $0.kind == .video } }) { return video }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw WebRTCError.negotiation("no video track within \(timeout)")
    }

    func close() async {
        await sender.close()
        await receiver.close()
        _ = try? senderPipeline.setState(.null)
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }
}

@Suite("Received tracks: one owner, consumers attach and detach, keyframe requests throttled", .timeLimit(.minutes(2)))
struct ReceivedTrackTests {
    init() throws { try GStreamer.initialize() }

    @Test("the keyframe throttle sends at once, then at most once per interval, and defers the last request instead of dropping it")
    func throttle() async throws {
        let sent = Atomic<Int>(0)
        let throttle = KeyframeRequestThrottle(interval: .milliseconds(300)) { sent.add(1, ordering: .relaxed) }
        for _ in 0..<10 { throttle.request() }
        #expect(sent.load(ordering: .relaxed) == 1, "the first goes out at once; the other nine fold into one deferred request")
        try await Task.sleep(for: .milliseconds(450))
        #expect(sent.load(ordering: .relaxed) == 2, "the deferred request went out at the end of the interval")
        try await Task.sleep(for: .milliseconds(400))
        #expect(sent.load(ordering: .relaxed) == 2, "nothing more was asked")
        throttle.request()
        #expect(sent.load(ordering: .relaxed) == 3, "a request after a quiet interval goes out at once")
        throttle.stop()
        throttle.request()
        try await Task.sleep(for: .milliseconds(400))
        #expect(sent.load(ordering: .relaxed) == 3, "a stopped throttle sends nothing")
        #expect(throttle.sentCount == 3)
    }

    @Test("usernameFragment survives from the wire to the peer and back, and a candidate of another ICE generation is refused")
    func usernameFragmentSurvives() async throws {
        let pair = try await WirePair(name: "ufrag")
        defer { Task { await pair.close() } }
        _ = try await pair.waitForVideoTrack()
        let senderOffer = try #require(await pair.sender.localDescription)
        let ufrag = try #require(SDPSummary(senderOffer.sdp).media.first?.iceUsernameFragment)
        let arrived = pair.candidatesAtReceiver.withLock { $0 }
        #expect(!arrived.isEmpty)
        #expect(arrived.allSatisfy { $0.usernameFragment == ufrag }, "every candidate names the ICE generation of its description: \(arrived)")
        // The same candidate with another generation's fragment (from before an ICE restart, say) is not applied.
        var stale = try #require(arrived.first)
        stale.usernameFragment = "stale\(ufrag)"
        await #expect(throws: WebRTCError.self) { try await pair.receiver.addICECandidate(stale) }
        do {
            try await pair.receiver.addICECandidate(stale)
        } catch .staleCandidate {
        } catch {
            Issue.record("expected staleCandidate, got \(error)")
        }
    }

    @Test("a track nobody claimed for longer than its hold still decodes once attached; two consumers share it; the sender is asked for keyframes at most once a second")
    func lateConsumersAndKeyframeRequests() async throws {
        let pair = try await WirePair(name: "late")
        defer { Task { await pair.close() } }
        let track = try await pair.waitForVideoTrack()
        // Past the hold: the track now drops its data until someone attaches.
        try await Task.sleep(for: ReceivedTrack.holdLimit + .milliseconds(500))
        #expect(track.attachmentCount == 0 && track.keyframeRequestsSent == 0)
        let started = ContinuousClock.now
        let first = try track.decode(in: pair.receiver.pipeline)
        let second = try track.decode(in: pair.receiver.pipeline)
        #expect(track.attachmentCount == 2)
        let deadline = ContinuousClock.now + .seconds(10)
        while (first.count < 10 || second.count < 10) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(first.count >= 10 && second.count >= 10, "both consumers decode: \(first.count), \(second.count)")
        // Attaching asked for a keyframe; both depayloaders asked on every frame until one came. However
        // many asked, one PLI per second at most went out.
        let elapsed = (ContinuousClock.now - started) / .seconds(1)
        #expect(track.keyframeRequestsSent >= 1)
        #expect(Double(track.keyframeRequestsSent) <= elapsed + 1, "\(track.keyframeRequestsSent) requests in \(elapsed) s")
    }

    /// The send branch's webrtcbin request pad was never released (`SendTrack.webrtc` was never assigned),
    /// and its payloader's probe held the payloader's sink pad (a reference cycle: pad → probe → pad).
    @Test("closing a peer releases webrtcbin's request pads and frees the send branch's pads")
    func closeReleasesSendBranch() async throws {
        var options = LoopbackCall.Options()
        options.name = "release"
        let call = try await LoopbackCall.start(options: options)
        _ = try await call.waitForFirstVideoFrame(timeout: .seconds(20))
        #expect(call.sender.webrtc.pads.contains { $0.direction == .sink })
        // The video payloader's sink pad, looked up by its element's name; the element's wrapper is dropped at once.
        let payloaderSink = try #require(call.sender.pipeline.child(named: "release-a-0-rtpvp8pay")?.staticPad("sink"))
        await call.close()
        #expect(call.sender.webrtc.pads.filter { $0.direction == .sink }.isEmpty, "webrtcbin's sink_%u pads were released")
        #expect(payloaderSink.referenceCount == 1, "only this test holds the payloader's sink pad now")
    }
}
