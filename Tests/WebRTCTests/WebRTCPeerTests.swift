import Foundation
import GStreamer
import GStreamerWebRTC
import Testing
@testable import WebRTC
import WebRTCDemo
import WebRTCTypes

/// Real peers over the network namespace's interfaces (scripts/netns-run), real media, bounded time.
@Suite("WebRTCPeer with real media", .timeLimit(.minutes(2)))
struct WebRTCPeerTests {
    init() throws { try GStreamer.initialize() }

    /// Waits until both kinds of frames keep arriving: at least `video` and `audio` decoded.
    func expectFrames(_ call: LoopbackCall, video: Int, audio: Int, within timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while (call.decodedVideoFrames < video || call.decodedAudioFrames < audio) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(call.decodedVideoFrames >= video, "decoded video frames")
        #expect(call.decodedAudioFrames >= audio, "decoded audio frames")
    }

    @Test("two peers in one process: A sends VP8 and Opus, B receives both tracks and decodes frames")
    func pairCarriesVideoAndAudio() async throws {
        var options = LoopbackCall.Options()
        options.name = "pair"
        let call = try await LoopbackCall.start(options: options)
        defer { Task { await call.close() } }
        _ = try await call.waitUntilConnected(timeout: .seconds(15))
        _ = try await call.waitForFirstVideoFrame(timeout: .seconds(15))
        try await expectFrames(call, video: 30, audio: 50)
        let sent = try await call.sender.stats()
        let received = try await call.receiver.stats()
        #expect(sent.packetsSent > 0 && sent.bytesSent > 0)
        #expect(sent.framesSent > 0)
        #expect(received.packetsReceived > 0 && received.bytesReceived > 0)
        #expect(received.framesReceived > 0)
        #expect(received.packetsLost == 0)
        await call.close()
    }

