import GStreamer
import GStreamerWebRTC
import Logging
import Synchronization
import WebRTCTypes

/// webrtcbin's signals and the tuning done in them. Handlers run on GStreamer's threads: they only read,
/// set properties of elements being made, and hand events on; they never block.
extension WebRTCPeer {
    static func connectSignals(_ webrtc: Element, pipeline: Pipeline, name: String, shared: PeerSharedState,
                               continuation: AsyncStream<WebRTCPeerEvent>.Continuation,
                               logger: Logger) throws -> [SignalConnection] {
        // Weak: the pipeline holds webrtcbin, which holds these handlers until `close()` disconnects them.
        weak let weakWebRTC = webrtc
        weak let weakPipeline = pipeline
        var connections: [SignalConnection] = []
        connections.append(try webrtc.connect("on-negotiation-needed") { _ in
            continuation.yield(.negotiationNeeded)
            return nil
        })
        connections.append(try webrtc.connect("on-ice-candidate") { arguments in
            guard arguments.count == 2, let mline = arguments[0].intValue, let candidate = arguments[1].stringValue else { return nil }
            // The username fragment says which ICE generation the candidate belongs to (as a browser's does).
            let (mid, usernameFragment) = shared.localMLine(at: mline)
            continuation.yield(.localCandidate(RTCIceCandidateInit(candidate: candidate, sdpMid: mid, sdpMLineIndex: mline,
                                                                  usernameFragment: usernameFragment)))
            return nil
        })
        connections.append(try webrtc.connect("on-new-transceiver") { arguments in
            // NACK (with RTX) lets a video sender retransmit lost packets instead of waiting for a keyframe.
            // Audio gets none: Chromium rejects an offer whose audio m-line carries RTX.
            if let transceiver = arguments.first?.objectValue, (try? transceiver.get("kind").stringValue) == "video" {
                try? transceiver.set("do-nack", true)
            }
            return nil
        })
        let certificate = DTLSCertificate.process
        if certificate == nil {
            logger.warning("could not make an ECDSA DTLS certificate; using GStreamer's RSA one, which aiortc refuses")
        }
        connections.append(try webrtc.connect("deep-element-added") { arguments in
            guard arguments.count == 2, let element = arguments[1].objectValue as? Element else { return nil }
            switch element.factoryName {
            case "dtlssrtpdec":
                // Why: GStreamer 1.22's default DTLS certificate is RSA, which ECDSA-only clients (aiortc) refuse: "no shared cipher".
                if let certificate { try? element.set("pem", certificate.pem) }
            case "dtlssrtpenc":
                // Media can go out once the SRTP keys are set. webrtcbin's `connected` usually says so too, but
                // now and then (seen on a loaded 2-core machine) it stays `connecting` for good while the far side's
                // media already arrives: a gate waiting only for it would send that peer nothing.
                // The same holds for the state reported: keys set means the (bundled) transport is connected.
                _ = try? element.connect("on-key-set") { _ in
                    shared.sendGate.open()
                    if shared.markSRTPKeysSet(reporting: { continuation.yield(.connectionState(.connected)) }) {
                        logger.debug("connection-state → connected (SRTP keys set; webrtcbin still said connecting)")
                    }
                    return nil
                }
            case "rtpsession":
                try? element.set("rtcp-fraction", WebRTCPeer.rtcpBandwidth)
            default:
                break
            }
            return nil
        })
        connections.append(try webrtc.connect("pad-added") { arguments in
            guard let pad = arguments.first?.objectValue as? Pad, pad.direction == .source, let pipeline = weakPipeline else { return nil }
            guard let track = ReceivedTrack(pad: pad, pipeline: pipeline, namePrefix: name, counters: shared.counters) else {
                logger.warning("ignoring remote pad \(pad.name) with unknown caps")
                return nil
            }
            shared.addReceivedTrack(track)
            logger.debug("remote track \(track)")
            continuation.yield(.remoteTrack(track))
            return nil
        })
        let stateProperties: [(String, @Sendable (String) -> WebRTCPeerEvent?)] = [
            ("connection-state", { nick in PeerConnectionState(rawValue: nick).map { .connectionState($0) } }),
            ("ice-connection-state", { nick in ICEConnectionState(rawValue: nick).map { .iceConnectionState($0) } }),
            ("ice-gathering-state", { nick in ICEGatheringState(rawValue: nick).map { .iceGatheringState($0) } }),
        ]
        for (property, make) in stateProperties {
            connections.append(try webrtc.connect("notify::\(property)") { _ in
                guard let nick = try? weakWebRTC?.get(property).stringValue else { return nil }
                // notify can repeat a value; each state is reported once per change. A `connecting` that lags
                // behind the SRTP keys (see on-key-set) is not a change.
                guard let event = make(nick), shared.changeState(property, to: nick, reporting: { continuation.yield(event) }) else {
                    return nil
                }
                if property == "connection-state", nick == "connected" { shared.sendGate.open() }
                logger.debug("\(property) → \(nick)")
                if property == "ice-gathering-state", nick == "complete" { continuation.yield(.localCandidate(nil)) }
                return nil
            })
        }
        return connections
    }

