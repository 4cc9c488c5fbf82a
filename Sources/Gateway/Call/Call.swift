import Foundation
import GStreamer
import Logging
import SignalingProtocol
import Synchronization
import WebRTC
import WebRTCTypes

/// The gateway in one room: joins through vcall-server and holds one `WebRTCPeer` per other member,
/// each sending the same encoded tracks (encode once, send to many). In a mesh the roles follow the
/// web app's; as the room's relay (`CallConfiguration.relay`) it forwards everyone's tracks to everyone
/// and always offers (`Call+Relay.swift`).
public actor Call {
    public nonisolated let events: AsyncStream<CallEvent>
    public nonisolated let configuration: CallConfiguration

    let eventSink: AsyncStream<CallEvent>.Continuation
    let pipeline: Pipeline
    let tracks: [OutgoingTrack]
    private let client: SignalingClient
    let logger: Logger
    var selfID: String?
    private var serverICEServers: [RTCIceServer] = []
    var participants: [String: Participant] = [:]
    /// Relay rooms: the tracks forwarded, by publisher and kind.
    var relayPublications: [RelayPublicationKey: RelayPublication] = [:]
    /// A member of a relay room (not the relay): who the relay is, and whose media its m-lines carry.
    var relayMembership: RelayMembership?
    /// The room's members and their names (the relay's track map names participants by id only).
    var memberNames: [String: String] = [:]
    /// The accounts (usernames) of the members who are logged in, this gateway's own included: a recording's
    /// report lists them, as the people who may watch it.
    private var memberAccounts: [String: String] = [:]
    private var inRoom = false
    private var stopped = false
    /// What this gateway sends, as `media-state` tells the room (nil: never said).
    private var ownMediaState: MediaState?
    /// Whether this gateway records the room, for `recording-state`; nil when it cannot record (no folder).
    private var ownRecordingState: Bool?
    /// Offers sent in this call (a track swap must not add any).
    public private(set) var offersSent = 0
    /// Numbers the peers of every Call in the process: their elements' names must differ within a pipeline,
    /// and several Calls may share one (a benchmark's many senders).
    private static let peerSerial = Atomic<Int>(0)

    public init(configuration: CallConfiguration, pipeline: Pipeline, tracks: [OutgoingTrack],
                logger: Logger = Logger(label: "vcall.gateway")) {
        self.configuration = configuration
        self.pipeline = pipeline
        self.tracks = tracks
        self.logger = logger
        client = SignalingClient(url: configuration.serverURL, name: configuration.name, token: configuration.token,
                                 backoff: configuration.reconnectBackoff, trust: configuration.serverTrust, logger: logger)
        (events, eventSink) = AsyncStream.makeStream(of: CallEvent.self)
    }

    /// Tells the room which of our media are on (`media-state`), now and to everyone who joins later.
    public func announceMediaState(_ state: MediaState) {
        guard state != ownMediaState else { return }
        ownMediaState = state
        if inRoom { client.send(.mediaState(state)) }
    }

    /// Tells the room whether this gateway records it (`recording-state`), now and to everyone who joins
    /// later: pages show it and offer the record button, whose `recording-request` comes back as
    /// `CallEvent.recordingRequested`.
    public func announceRecordingState(_ recording: Bool) {
        guard recording != ownRecordingState else { return }
        ownRecordingState = recording
        if inRoom { client.send(.recordingState(recording: recording)) }
    }

    /// Connects, joins the room and takes part until `leave()`; reconnects and rejoins when the socket drops.
    public func run() async {
        let client = self.client
        async let connection: Void = client.run()
        for await event in client.events {
            await handle(event)
        }
        await connection
        eventSink.finish()
    }

    /// Leaves the room, closes every peer connection and stops signaling.
    public func leave() async {
        guard !stopped else { return }
        stopped = true
        if inRoom { client.send(.leaveRoom) }
        for participant in participants.values { await close(participant) }
        participants.removeAll()
        // Let the leave-room frame go out before the socket closes.
        try? await Task.sleep(for: .milliseconds(100))
        client.stop()
    }

    public func status() async -> CallStatus {
        for participant in participants.values { await updateBitrates(participant) }
        return CallStatus(
            room: configuration.room, selfID: selfID, signalingConnected: client.isConnected, inRoom: inRoom,
            members: participants.values.sorted { $0.joinedAt < $1.joinedAt }.map {
                CallStatus.Member(id: $0.id, name: $0.name, connectionState: $0.connectionState,
                                  bitrateIn: $0.bitrateIn, bitrateOut: $0.bitrateOut)
            },
            offersSent: offersSent)
    }

    /// The participants' peers, for tests and benchmarks that read their stats.
    public func peers() -> [String: WebRTCPeer] { participants.mapValues(\.peer) }

    // MARK: Signaling

    private func handle(_ event: SignalingClient.Event) async {
        switch event {
        case .connected(let id, _, let iceServers):
            if let previous = selfID, previous != id {
                logger.info("signaling reconnected as \(id) (was \(previous)); rejoining \(configuration.room)")
            }
            selfID = id
            serverICEServers = iceServers
            if !stopped {
                client.send(.joinRoom(roomId: configuration.room, name: configuration.name, capacity: nil,
                                      role: configuration.relay ? .relay : nil))
            }
        case .disconnected(let reason, let retryIn):
            inRoom = false
            if retryIn != nil {
                eventSink.yield(.signalingLost(reason: reason))
            } else if !stopped {
                eventSink.yield(.signalingFailed(reason: reason))
            }
        case .message(let message):
            await handle(message)
        }
    }

    private func handle(_ message: ServerMessage) async {
        guard !stopped else { return }
        switch message {
        case .roomJoined(_, let me, let peers, _, let relay):
            inRoom = true
            selfID = me.id
            memberNames = Dictionary(peers.map { ($0.id, $0.name) }, uniquingKeysWith: { _, last in last })
            memberAccounts = Dictionary(([me] + peers).compactMap { peer in peer.account.map { (peer.id, $0) } },
                                        uniquingKeysWith: { _, last in last })
            if let ownMediaState { client.send(.mediaState(ownMediaState)) }
            if let ownRecordingState { client.send(.recordingState(recording: ownRecordingState)) }
            if configuration.relay { publishOwnTracks(as: me.id) }
            eventSink.yield(.joined(selfID: me.id, participants: peers))
            if !configuration.relay {
                if let relay, relay != me.id {
                    await useRelay(relay)
                    return
                } else if relayMembership != nil {
                    await useMesh()
                }
            }
            // After a reconnect, members the server does not list have left, unless media still flows
            // with them: then they are reconnecting too (say the server restarted) and keep their peer
            // until they rejoin or their connection fails.
            for (id, participant) in participants where !peers.contains(where: { $0.id == id }) {
                if participant.connectionState == .connected {
                    participant.awaitingRejoin = true
                } else {
                    await remove(participant)
                }
            }
            for peer in peers { participants[peer.id]?.awaitingRejoin = false }
            // The newcomer offers to everyone already there.
            for peer in peers where peer.id != me.id && participants[peer.id] == nil && connects(to: peer.name) {
                guard let participant = await addParticipant(id: peer.id, name: peer.name) else { continue }
                await sendOffer(to: participant)
            }
        case .userJoined(let from, let name, _, let account):
            logger.debug("user-joined: \(name) (\(from))")
            memberNames[from] = name
            memberAccounts[from] = account
            // The newcomer learns what we send, as pages tell each other (a camera that is off shows so).
            if let ownMediaState { client.send(.mediaState(ownMediaState)) }
            if let ownRecordingState { client.send(.recordingState(recording: ownRecordingState)) }
            // In a relay room only the relay connects to us; the newcomer's media may already be mapped.
            guard relayMembership == nil else {
                attributeRelayedTracks()
                return
            }
            if let known = participants[from] {
                // Back after a signaling outage, with the same id: the peer connection carries on.
                known.awaitingRejoin = false
                return
            }
            guard from != selfID, connects(to: name),
                  let participant = await addParticipant(id: from, name: name) else { return }
            if configuration.relay {
                // The relay always offers, at once.
                await renegotiate(participant)
                return
            }
            waitForFirstOffer(from: participant)
        case .userDisconnected(let from):
            memberNames[from] = nil
            memberAccounts[from] = nil
            if relayMembership != nil {
                relayedParticipantLeft(from)
            } else if let participant = participants[from] {
                await remove(participant)
            }
        case .relayChanged(let relay):
            guard !configuration.relay, relay != selfID else { return }
            if let relay {
                await useRelay(relay)
            } else {
                await useMesh()
            }
        case .trackMap(let from, let tracks):
            if relayMembership?.relay == from { relayMembership?.pendingMap = tracks }
        case .offer(let from, let offer):
            await receiveOffer(offer, from: from)
        case .answer(let from, let answer):
            await receiveAnswer(answer, from: from)
        case .iceCandidate(let from, let candidate):
            guard let participant = participants[from] else { return }
            // Kept, so a peer made afresh after an offer collision learns them too. Candidates of an offer
            // we ignore are not dropped: the peer queues them until a remote description, and applies only
            // those of its ICE generation (their usernameFragment).
            participant.remoteCandidates.append(candidate)
            do {
                try await participant.peer.addICECandidate(candidate)
            } catch .staleCandidate(let reason) {
                logger.debug("ICE candidate from \(participant.name) not applied: \(reason)")
            } catch {
                logger.warning("bad ICE candidate from \(participant.name): \(error)")
            }
        case .fullRoom(let roomId):
            eventSink.yield(.problem("room \(roomId) is full: ask its members to make room, or use another --room"))
        case .error(let code, let text) where configuration.relay && !inRoom && (code == .relayTaken || code == .unauthorized):
            // The relay role was refused: a relay that is not one has nothing to do in the room.
            eventSink.yield(.signalingFailed(reason: "cannot be the relay of room \(configuration.room): \(text)"))
            stopped = true
            client.stop()
        case .error(let code, let text):
            logger.warning("server error \(code.rawValue): \(text)")
            eventSink.yield(.problem("the server said \(code.rawValue): \(text)"))
        case .mediaState(let from, let state):
            eventSink.yield(.mediaState(participant: from, state))
        case .recordingRequest(let from, let action):
            eventSink.yield(.recordingRequested(by: from, name: memberNames[from] ?? from, action))
        case .recordingState, .recordingJob:
            break   // another member records, or the server's workers do: nothing to do here
        case .onlineUsers, .incomingCall, .callAccepted, .callRejected, .hangup, .welcome:
            break
        }
    }

    /// The accounts of the room's members now (see `memberAccounts`).
    public func roomAccounts() -> Set<String> { Set(memberAccounts.values) }

    // MARK: Participants

    private func connects(to name: String) -> Bool { configuration.connectsTo?(name) ?? true }

    /// A participant with a new peer that sends every outgoing track, registered and watched.
    private func makeParticipant(id: String, name: String, selfID: String) async throws -> Participant {
        let started = ContinuousClock.now
        defer { logger.debug("peer for \(name) made in \(ContinuousClock.now - started)") }
        let serial = Self.peerSerial.add(1, ordering: .relaxed).newValue
        var webrtc = WebRTCConfiguration(iceServers: serverICEServers + configuration.iceServers,
                                         latencyMilliseconds: configuration.latencyMilliseconds,
                                         name: "peer\(serial)")
        webrtc.udpPorts = configuration.udpPorts
        var peerLogger = logger
        peerLogger[metadataKey: "participant"] = "\(id)"
        let peer = try WebRTCPeer(configuration: webrtc, pipeline: pipeline, logger: peerLogger)
        let participant = Participant(id: id, name: name, selfID: selfID, peer: peer)
        if configuration.relay {
            try await addRelayTracks(to: participant)
        } else {
            for track in tracks { try await peer.addTrack(track.codec, from: track.tee) }
            // A kind the gateway does not send is still received, in a codec WebM holds: without this a
            // gateway that only records would offer no m-line for it, and could accept H.264 in an answer.
            let sentKinds = Set(tracks.map(\.codec.kind))
            // (The relay's offers have an m-line for every kind: its members add none of their own.)
            if relayMembership == nil {
                if !sentKinds.contains(.video) { try await peer.addReceiveOnly(.vp8) }
                if !sentKinds.contains(.audio) { try await peer.addReceiveOnly(.opus) }
            }
        }
        participants[id] = participant
        watch(participant)
        return participant
    }

    func addParticipant(id: String, name: String) async -> Participant? {
        guard let selfID else { return nil }
        do {
            let participant = try await makeParticipant(id: id, name: name, selfID: selfID)
            logger.info("\(name) (\(id)) is in the call")
            eventSink.yield(.participantJoined(id: id, name: name))
            return participant
        } catch {
            logger.error("cannot make a peer connection for \(name): \(error)")
            eventSink.yield(.problem("cannot connect to \(name): \(error)"))
            return nil
        }
    }

    /// Forwards a peer's events into the actor.
    private func watch(_ participant: Participant) {
        let peer = participant.peer
        let id = participant.id
        participant.eventsTask?.cancel()
        participant.eventsTask = Task { [weak self] in
            for await event in peer.events {
                await self?.handle(event, from: peer, participant: id)
            }
        }
    }

    private func handle(_ event: WebRTCPeerEvent, from peer: WebRTCPeer, participant id: String) async {
        // Events of a peer that was replaced (offer collision) or closed are stale.
        guard let participant = participants[id], participant.peer === peer else { return }
        switch event {
        case .localCandidate(let candidate):
            client.send(.iceCandidate(to: id, candidate: candidate))
        case .connectionState(let state):
            participant.connectionState = state
            logger.info("\(participant.name): \(state.rawValue)")
            eventSink.yield(.connectionState(participant: id, state))
            if participant.awaitingRejoin, state == .failed || state == .closed {
                await remove(participant)
                return
            }
            if state == .failed, configuration.relay {
                await renegotiate(participant, iceRestart: true)
            } else if state == .failed, relayMembership != nil {
                // The relay offers, ICE restarts included.
            } else if state == .failed, !participant.polite {
                // The impolite side restarts ICE, so both sides do not offer at once.
                await sendOffer(to: participant, iceRestart: true)
            }
        case .remoteTrack(let track):
            if relayMembership?.relay == id {
                relayedTrackArrived(track)
                return
            }
            eventSink.yield(.remoteTrack(participant: id, name: participant.name, track: track))
            if configuration.relay { await publish(track, of: participant) }
        case .negotiationNeeded, .iceConnectionState, .iceGatheringState:
            // Offers are made explicitly (newcomer, first-offer timeout, ICE restart); the gateway's tracks never change.
            break
        }
    }

    func remove(_ participant: Participant) async {
        participants[participant.id] = nil
        if configuration.relay { await unpublishAll(of: participant.id) }
        logger.info("\(participant.name) (\(participant.id)) left")
        eventSink.yield(.participantLeft(id: participant.id, name: participant.name))
        // What the participant sent last is still in the jitterbuffer: let it out (to a recording that is
        // finishing) before the peer goes. Other events are handled meanwhile (the actor is reentrant).
        if participant.connectionState == .connected {
            try? await Task.sleep(for: .milliseconds(configuration.latencyMilliseconds + 50))
        }
        await close(participant)
    }

    private func close(_ participant: Participant) async {
        participant.firstOfferTask?.cancel()
        participant.publicationHoldTask?.cancel()
        participant.eventsTask?.cancel()
        // What this connection carried, for the log (and for tests that compare it with a recording).
        if let stats = try? await participant.peer.stats(timeout: .seconds(2)), stats.framesSent + stats.framesReceived > 0 {
            logger.info("media with \(participant.name): sent \(stats.videoFramesSent) video frames, \(stats.framesSent - stats.videoFramesSent) audio frames; received \(stats.videoFramesReceived) video frames, \(stats.framesReceived - stats.videoFramesReceived) audio frames; \(stats.packetsLost) packets lost")
        }
        await participant.peer.close()
    }

    // MARK: Negotiation

    /// The newcomer offers first: wait `firstOfferTimeout` for its offer, then offer ourselves.
    func waitForFirstOffer(from participant: Participant) {
        let id = participant.id, timeout = configuration.firstOfferTimeout
        participant.firstOfferTask = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            await self?.offerIfNoneArrived(from: id)
        }
    }

    private func offerIfNoneArrived(from id: String) async {
        guard let participant = participants[id], !participant.answering, !participant.awaitingAnswer,
              await participant.peer.remoteDescription == nil else { return }
        logger.info("no offer from \(participant.name) within \(configuration.firstOfferTimeout): offering")
        await sendOffer(to: participant)
    }

    func sendOffer(to participant: Participant, iceRestart: Bool = false) async {
        do {
            participant.awaitingAnswer = true
            let offer = try await participant.peer.createOffer(iceRestart: iceRestart)
            try await participant.peer.setLocalDescription(offer)
            if configuration.relay {
                // Before the offer: the member must know whose track each m-line carries when it applies it.
                client.send(.trackMap(to: participant.id, tracks: await trackMap(for: participant)))
            }
            offersSent += 1
            client.send(.offer(to: participant.id, offer: offer))
            eventSink.yield(.offerSent(to: participant.id))
        } catch {
            participant.awaitingAnswer = false
            logger.error("cannot offer to \(participant.name): \(error)")
            eventSink.yield(.problem("negotiation with \(participant.name) failed: \(error)"))
        }
    }

    private func receiveOffer(_ offer: RTCSessionDescriptionInit, from id: String) async {
        logger.debug("offer from \(id)")
        if let membership = relayMembership {
            guard id == membership.relay else {
                logger.debug("offer from \(id) ignored: in a relay room only the relay connects")
                return
            }
            if participants[id] == nil { _ = await addParticipant(id: id, name: memberNames[id] ?? "relay") }
        }
        guard var participant = participants[id] else {
            logger.warning("offer from \(id), who is not in the room: ignored")
            return
        }
        guard !configuration.relay else {
            logger.warning("offer from \(participant.name) ignored: members answer the relay's offers and never offer to it")
            return
        }
        participant.firstOfferTask?.cancel()
        if participant.awaitingAnswer {
            guard participant.polite else {
                // Impolite: our offer wins; theirs (and its candidates) is dropped.
                logger.info("offer collision with \(participant.name): keeping ours")
                return
            }
            logger.info("offer collision with \(participant.name): answering theirs")
            guard let fresh = await replacePeer(of: participant) else { return }
            participant = fresh
        }
        participant.answering = true
        defer { participant.answering = false }
        do {
            guard offer.type == .offer else { throw GatewayError.signaling("an offer message carried a description of type \(offer.type.rawValue)") }
            try await participant.peer.setRemoteDescription(offer)
            let answer = try await participant.peer.createAnswer()
            try await participant.peer.setLocalDescription(answer)
            client.send(.answer(to: id, answer: answer))
            if relayMembership?.relay == id { relayOfferAnswered() }
        } catch {
            logger.error("cannot answer \(participant.name): \(error)")
            eventSink.yield(.problem("negotiation with \(participant.name) failed: \(error)"))
        }
    }

    private func receiveAnswer(_ answer: RTCSessionDescriptionInit, from id: String) async {
        guard let participant = participants[id], participant.awaitingAnswer else {
            logger.warning("unexpected answer from \(id): ignored")
            return
        }
        participant.awaitingAnswer = false
        do {
            guard answer.type == .answer else { throw GatewayError.signaling("an answer message carried a description of type \(answer.type.rawValue)") }
            try await participant.peer.setRemoteDescription(answer)
        } catch {
            logger.error("cannot apply \(participant.name)'s answer: \(error)")
            eventSink.yield(.problem("negotiation with \(participant.name) failed: \(error)"))
        }
        if participant.offerPending { await renegotiate(participant) }
    }

    /// A polite side's stand-in for rollback: a fresh peer with the same tracks.
    private func replacePeer(of participant: Participant) async -> Participant? {
        await close(participant)
        participants[participant.id] = nil
        guard let selfID else { return nil }
        do {
            let fresh = try await makeParticipant(id: participant.id, name: participant.name, selfID: selfID)
            fresh.joinedAt = participant.joinedAt
            // Their candidates so far belong to the offer we are about to answer.
            fresh.remoteCandidates = participant.remoteCandidates
            for candidate in participant.remoteCandidates { try? await fresh.peer.addICECandidate(candidate) }
            return fresh
        } catch {
            eventSink.yield(.problem("cannot connect to \(participant.name): \(error)"))
            return nil
        }
    }

    // MARK: Status

    private func updateBitrates(_ participant: Participant) async {
        guard let stats = try? await participant.peer.stats() else { return }
        let now = ContinuousClock.now
        let sent = stats.bytesSent
        let received = stats.bytesReceived
        if let last = participant.lastStats {
            let seconds = last.at.duration(to: now) / .seconds(1)
            if seconds > 0.2 {
                participant.bitrateOut = Double(sent - last.sent) * 8 / seconds
                participant.bitrateIn = Double(received - last.received) * 8 / seconds
                participant.lastStats = (now, sent, received)
            }
        } else {
            participant.lastStats = (now, sent, received)
        }
    }
}
