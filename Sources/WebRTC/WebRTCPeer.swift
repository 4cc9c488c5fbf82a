import Foundation
import GStreamer
import GStreamerWebRTC
import Logging
import Synchronization
import WebRTCTypes

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
    private nonisolated let shared: PeerSharedState
    private let ownsPipeline: Bool
    private let logger: Logger
    private var signalConnections: [SignalConnection] = []
    /// webrtcbin's internal rtpbin and the handler on it (see `connectJitterBufferSetup`).
    private let rtpbin: Element?
    private var rtpbinConnection: SignalConnection?
    /// The tracks sent, in the order they were added (their m-lines' order).
    private var tracks: [(id: TransceiverID, track: SendTrack)] = []
    /// The transceivers of `addReceiveOnly`.
    private var receiveOnly: [TransceiverID: GLibObject] = [:]
    private var transceiverSerial = 0
    /// The mids given with `addTrack` and `addReceiveOnly`.
    private var chosenMids: [TransceiverID: String] = [:]
    private var remoteDescriptionApplied = false
    private var remoteSummary: SDPSummary?
    private var pendingCandidates: [RTCIceCandidateInit?] = []
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
        let shared = PeerSharedState()
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
        let iceAgent = try webrtc.get("ice-agent").objectValue
        // No UPnP: libnice would otherwise ask the LAN's router to open ports for us (SSDP on port 1900 and
        // more sockets outside any --udp-ports range); browsers do not, and a server has no business doing it.
        if let nice = try? iceAgent?.get("agent").objectValue { try? nice.set("upnp", false) }
        if let ports = configuration.udpPorts {
            guard let iceAgent else {
                throw WebRTCError.negotiation("webrtcbin has no ICE agent to confine to ports \(ports.lowerBound)-\(ports.upperBound)")
            }
            // The agent checks min <= max on each write: raise the ceiling first.
            try iceAgent.set("max-rtp-port", Int(ports.upperBound))
            try iceAgent.set("min-rtp-port", Int(ports.lowerBound))
        }
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
        signalConnections = try Self.connectSignals(webrtc, pipeline: self.pipeline, name: configuration.name, shared: shared,
                                                    continuation: continuation, logger: logger)
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

    // MARK: Tracks

    /// Sends an encoded stream (VP8/VP9 video or Opus audio) taken from a `tee`: one branch per peer,
    /// so the stream is encoded once however many peers receive it.
    /// The branch is linked when the next offer or answer is made, with the payload type that one needs.
    /// `streamID` is the msid stream id the far side sees (a browser's `event.streams[0].id`); `sendOnly`
    /// makes the m-line send-only (a relay's forwarded track) instead of send-and-receive; a send-only
    /// track may be given its `mid` (see `addReceiveOnly`).
    @discardableResult
    public func addTrack(_ codec: Codec, from tee: Element, streamID: String? = nil, sendOnly: Bool = false,
                         mid: String? = nil) throws -> TransceiverID {
        guard !isClosed else { throw WebRTCError.closed }
        guard mid == nil || sendOnly else { throw WebRTCError.negotiation("only a send-only track takes a mid of its own") }
        let id = nextTransceiverID()
        tracks.append((id, SendTrack(codec: codec, tee: tee, streamID: streamID, sendOnly: sendOnly, mid: mid)))
        if let mid { chosenMids[id] = mid }
        return id
    }

    /// Feeds a track added with `addTrack` from another tee, announced as `streamID`, or stops it
    /// (`tee` nil: it goes silent). Its m-line stays, so a stopped track can carry another stream later.
    /// The far side learns the new stream id in the next offer.
    public func setSource(of id: TransceiverID, to tee: Element?, streamID: String?) async throws {
        guard !isClosed else { throw WebRTCError.closed }
        guard let index = tracks.firstIndex(where: { $0.id == id }) else {
            throw WebRTCError.negotiation("no track \(id) on this peer")
        }
        var track = tracks[index].track
        try await track.setSource(tee, streamID: streamID)
        tracks[index].track = track
    }

    /// Adds a receive-only transceiver for `codec` (for a peer that only records, for example).
    /// `mid` names its m-line in this peer's offers; without one webrtcbin picks it, and says which only
    /// once the offer is answered (a relay must name every m-line in `track-map` before its offer).
    @discardableResult
    public func addReceiveOnly(_ codec: Codec, mid: String? = nil) throws -> TransceiverID {
        guard !isClosed else { throw WebRTCError.closed }
        let caps = try Caps(codec.rtpCaps(payloadType: codec.defaultPayloadType) + (mid.map { ",a-mid=(string)\($0)" } ?? ""))
        let transceiver = try webrtc.emit("add-transceiver", .string("recvonly"), .caps(caps))?.objectValue
        // Ask for retransmissions of lost video packets (NACK), as the send side's transceivers do.
        if codec.kind == .video { try transceiver?.set("do-nack", true) }
        let id = nextTransceiverID()
        receiveOnly[id] = transceiver
        if let mid { chosenMids[id] = mid }
        return id
    }

    /// The mid of a transceiver's m-line: the one chosen when it was added, else webrtcbin's once an
    /// answer placed it (nil before).
    public func mid(of id: TransceiverID) -> String? {
        if let mid = chosenMids[id] { return mid }
        let transceiver = receiveOnly[id] ?? tracks.first(where: { $0.id == id })?.track.transceiver
        return try? transceiver?.get("mid").stringValue
    }

    private func nextTransceiverID() -> TransceiverID {
        transceiverSerial += 1
        return TransceiverID(serial: transceiverSerial)
    }

    /// Links every track not yet linked, choosing payload types from `offer` when answering.
    private func linkPendingTracks(matching offer: SDPSummary?) throws {
        for index in tracks.indices where !tracks[index].track.isLinked {
            let codec = tracks[index].track.codec
            var payloadType = codec.defaultPayloadType
            if let offer {
                guard let offered = offer.firstPayloadType(kind: codec.kind.rawValue, encodingName: codec.encodingName) else {
                    logger.warning("the remote offer has no \(codec.encodingName); that track is not sent")
                    continue
                }
                payloadType = offered.payloadType
            }
            try tracks[index].track.link(into: pipeline, webrtc: webrtc, payloadType: payloadType,
                                         namePrefix: "\(configuration.name)-\(index)", counters: shared.counters,
                                         gate: shared.sendGate)
            logger.debug("sending \(codec.encodingName) with payload type \(payloadType)")
        }
    }

    // MARK: Negotiation

    /// Creates an offer (`RTCPeerConnection.createOffer`).
    public func createOffer(iceRestart: Bool = false) async throws -> RTCSessionDescriptionInit {
        guard !isClosed else { throw WebRTCError.closed }
        try linkPendingTracks(matching: nil)
        let options = iceRestart ? try Structure("application/x-gst-webrtc-offer-options, ice-restart=(boolean)true") : nil
        let reply = try await request("create-offer", .structure(options))
        return Self.fixingFingerprints(try Self.description(in: reply, field: "offer"))
    }

    /// Creates an answer to the remote offer (`RTCPeerConnection.createAnswer`).
    public func createAnswer() async throws -> RTCSessionDescriptionInit {
        guard !isClosed else { throw WebRTCError.closed }
        guard remoteSummary != nil else { throw WebRTCError.negotiation("createAnswer needs the remote offer first: call setRemoteDescription") }
        let reply = try await request("create-answer", .structure(nil))
        return Self.fixingFingerprints(try Self.description(in: reply, field: "answer"))
    }

    /// Applies a local description (from `createOffer` or `createAnswer`).
    public func setLocalDescription(_ description: RTCSessionDescriptionInit) async throws {
        guard !isClosed else { throw WebRTCError.closed }
        let description = Self.fixingFingerprints(description)
        let value = try Self.webrtcbinValue(description)
        shared.setLocalDescription(SDPSummary(description.sdp))
        _ = try await request("set-local-description", value)
        logger.debug("local \(description.type.rawValue) applied")
        logger.trace("local \(description.type.rawValue):\n\(description.sdp)")
    }

    /// Applies the remote peer's description; candidates that arrived before it are applied after it.
    public func setRemoteDescription(_ description: RTCSessionDescriptionInit) async throws {
        guard !isClosed else { throw WebRTCError.closed }
        let summary = SDPSummary(description.sdp)
        guard !summary.media.isEmpty else { throw WebRTCError.invalidDescription("the SDP has no m= lines") }
        if description.type == .offer {
            // Payload types must match the offer's, or webrtcbin answers receive-only for that track.
            try linkPendingTracks(matching: summary)
        }
        shared.setRemoteRetransmissions(summary.retransmissionsBySSRC)
        let value = try Self.webrtcbinValue(description)
        _ = try await request("set-remote-description", value)
        remoteSummary = summary
        remoteDescriptionApplied = true
        logger.debug("remote \(description.type.rawValue) applied; \(pendingCandidates.count) queued candidates follow")
        let queued = pendingCandidates
        pendingCandidates.removeAll()
        for candidate in queued {
            do {
                try apply(candidate)
            } catch .staleCandidate(let reason) {
                logger.debug("queued candidate not applied: \(reason)")
            }
        }
    }

    /// Adds a remote ICE candidate; nil means the remote side has no more candidates.
    /// Before the remote description is set, candidates are queued, never dropped. A candidate whose
    /// `usernameFragment` is not the remote description's throws `staleCandidate` (queued: is skipped).
    public func addICECandidate(_ candidate: RTCIceCandidateInit?) throws(WebRTCError) {
        guard !isClosed else { throw .closed }
        guard remoteDescriptionApplied else {
            pendingCandidates.append(candidate)
            return
        }
        try apply(candidate)
    }

    private func apply(_ candidate: RTCIceCandidateInit?) throws(WebRTCError) {
        guard let candidate, !candidate.candidate.isEmpty else {
            // End of candidates: webrtcbin takes an empty candidate for "no more".
            for mline in 0..<max(1, remoteSummary?.media.count ?? 1) {
                _ = try? webrtc.emit("add-ice-candidate", .uint(UInt(mline)), .string(nil))
            }
            return
        }
        var mline = candidate.sdpMLineIndex
        if mline == nil, let mid = candidate.sdpMid {
            mline = remoteSummary?.mids.firstIndex(of: mid)
        }
        guard let mline, mline >= 0 else {
            throw .negotiation("candidate names neither a known sdpMid nor an sdpMLineIndex: \(candidate.candidate)")
        }
        // webrtcbin 1.22 takes no username fragment with a candidate: check it here, as a browser does,
        // so a candidate of an earlier ICE generation is not paired with the current credentials.
        if let fragment = candidate.usernameFragment, let remoteSummary, mline < remoteSummary.media.count,
           let current = remoteSummary.media[mline].iceUsernameFragment, fragment != current {
            throw .staleCandidate("its username fragment \(fragment) is not the remote description's \(current)")
        }
        do {
            try webrtc.emit("add-ice-candidate", .uint(UInt(mline)), .string(candidate.candidate))
        } catch {
            throw .negotiation("webrtcbin refused the candidate: \(error)")
        }
    }

    /// The current descriptions' SDP, for diagnostics.
    public var localDescription: RTCSessionDescriptionInit? { RTCSessionDescriptionInit(webrtcbinValue: try? webrtc.get("local-description")) }
    public var remoteDescription: RTCSessionDescriptionInit? { RTCSessionDescriptionInit(webrtcbinValue: try? webrtc.get("remote-description")) }

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

    /// Pays, ahead of time, what the first negotiation of a process costs on top of every later one:
    /// loading the ICE, DTLS, SRTP and RTP plugins and making the DTLS context. A throwaway peer makes
    /// and applies an offer, then closes. A program about to join a call calls this first, so that its
    /// first peer connects as fast as later ones (about 200 ms sooner on a 2-core machine).
    /// `udpPorts` confines its ICE ports as the real peers' are.
    public static func warmUp(udpPorts: ClosedRange<UInt16>? = nil) async {
        var configuration = WebRTCConfiguration(name: "vcall-warm-up")
        configuration.udpPorts = udpPorts
        guard let peer = try? WebRTCPeer(configuration: configuration) else { return }
        try? await peer.addReceiveOnly(.vp8)
        try? await peer.addReceiveOnly(.opus)
        if let offer = try? await peer.createOffer() { try? await peer.setLocalDescription(offer) }
        await peer.close()
    }

    /// Stops the connection: unlinks the send branches from their tees without disturbing other peers,
    /// closes the received tracks (their consumers keep their own elements), removes this peer's
    /// elements, and finishes `events`.
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
        for (_, var track) in tracks { await track.unlink(from: pipeline) }
        tracks.removeAll()
        receiveOnly.removeAll()
        for track in shared.takeReceivedTracks() { track.close() }
        if ownsPipeline {
            _ = try? pipeline.setState(.null)
        } else {
            try? pipeline.remove(webrtc)
        }
        continuation.finish()
        logger.debug("closed")
    }

    // MARK: Helpers

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
    private static func fixingFingerprints(_ description: RTCSessionDescriptionInit) -> RTCSessionDescriptionInit {
        guard let certificate = DTLSCertificate.process else { return description }
        return RTCSessionDescriptionInit(type: description.type, sdp: certificate.fixingFingerprints(in: description.sdp))
    }

    private static func webrtcbinValue(_ description: RTCSessionDescriptionInit) throws(WebRTCError) -> Value {
        do {
            return try description.webrtcbinValue()
        } catch {
            throw .invalidDescription(error.description)
        }
    }

    private static func description(in reply: Structure?, field: String) throws(WebRTCError) -> RTCSessionDescriptionInit {
        guard let description = RTCSessionDescriptionInit(webrtcbinValue: reply?[field]) else {
            throw .negotiation("webrtcbin's reply has no \(field)")
        }
        return description
    }
}