    /// The RTCP bandwidth of each RTP session, in bits per second: RFC 3550's 5 % of a 2 Mbit/s call.
    ///
    /// NACKs and keyframe requests travel in RTCP, and an AVPF session sends feedback early only once per
    /// regular RTCP interval (RFC 4585 3.5.2); other requests wait for the next regular report, and a NACK
    /// whose packet is due before then is dropped. rtpsession derives that interval from the RTCP bandwidth,
    /// by default 5 % of the RTP bandwidth it measures (a few hundred kbit/s here), giving 0.2–0.4 s between
    /// reports, longer than a 200 ms jitterbuffer waits: most NACKs went late or never. At 100 kbit/s a
    /// receiver of video, RTX and audio reports every ~30 ms (about 25 kbit/s of RTCP), so NACKs leave in time.
    static let rtcpBandwidth: Double = 100_000

    /// Turns retransmission requests (NACK) on in each receiving jitterbuffer whose stream negotiated them.
    ///
    /// webrtcbin 1.22 means to do this itself from the transceiver's `do-nack`, but its handler
    /// (`jitter_buffer_set_retransmission`) visits every SSRC of the bundle, not only the new jitterbuffer's,
    /// and sets `do-retransmission` once per SSRC: the last one wins. With audio after video in the
    /// bundle, the video jitterbuffer ends with `do-retransmission=false`, lost packets are never asked
    /// for, and every loss costs a keyframe. This handler runs after webrtcbin's (connected later) and sets
    /// the value the jitterbuffer's own stream calls for, from the remote description's `a=ssrc` lines.
    static func connectJitterBufferSetup(_ rtpbin: Element, shared: PeerSharedState, logger: Logger) throws -> SignalConnection {
        try rtpbin.connect("new-jitterbuffer") { arguments in
            // (jitterbuffer, session, ssrc)
            guard arguments.count == 3, let jitterbuffer = arguments[0].objectValue,
                  let ssrc = arguments[2].uintValue.flatMap({ UInt32(exactly: $0) }) else { return nil }
            // A jitterbuffer holds a stream's first packet for its whole latency, to learn the reordering,
            // before it lets anything out: 200 ms more before the first picture or recorded keyframe.
            // Faststart lets a clean start (packets in sequence) through at once; losses and reordering
            // later on still get the full latency, so NACK recovery keeps its time.
            try? jitterbuffer.set("faststart-min-packets", Self.faststartPackets)
            guard let retransmit = shared.retransmission(forRemoteSSRC: ssrc) else {
                logger.debug("jitterbuffer for SSRC \(ssrc), which the remote description does not announce: left as webrtcbin set it")
                return nil
            }
            try? jitterbuffer.set("do-retransmission", retransmit)
            logger.debug("jitterbuffer for SSRC \(ssrc): retransmission requests \(retransmit ? "on" : "off")")
            return nil
        }
    }

    /// Packets in sequence after which a new stream's jitterbuffer starts without waiting out its latency.
    static let faststartPackets = 3
}