    /// webrtcbin 1.22 negotiates NACK and RTX for a video transceiver with `do-nack`, but sets the receiving
    /// jitterbuffer's `do-retransmission` from whichever bundled stream it visits last (audio): without
    /// WebRTCPeer's own handler, lost video packets are never asked for and each loss waits for a keyframe.
    @Test("video negotiates NACK and RTX in offer and answer, and its receiving jitterbuffer asks for retransmissions; audio's does not; both start fast")
    func videoAsksForRetransmissions() async throws {
        var options = LoopbackCall.Options()
        options.name = "nack"
        let call = try await LoopbackCall.start(options: options)
        _ = try await call.waitUntilConnected(timeout: .seconds(15))
        try await expectFrames(call, video: 10, audio: 10)
        let offer = try #require(await call.sender.localDescription)
        let answer = try #require(await call.receiver.localDescription)
        for (role, description) in [("offer", offer), ("answer", answer)] {
            let summary = SDPSummary(description.sdp)
            let video = try #require(summary.media.first { $0.kind == "video" }, "\(role) has no video")
            let vp8 = try #require(video.payloadType(for: "VP8"), "\(role) has no VP8")
            #expect(video.nackPayloadTypes.contains(vp8), "\(role): no a=rtcp-fb:\(vp8) nack")
            #expect(description.sdp.contains(" rtx/90000") && description.sdp.contains("apt=\(vp8)"), "\(role): no RTX for VP8")
            let audio = try #require(summary.media.first { $0.kind == "audio" }, "\(role) has no audio")
            #expect(audio.nackPayloadTypes.isEmpty, "\(role): NACK on audio")
        }
        // The sender's SSRCs by kind, from its offer's a=ssrc lines.
        let sent = SDPSummary(offer.sdp).media
        func kind(ofSSRC ssrc: UInt32) -> String? { sent.first { $0.ssrcs.contains(ssrc) }?.kind }
        let rtpbin = try #require(call.receiver.webrtc.child(named: "rtpbin") as? Bin)
        var retransmission: [String: Bool] = [:]
        for jitterbuffer in rtpbin.children where jitterbuffer.factoryName == "rtpjitterbuffer" {
            // rtpbin links each jitterbuffer behind its SSRC's demuxer pad, src_<ssrc>.
            let demuxerPad = try #require(jitterbuffer.staticPad("sink")?.peer?.name)
            let ssrc = try #require(UInt32(demuxerPad.dropFirst("src_".count)), "jitterbuffer behind \(demuxerPad)")
            let streamKind = try #require(kind(ofSSRC: ssrc), "SSRC \(ssrc) is not in the offer")
            retransmission[streamKind] = try jitterbuffer.get("do-retransmission").boolValue
            // Each starts on a clean run of packets instead of holding its first one for the whole latency.
            #expect(try jitterbuffer.get("faststart-min-packets").intValue == WebRTCPeer.faststartPackets,
                    "\(streamKind) jitterbuffer without faststart")
        }
        #expect(retransmission == ["video": true, "audio": false])
        #expect(WebRTCPeer.faststartPackets > 0)
        await call.close()
    }

    @Test("candidates delivered before the remote description, shuffled and delayed, still connect")
    func earlyShuffledCandidates() async throws {
        var options = LoopbackCall.Options()
        options.name = "early"
        options.candidatesBeforeDescription = true
        options.maximumCandidateDelay = .milliseconds(40)
        let call = try await LoopbackCall.start(options: options)
        _ = try await call.waitUntilConnected(timeout: .seconds(15))
        try await expectFrames(call, video: 20, audio: 30)
        await call.close()
    }

    @Test("five peer pairs in one process all connect and carry frames")
    func fiveConcurrentPairs() async throws {
        let calls = try await withThrowingTaskGroup(of: LoopbackCall.self) { group in
            for index in 0..<5 {
                group.addTask {
                    var options = LoopbackCall.Options()
                    options.name = "five\(index)"
                    options.width = 160
                    options.height = 120
                    return try await LoopbackCall.start(options: options)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for call in calls {
            _ = try await call.waitUntilConnected(timeout: .seconds(30))
        }
        for call in calls { try await expectFrames(call, video: 15, audio: 25, within: .seconds(30)) }
        for call in calls { await call.close() }
    }

    @Test("an answer keeps the payload types the offer used and stays sendrecv")
    func answerKeepsOfferedPayloadTypes() async throws {
        // A browser may number VP8 and Opus differently from GStreamer's defaults: renumber an offer.
        let offererPipeline = try Pipeline(name: "pt-offerer")
        let offerer = try WebRTCPeer(configuration: WebRTCConfiguration(name: "pt-a"), pipeline: offererPipeline)
        let offererMedia = try TestMedia(pipeline: offererPipeline, prefix: "pt-a")
        try await offerer.addTrack(.vp8, from: offererMedia.videoTee)
        try await offerer.addTrack(.opus, from: offererMedia.audioTee)
        try offererPipeline.setState(.playing)
        let original = try await offerer.createOffer().sdp
        let renumbered = original
            .replacingOccurrences(of: "UDP/TLS/RTP/SAVPF 96", with: "UDP/TLS/RTP/SAVPF 120")
            .replacingOccurrences(of: ":96 ", with: ":120 ")
            .replacingOccurrences(of: "UDP/TLS/RTP/SAVPF 111", with: "UDP/TLS/RTP/SAVPF 109")
            .replacingOccurrences(of: ":111 ", with: ":109 ")
            .replacingOccurrences(of: "apt=96", with: "apt=120")
            .replacingOccurrences(of: "apt=111", with: "apt=109")
        #expect(renumbered.contains("a=rtpmap:120 VP8/90000"))

        let answererPipeline = try Pipeline(name: "pt-answerer")
        let answerer = try WebRTCPeer(configuration: WebRTCConfiguration(name: "pt-b"), pipeline: answererPipeline)
        let answererMedia = try TestMedia(pipeline: answererPipeline, prefix: "pt-b")
        try await answerer.addTrack(.vp8, from: answererMedia.videoTee)
        try await answerer.addTrack(.opus, from: answererMedia.audioTee)
        try answererPipeline.setState(.playing)
        try await answerer.setRemoteDescription(RTCSessionDescriptionInit(type: .offer, sdp: renumbered))
        let answer = try await answerer.createAnswer()
        let summary = SDPSummary(answer.sdp)
        #expect(summary.firstPayloadType(kind: "video", encodingName: "VP8")?.payloadType == 120)
        #expect(summary.firstPayloadType(kind: "audio", encodingName: "OPUS")?.payloadType == 109)
        #expect(summary.media.allSatisfy { $0.direction == "sendrecv" }, "answer directions: \(summary.media.map(\.direction))")
        await offerer.close()
        await answerer.close()
        try offererPipeline.setState(.null)
        try answererPipeline.setState(.null)
    }

    @Test("a receive-only peer offers recvonly m-lines")
    func receiveOnlyOffer() async throws {
        let peer = try WebRTCPeer(configuration: WebRTCConfiguration(name: "recvonly"))
        try await peer.addReceiveOnly(.vp8)
        try await peer.addReceiveOnly(.opus)
        let offer = try await peer.createOffer()
        let summary = SDPSummary(offer.sdp)
        #expect(summary.media.map(\.kind).sorted() == ["audio", "video"])
        #expect(summary.media.allSatisfy { $0.direction == "recvonly" })
        await peer.close()
    }

    /// aiortc offers only ECDHE-ECDSA suites, so webrtcbin's default RSA certificate fails with "no shared cipher";
    /// and webrtcbin 1.22 hashes the private key into `a=fingerprint` when given a PEM with one.
    @Test("offers present an ECDSA P-256 certificate, and a=fingerprint is that certificate's SHA-256 (checked by openssl)")
    func dtlsCertificateAndFingerprint() async throws {
        let certificate = try #require(DTLSCertificate.process)
        let peer = try WebRTCPeer(configuration: WebRTCConfiguration(name: "dtls"))
        try await peer.addReceiveOnly(.vp8)
        let offer = try await peer.createOffer()
        await peer.close()
        let fingerprints = Set(offer.sdp.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("a=fingerprint:") })
        #expect(fingerprints == ["a=fingerprint:sha-256 \(certificate.fingerprint)"])

        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["x509", "-noout", "-fingerprint", "-sha256", "-text"]
        let input = Pipe(), output = Pipe()
        openssl.standardInput = input
        openssl.standardOutput = output
        try openssl.run()
        input.fileHandleForWriting.write(Data(certificate.pem.utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        openssl.waitUntilExit()
        #expect(text.contains("sha256 Fingerprint=\(certificate.fingerprint)"))
        #expect(text.contains("id-ecPublicKey") && text.contains("prime256v1"))
    }

    @Test("a malformed remote description is an error, and a closed peer refuses work")
    func badInput() async throws {
        let peer = try WebRTCPeer(configuration: WebRTCConfiguration(name: "bad"))
        await #expect(throws: WebRTCError.self) {
            try await peer.setRemoteDescription(RTCSessionDescriptionInit(type: .offer, sdp: "this is not sdp"))
        }
        await #expect(throws: WebRTCError.self) {
            try await peer.createAnswer()
        }
        await peer.close()
        await #expect(throws: WebRTCError.self) { _ = try await peer.createOffer() }
    }
}
