import Foundation
import CGStreamer
import GStreamer
import Logging
import Synchronization

/// How a `WebRTCPeer` is set up.
public struct WebRTCConfiguration: Sendable {
    /// STUN and TURN servers, as in `RTCConfiguration.iceServers`.
    public var iceServers: [ICEServer]
    /// The jitter buffer's latency in milliseconds (webrtcbin's `latency`).
    public var latencyMilliseconds: Int
    /// A name for logs and element names; unique within a pipeline.
    public var name: String

    public init(iceServers: [ICEServer] = [], latencyMilliseconds: Int = 200, name: String? = nil) {
        self.iceServers = iceServers
        self.latencyMilliseconds = latencyMilliseconds
        self.name = name ?? "peer\(UInt32.random(in: 0...UInt32.max))"
    }
}

/// Errors of the WebRTC layer, saying what happened and what to do.
public enum WebRTCError: Error, CustomStringConvertible, Sendable {
    case negotiation(String)
    case invalidDescription(String)
    case closed

    public var description: String {
        switch self {
        case .negotiation(let message): "negotiation failed: \(message)"
        case .invalidDescription(let message): "invalid session description: \(message)"
        case .closed: "the peer connection is closed"
        }
    }
}

/// A WebRTC peer connection on GStreamer's webrtcbin: the W3C `RTCPeerConnection` for Swift.
///
/// Media comes in as encoded streams (VP8, Opus) from tees, so one encoder serves many peers.
///
/// ```swift
/// let peer = try WebRTCPeer(pipeline: pipeline)
/// try await peer.addTrack(.vp8, from: videoTee)
/// let offer = try await peer.createOffer()
/// try await peer.setLocalDescription(offer)
/// // send offer, receive answer and candidates, then:
/// try await peer.setRemoteDescription(answer)
/// for await event in peer.events { ... }
/// ```
public actor WebRTCPeer {
    /// Events in the order they happened; finishes when the peer is closed.
    public nonisolated let events: AsyncStream<WebRTCPeerEvent>
    public nonisolated let configuration: WebRTCConfiguration
    /// The pipeline holding this peer's webrtcbin.
    public nonisolated let pipeline: Pipeline
    /// The webrtcbin element.
    public nonisolated let webrtc: Element

    private nonisolated let continuation: AsyncStream<WebRTCPeerEvent>.Continuation
    private nonisolated let shared: SharedState
    private let ownsPipeline: Bool
    private let logger: Logger
    private var signalConnections: [SignalConnection] = []
    /// webrtcbin's internal rtpbin and the handler on it (see `connectJitterBufferSetup`).
    private let rtpbin: Element?
    private var rtpbinConnection: SignalConnection?
    private var tracks: [SendTrack] = []
    private var remoteDescriptionApplied = false
    private var remoteSummary: SDPSummary?
    private var pendingCandidates: [ICECandidate?] = []
    private var isClosed = false

    /// Makes a peer inside `pipeline` (or in a pipeline of its own) and starts it.
    public init(configuration: WebRTCConfiguration = WebRTCConfiguration(), pipeline: Pipeline? = nil,
                logger: Logger = Logger(label: "vcall.webrtc")) throws {
        self.configuration = configuration
        self.ownsPipeline = pipeline == nil
        self.pipeline = try pipeline ?? Pipeline(name: "\(configuration.name)-pipeline")
        var logger = logger
        logger[metadataKey: "peer"] = "\(configuration.name)"
        self.logger = logger
        let (events, continuation) = AsyncStream.makeStream(of: WebRTCPeerEvent.self)
        self.events = events
        self.continuation = continuation
        let shared = SharedState()
        self.shared = shared

        let webrtc = try Element(factory: "webrtcbin", name: "\(configuration.name)-webrtcbin")
        self.webrtc = webrtc
        try webrtc.set("bundle-policy", "max-bundle")
        try webrtc.set("latency", configuration.latencyMilliseconds)
        // Sender reports map RTP time to the capture time of the media, not to when it left: video leaves
        // later than audio (encoding takes longer), and a far side that aligns the two by send time (as
        // GStreamer receivers, recorders included, do) would play or record the video that much late.
        let rtpbin = webrtc.child(named: "rtpbin")
        self.rtpbin = rtpbin
        if ProcessInfo.processInfo.environment["VCALL_SEND_TIME_SR"] == nil { try rtpbin?.set("rtcp-sync-send-time", false) }
        for server in configuration.iceServers {
            for (isTURN, url) in server.webrtcbinURLs {
                if isTURN {
                    _ = try webrtc.emit("add-turn-server", .string(url))
                } else {
                    try webrtc.set("stun-server", url)
                }
            }
        }
        try self.pipeline.add(webrtc)
        signalConnections = try Self.connectSignals(webrtc, shared: shared, continuation: continuation, logger: logger)
        if let rtpbin {
            rtpbinConnection = try Self.connectJitterBufferSetup(rtpbin, shared: shared, logger: logger)
        } else {
            logger.warning("webrtcbin has no rtpbin: lost video packets will not be retransmitted")
        }
        if ownsPipeline {
            try self.pipeline.setState(.playing)
        } else {
            try webrtc.syncStateWithParent()
        }
    }

    // MARK: Signals (GStreamer threads: they only read and hand events on, never block)

    private static func connectSignals(_ webrtc: Element, shared: SharedState,
                                       continuation: AsyncStream<WebRTCPeerEvent>.Continuation,
                                       logger: Logger) throws -> [SignalConnection] {
        weak let weakWebRTC = webrtc
        var connections: [SignalConnection] = []
        connections.append(try webrtc.connect("on-negotiation-needed") { _ in
            continuation.yield(.negotiationNeeded)
            return nil
        })
        connections.append(try webrtc.connect("on-ice-candidate") { arguments in
            guard arguments.count == 2, let mline = arguments[0].intValue, let candidate = arguments[1].stringValue else { return nil }
            let mid = shared.localMid(at: mline)
            continuation.yield(.localCandidate(ICECandidate(candidate: candidate, sdpMid: mid, sdpMLineIndex: mline)))
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
            guard let pad = arguments.first?.objectValue as? Pad, pad.direction == .source else { return nil }
            guard let track = RemoteTrack(pad: pad, counters: shared.counters) else {
                logger.warning("ignoring remote pad \(pad.name) with unknown caps")
                return nil
            }
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
    private static func connectJitterBufferSetup(_ rtpbin: Element, shared: SharedState, logger: Logger) throws -> SignalConnection {
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

    // MARK: Tracks

    /// Sends an encoded stream (VP8/VP9 video or Opus audio) taken from a `tee`: one branch per peer,
    /// so the stream is encoded once however many peers receive it.
    /// The branch is linked when the next offer or answer is made, with the payload type that one needs.
    public func addTrack(_ codec: Codec, from tee: Element) throws {
        guard !isClosed else { throw WebRTCError.closed }
        tracks.append(SendTrack(codec: codec, tee: tee))
    }

    /// Adds a receive-only transceiver for `codec` (for a peer that only records, for example).
    public func addReceiveOnly(_ codec: Codec) throws {
        guard !isClosed else { throw WebRTCError.closed }
        let caps = try Caps(codec.rtpCaps(payloadType: codec.defaultPayloadType))
        let transceiver = try webrtc.emit("add-transceiver", .string("recvonly"), .caps(caps))?.objectValue
        // Ask for retransmissions of lost video packets (NACK), as the send side's transceivers do.
        if codec.kind == .video { try transceiver?.set("do-nack", true) }
    }

    /// Links every track not yet linked, choosing payload types from `offer` when answering.
    private func linkPendingTracks(matching offer: SDPSummary?) throws {
        for index in tracks.indices where !tracks[index].isLinked {
            let codec = tracks[index].codec
            var payloadType = codec.defaultPayloadType
            if let offer {
                guard let offered = offer.firstPayloadType(kind: codec.kind.rawValue, encodingName: codec.encodingName) else {
                    logger.warning("the remote offer has no \(codec.encodingName); that track is not sent")
                    continue
                }
                payloadType = offered.payloadType
            }
            try tracks[index].link(into: pipeline, webrtc: webrtc, payloadType: payloadType,
                                   namePrefix: "\(configuration.name)-\(index)", counters: shared.counters,
                                   gate: shared.sendGate)
            logger.debug("sending \(codec.encodingName) with payload type \(payloadType)")
        }
    }

    // MARK: Negotiation

    /// Creates an offer (`RTCPeerConnection.createOffer`).
    public func createOffer(iceRestart: Bool = false) async throws -> SessionDescription {
        guard !isClosed else { throw WebRTCError.closed }
        try linkPendingTracks(matching: nil)
        let options = iceRestart ? try Structure("application/x-gst-webrtc-offer-options, ice-restart=(boolean)true") : nil
        let reply = try await request("create-offer", .structure(options))
        return Self.fixingFingerprints(try Self.description(in: reply, field: "offer"))
    }

    /// Creates an answer to the remote offer (`RTCPeerConnection.createAnswer`).
    public func createAnswer() async throws -> SessionDescription {
        guard !isClosed else { throw WebRTCError.closed }
        guard remoteSummary != nil else { throw WebRTCError.negotiation("createAnswer needs the remote offer first: call setRemoteDescription") }
        let reply = try await request("create-answer", .structure(nil))
        return Self.fixingFingerprints(try Self.description(in: reply, field: "answer"))
    }

    /// Applies a local description (from `createOffer` or `createAnswer`).
    public func setLocalDescription(_ description: SessionDescription) async throws {
        guard !isClosed else { throw WebRTCError.closed }
        let description = Self.fixingFingerprints(description)
        let boxed = try Self.boxed(description)
        shared.setLocalMids(SDPSummary(description.sdp).mids)
        _ = try await request("set-local-description", .boxed(boxed))
        logger.debug("local \(description.type.rawValue) applied")
        logger.trace("local \(description.type.rawValue):\n\(description.sdp)")
    }

    /// Applies the remote peer's description; candidates that arrived before it are applied after it.
    public func setRemoteDescription(_ description: SessionDescription) async throws {
        guard !isClosed else { throw WebRTCError.closed }
        let summary = SDPSummary(description.sdp)
        guard !summary.media.isEmpty else { throw WebRTCError.invalidDescription("the SDP has no m= lines") }
        if description.type == .offer {
            // Payload types must match the offer's, or webrtcbin answers receive-only for that track.
            try linkPendingTracks(matching: summary)
        }
        shared.setRemoteRetransmissions(Self.retransmissions(in: summary))
        let boxed = try Self.boxed(description)
        _ = try await request("set-remote-description", .boxed(boxed))
        remoteSummary = summary
        remoteDescriptionApplied = true
        logger.debug("remote \(description.type.rawValue) applied; \(pendingCandidates.count) queued candidates follow")
        let queued = pendingCandidates
        pendingCandidates.removeAll()
        for candidate in queued { try apply(candidate) }
    }

    /// Adds a remote ICE candidate; nil means the remote side has no more candidates.
    /// Before the remote description is set, candidates are queued, never dropped.
    public func addICECandidate(_ candidate: ICECandidate?) throws {
        guard !isClosed else { throw WebRTCError.closed }
        guard remoteDescriptionApplied else {
            pendingCandidates.append(candidate)
            return
        }
        try apply(candidate)
    }

    private func apply(_ candidate: ICECandidate?) throws {
        guard let candidate, !candidate.candidate.isEmpty else {
            // End of candidates: webrtcbin takes an empty candidate for "no more".
            for mline in 0..<max(1, remoteSummary?.media.count ?? 1) {
                try webrtc.emit("add-ice-candidate", .uint(UInt(mline)), .string(nil))
            }
            return
        }
        var mline = candidate.sdpMLineIndex
        if mline == nil, let mid = candidate.sdpMid {
            mline = remoteSummary?.mids.firstIndex(of: mid)
        }
        guard let mline, mline >= 0 else {
            throw WebRTCError.negotiation("candidate names neither a known sdpMid nor an sdpMLineIndex: \(candidate.candidate)")
        }
        try webrtc.emit("add-ice-candidate", .uint(UInt(mline)), .string(candidate.candidate))
    }

    /// The current descriptions' SDP, for diagnostics.
    public var localDescription: SessionDescription? { Self.currentDescription(of: webrtc, property: "local-description") }
    public var remoteDescription: SessionDescription? { Self.currentDescription(of: webrtc, property: "remote-description") }

    /// The kinds the far side says it sends (its description's sendrecv and sendonly m-lines).
    public var remoteSendingKinds: Set<MediaKind> {
        guard let sdp = remoteDescription?.sdp else { return [] }
        return Set(SDPSummary(sdp).media.filter { $0.direction == "sendrecv" || $0.direction == "sendonly" }
            .compactMap { MediaKind(rawValue: $0.kind) })
    }

    /// As last reported in `.connectionState` events: webrtcbin's state, or `connected` once the SRTP keys are set
    /// while webrtcbin still says `connecting`.
    public var connectionState: PeerConnectionState {
        shared.state("connection-state").flatMap { PeerConnectionState(rawValue: $0) } ?? .new
    }

    // MARK: Stats

    /// A snapshot of bytes, packets and frames in both directions, losses and round-trip time.
    public func stats(timeout: Duration = requestTimeout) async throws -> WebRTCStats {
        let reply = try await request("get-stats", .object(nil), timeout: timeout)
        return WebRTCStats(reply, counters: shared.counters)
    }

    // MARK: Closing

    /// Packets in sequence after which a new stream's jitterbuffer starts without waiting out its latency.
    static let faststartPackets = 3

    /// Pays, ahead of time, what the first negotiation of a process costs on top of every later one:
    /// loading the ICE, DTLS, SRTP and RTP plugins and making the DTLS context. A throwaway peer makes
    /// and applies an offer, then closes. A program about to join a call calls this first, so that its
    /// first peer connects as fast as later ones (about 200 ms sooner on a 2-core machine).
    public static func warmUp() async {
        guard let peer = try? WebRTCPeer(configuration: WebRTCConfiguration(name: "vcall-warm-up")) else { return }
        try? await peer.addReceiveOnly(.vp8)
        try? await peer.addReceiveOnly(.opus)
        if let offer = try? await peer.createOffer() { try? await peer.setLocalDescription(offer) }
        await peer.close()
    }

    /// Stops the connection: unlinks the send branches from their tees without disturbing other peers,
    /// removes this peer's elements, and finishes `events`.
    public func close() async {
        guard !isClosed else { return }
        isClosed = true
        for connection in signalConnections { webrtc.disconnect(connection) }
        signalConnections.removeAll()
        if let rtpbin, let rtpbinConnection { rtpbin.disconnect(rtpbinConnection) }
        rtpbinConnection = nil
        // Stopping webrtcbin first flushes its sink pads, releasing any branch thread that webrtcbin
        // holds blocked (it blocks media until negotiation completes); only then can the branches stop.
        _ = try? webrtc.setState(.null)
        for var track in tracks { await track.unlink(from: pipeline) }
        tracks.removeAll()
        if ownsPipeline {
            _ = try? pipeline.setState(.null)
        } else {
            try? pipeline.remove(webrtc)
        }
        continuation.finish()
        logger.debug("closed")
    }

    // MARK: Helpers

    /// Whether a receiving jitterbuffer should ask for retransmissions, by the SSRCs a remote description
    /// announces: yes for video whose m-line negotiated generic NACK (every video transceiver here sets
    /// `do-nack`), no for audio (no transceiver asks for NACK there).
    static func retransmissions(in summary: SDPSummary) -> [UInt32: Bool] {
        var result: [UInt32: Bool] = [:]
        for media in summary.media {
            let retransmit = media.kind == MediaKind.video.rawValue && !media.nackPayloadTypes.isEmpty
            for ssrc in media.ssrcs { result[ssrc] = retransmit }
        }
        return result
    }

    /// Far longer than any answer takes (milliseconds; the first offer's certificate under a second).
    public static let requestTimeout: Duration = .seconds(10)

    /// Asks webrtcbin through a promise. webrtcbin answers from one worker thread; a stuck worker
    /// fails the request after `requestTimeout` instead of hanging the caller (and a closing call).
    private func request(_ signal: String, _ argument: Value, timeout: Duration = requestTimeout) async throws -> Structure? {
        let promise = Promise()
        try webrtc.emit(signal, argument, .promise(promise))
        do {
            return try await promise.reply(timeout: timeout)
        } catch {
            throw WebRTCError.negotiation("\(signal): \(error)")
        }
    }

    /// Puts the true fingerprint of `DTLSCertificate.process` in a local description (see `DTLSCertificate`).
    private static func fixingFingerprints(_ description: SessionDescription) -> SessionDescription {
        guard let certificate = DTLSCertificate.process else { return description }
        return SessionDescription(type: description.type, sdp: certificate.fixingFingerprints(in: description.sdp))
    }

    private static func boxed(_ description: SessionDescription) throws -> Boxed {
        var message: UnsafeMutablePointer<GstSDPMessage>?
        guard gst_sdp_message_new_from_text(description.sdp, &message) == GST_SDP_OK, let message else {
            throw WebRTCError.invalidDescription("the SDP could not be parsed")
        }
        let type: GstWebRTCSDPType = switch description.type {
        case .offer: GST_WEBRTC_SDP_TYPE_OFFER
        case .answer: GST_WEBRTC_SDP_TYPE_ANSWER
        case .pranswer: GST_WEBRTC_SDP_TYPE_PRANSWER
        case .rollback: GST_WEBRTC_SDP_TYPE_ROLLBACK
        }
        // The description takes ownership of the message.
        guard let made = gst_webrtc_session_description_new(type, message) else {
            throw WebRTCError.invalidDescription("webrtcbin refused the description")
        }
        return Boxed(adopting: UnsafeMutableRawPointer(made), type: vcall_type_webrtc_session_description())
    }

    private static func description(in reply: Structure?, field: String) throws -> SessionDescription {
        guard case .boxed(let boxed)? = reply?[field], let description = sessionDescription(boxed) else {
            throw WebRTCError.negotiation("webrtcbin's reply has no \(field)")
        }
        return description
    }

    private static func sessionDescription(_ boxed: Boxed) -> SessionDescription? {
        let description = boxed.pointer.assumingMemoryBound(to: GstWebRTCSessionDescription.self)
        guard let sdp = gst_sdp_message_as_text(description.pointee.sdp) else { return nil }
        defer { g_free(sdp) }
        let kind: SessionDescription.Kind = switch description.pointee.type {
        case GST_WEBRTC_SDP_TYPE_OFFER: .offer
        case GST_WEBRTC_SDP_TYPE_PRANSWER: .pranswer
        case GST_WEBRTC_SDP_TYPE_ROLLBACK: .rollback
        default: .answer
        }
        return SessionDescription(type: kind, sdp: String(cString: sdp))
    }

    private static func currentDescription(of webrtc: Element, property: String) -> SessionDescription? {
        guard case .boxed(let boxed)? = try? webrtc.get(property) else { return nil }
        return sessionDescription(boxed)
    }
}

/// State that GStreamer's threads read: the local m-line ids, the last state seen per property,
/// and the frame counters. `Sendable` through its Mutex.
final class SharedState: Sendable {
    private struct Inner {
        var localMids: [String?] = []
        var states: [String: String] = [:]
        var remoteRetransmissions: [UInt32: Bool] = [:]
        var srtpKeysSet = false
    }
    private let inner = Mutex(Inner())
    let counters = TrafficCounters()
    let sendGate = SendGate()

    func setLocalMids(_ mids: [String?]) { inner.withLock { $0.localMids = mids } }

    func localMid(at index: Int) -> String? {
        inner.withLock { index < $0.localMids.count ? $0.localMids[index] : nil }
    }

    /// Whether the jitterbuffer of a remote SSRC asks for retransmissions, by the latest remote description.
    func setRemoteRetransmissions(_ retransmissions: [UInt32: Bool]) { inner.withLock { $0.remoteRetransmissions = retransmissions } }

    /// nil for an SSRC the remote description does not announce.
    func retransmission(forRemoteSSRC ssrc: UInt32) -> Bool? { inner.withLock { $0.remoteRetransmissions[ssrc] } }

    /// Records a state; false if it is the value already reported, or a connection state of `new` or `connecting`
    /// from webrtcbin after the SRTP keys made it `connected`.
    /// `report` runs under the lock, so events leave in the order the states were recorded.
    func changeState(_ property: String, to value: String, reporting report: () -> Void = {}) -> Bool {
        inner.withLock { inner in
            guard inner.states[property] != value else { return false }
            if property == "connection-state", inner.srtpKeysSet, inner.states[property] == "connected",
               value == "new" || value == "connecting" {
                return false
            }
            inner.states[property] = value
            report()
            return true
        }
    }

    /// The SRTP keys are set, so the transport is connected: true if that makes the connection state `connected`
    /// (webrtcbin had not said so yet).
    func markSRTPKeysSet(reporting report: () -> Void) -> Bool {
        inner.withLock { inner in
            inner.srtpKeysSet = true
            switch inner.states["connection-state"] {
            case nil, "new", "connecting":
                inner.states["connection-state"] = "connected"
                report()
                return true
            default:
                return false
            }
        }
    }

    func state(_ property: String) -> String? { inner.withLock { $0.states[property] } }
}

/// The DTLS certificate every `WebRTCPeer` of this process presents: ECDSA P-256, made once at start-up.
///
/// GStreamer 1.22's dtls elements make an RSA certificate by default, and a DTLS client that offers only
/// ECDHE-ECDSA cipher suites (aiortc) then fails with "no shared cipher" whenever webrtcbin is the DTLS server.
/// The certificate goes in as each transport's dtlssrtpdec `pem` (what `GstWebRTCDTLSTransport.certificate` sets).
///
/// webrtcbin 1.22 derives `a=fingerprint` from that `pem` by hashing every base64 line in it, the private key's
/// too (`_generate_fingerprint_from_certificate`), so its value is wrong for a certificate with a key;
/// `fixingFingerprints(in:)` swaps exactly that value for the SHA-256 of the certificate alone.
struct DTLSCertificate: Sendable {
    /// The certificate, then its private key, in PEM.
    let pem: String
    /// `sha-256` fingerprint of the certificate's DER, as in `a=fingerprint` ("AB:CD:…").
    let fingerprint: String
    /// The fingerprint webrtcbin writes for `pem`.
    let webrtcbinFingerprint: String

    /// nil if libcrypto could not make one (GStreamer's own certificate is used then).
    static let process: DTLSCertificate? = {
        guard let made = vcall_dtls_ecdsa_certificate_pem("vcall", 30) else { return nil }
        defer { g_free(made) }
        return DTLSCertificate(pem: String(cString: made))
    }()

    init?(pem: String) {
        let lines = pem.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let end = lines.firstIndex(of: "-----END CERTIFICATE-----"),
              let certificate = Self.fingerprint(ofBase64Lines: lines[..<end]),
              let webrtcbin = Self.fingerprint(ofBase64Lines: lines[...]) else { return nil }
        self.pem = pem
        self.fingerprint = certificate
        self.webrtcbinFingerprint = webrtcbin
    }

    func fixingFingerprints(in sdp: String) -> String {
        sdp.replacingOccurrences(of: "a=fingerprint:sha-256 \(webrtcbinFingerprint)", with: "a=fingerprint:sha-256 \(fingerprint)")
    }

    /// SHA-256 of the base64 data in `lines` (lines starting with "-----" skipped), upper-case hex pairs joined by ":".
    private static func fingerprint(ofBase64Lines lines: ArraySlice<String>) -> String? {
        var der = Data()
        for line in lines where !line.isEmpty && !line.hasPrefix("-----") {
            // PEM lines hold whole 4-character groups, so each decodes alone.
            guard let bytes = Data(base64Encoded: line) else { return nil }
            der.append(bytes)
        }
        guard !der.isEmpty else { return nil }
        let hex: String? = der.withUnsafeBytes { buffer in
            guard let digest = g_compute_checksum_for_data(G_CHECKSUM_SHA256, buffer.bindMemory(to: guchar.self).baseAddress,
                                                           gsize(buffer.count)) else { return nil }
            defer { g_free(digest) }
            return String(cString: digest)
        }
        guard let hex else { return nil }
        var pairs: [String] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            pairs.append(hex[index..<next].uppercased())
            index = next
        }
        return pairs.joined(separator: ":")
    }
}
