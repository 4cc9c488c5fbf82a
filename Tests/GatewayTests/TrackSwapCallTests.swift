import Foundation
import Gateway
import GStreamer
import Synchronization
import Testing
import WebRTC

/// A real call (two webrtcbins over the network namespace's interface, scripts/netns-run) while the
/// sender swaps its video source: no renegotiation, and the receiver's decoder never starves.
@Suite("Track swap during a call", .serialized, .timeLimit(.minutes(2)))
struct TrackSwapCallTests {
    init() throws { try GStreamer.initialize() }

    final class CallWatch: Sendable {
        struct State {
            var negotiationNeeded = 0
            var connected = false
            var failed: String?
            var video: DecodedFrameCounter?
            var audio: DecodedFrameCounter?
        }
        let state = Mutex(State())
    }

    /// Passes candidates between the peers, decodes what B receives and counts A's negotiation-needed events.
    func watch(_ peer: WebRTCPeer, other: WebRTCPeer, isSender: Bool, into watch: CallWatch) -> Task<Void, Never> {
        Task {
            for await event in peer.events {
                switch event {
                case .localCandidate(let candidate):
                    try? await other.addICECandidate(candidate)
                case .negotiationNeeded where isSender:
                    watch.state.withLock { $0.negotiationNeeded += 1 }
                case .connectionState(.connected):
                    watch.state.withLock { $0.connected = true }
                case .connectionState(.failed):
                    watch.state.withLock { $0.failed = "\(isSender ? "A" : "B") failed" }
                case .remoteTrack(let track) where !isSender:
                    if let counter = try? track.decode(in: peer.pipeline) {
                        watch.state.withLock { if track.kind == .video { $0.video = counter } else { $0.audio = counter } }
                    }
                default:
                    break
                }
            }
        }
    }

    @Test("swapping the video source 3 times mid-call makes no new offer and B's decoded frames never stall for 0.5 s")
    func swapsDuringCall() async throws {
        let pipeline = try Pipeline(name: "swapcall")
        defer { _ = try? pipeline.setState(.null) }
        let library = try PipelineLibrary()
        let video = try MediaInput(kind: .video, source: "test", library: library, pipeline: pipeline, options: .small(name: "swapcall-video"))
        let audio = try MediaInput(kind: .audio, source: "test", library: library, pipeline: pipeline, options: .small(name: "swapcall-audio"))
        try pipeline.setState(.playing)
        let a = try WebRTCPeer(configuration: WebRTCConfiguration(name: "swapcall-a"), pipeline: pipeline)
        let b = try WebRTCPeer(configuration: WebRTCConfiguration(name: "swapcall-b"), pipeline: pipeline)
        let watchState = CallWatch()
        let tasks = [watch(a, other: b, isSender: true, into: watchState), watch(b, other: a, isSender: false, into: watchState)]
        defer { tasks.forEach { $0.cancel() } }
        try await a.addTrack(video.codec, from: video.tee)
        try await a.addTrack(audio.codec, from: audio.tee)

        let offer = try await a.createOffer()
        try await a.setLocalDescription(offer)
        try await b.setRemoteDescription(offer)
        let answer = try await b.createAnswer()
        try await b.setLocalDescription(answer)
        try await a.setRemoteDescription(answer)

        // Connected and decoding.
        let deadline = ContinuousClock.now + .seconds(20)
        while watchState.state.withLock({ ($0.video?.count ?? 0) < 15 || ($0.audio?.count ?? 0) < 10 }) {
            if let failure = watchState.state.withLock({ $0.failed }) { Issue.record("\(failure)"); return }
            guard ContinuousClock.now < deadline else { Issue.record("B decoded no frames within 20 s"); return }
            try await Task.sleep(for: .milliseconds(20))
        }
        let video0 = try #require(watchState.state.withLock { $0.video })
        let audio0 = try #require(watchState.state.withLock { $0.audio })
        let offersBefore = watchState.state.withLock { $0.negotiationNeeded }

        // Sample B's decoded frame count every 20 ms while A swaps 3 times.
        let sampler = Task { () -> (longestStall: Duration, samples: Int) in
            var last = video0.count, lastChange = ContinuousClock.now, longest = Duration.zero, samples = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(20))
                samples += 1
                let now = ContinuousClock.now, count = video0.count
                if count != last { last = count; lastChange = now }
                longest = max(longest, now - lastChange)
            }
            return (longest, samples)
        }
        let framesBefore = video0.count, audioBefore = audio0.count
        for source in ["none", "test", "none"] {
            try await Task.sleep(for: .milliseconds(700))
            let start = ContinuousClock.now
            try await video.swap(to: source)
            print("call: swap to \(source) took \(seconds(ContinuousClock.now - start))")
        }
        try await Task.sleep(for: .milliseconds(700))
        sampler.cancel()
        let (stall, samples) = await sampler.value
        let offersAfter = watchState.state.withLock { $0.negotiationNeeded }
        print("call: B decoded \(video0.count - framesBefore) video frames and \(audio0.count - audioBefore) audio frames during 3 swaps; longest stall \(seconds(stall)) over \(samples) samples; negotiation-needed before \(offersBefore), after \(offersAfter); A's keyframes \(video.statistics.keyframes)")
        #expect(offersBefore >= 1, "the initial negotiation was seen")
        #expect(offersAfter == offersBefore, "no new offer after the swaps")
        #expect(stall < .milliseconds(500))
        #expect(video0.count - framesBefore > 60)
        #expect(audio0.count > audioBefore)
        #expect(video.statistics.timestampRegressions == 0)
        await a.close()
        await b.close()
    }
}
