import Logging
import SignalingProtocol
import WebRTC

/// The gateway as a member of a room that has a relay (someone else's): it keeps one peer, with the
/// relay, answers the relay's offers, sends its own tracks on the m-lines the relay receives on, and
/// tells the session whose media each received track carries, from the relay's `track-map`
/// (docs/protocol.md, "Relay rooms"). When the relay goes, it calls everyone in a mesh again.
extension Call {
    /// The room has a relay (`room-joined` or `relay-changed`): drop the mesh and wait for its offer.
    func useRelay(_ relay: String) async {
        guard relayMembership?.relay != relay else { return }
        logger.info("room \(configuration.room) has a relay (\(memberNames[relay] ?? relay)): connecting only to it")
        for participant in Array(participants.values) { await remove(participant) }
        relayMembership = RelayMembership(relay: relay)
    }

    /// The relay is gone: everyone connects to everyone again; of each pair the lower id offers at once,
    /// the other after the first-offer timeout (as the web app).
    func useMesh() async {
        guard let membership = relayMembership else { return }
        logger.info("the relay left room \(configuration.room): calling everyone directly")
        for participant in Set(membership.attributed.values) { relayedParticipantLeft(participant) }
        relayMembership = nil
        if let relayPeer = participants[membership.relay] { await remove(relayPeer) }
        guard let selfID else { return }
        for (id, name) in memberNames where id != selfID && id != membership.relay && participants[id] == nil {
            guard let participant = await addParticipant(id: id, name: name) else { continue }
            if selfID < id {
                await sendOffer(to: participant)
            } else {
                waitForFirstOffer(from: participant)
            }
        }
    }

    /// A track from the relay: whose it is comes from the track map (now, or with a later offer).
    func relayedTrackArrived(_ track: ReceivedTrack) {
        guard let mid = track.mid else {
            logger.warning("a track from the relay has no mid: not attributed")
            return
        }
        relayMembership?.received[mid] = track
        attributeRelayedTracks()
    }

    /// The relay's offer was answered: its track map holds from now on.
    func relayOfferAnswered() {
        guard let map = relayMembership?.pendingMap else { return }
        relayMembership?.map = Dictionary(map.map { ($0.mid, $0) }, uniquingKeysWith: { _, last in last })
        relayMembership?.pendingMap = nil
        attributeRelayedTracks()
    }

    /// Announces each received track under the participant the map gives its mid, once per change (a
    /// reused mid announces the same track again, under its new participant). A participant the room
    /// has not announced yet (its `user-joined` may come after the map) waits for it.
    func attributeRelayedTracks() {
        guard let membership = relayMembership else { return }
        for (mid, track) in membership.received {
            guard let entry = membership.map[mid], entry.participant != selfID, memberNames[entry.participant] != nil,
                  membership.attributed[mid] != entry.participant else { continue }
            relayMembership?.attributed[mid] = entry.participant
            eventSink.yield(.remoteTrack(participant: entry.participant, name: memberNames[entry.participant] ?? entry.participant,
                                         track: track))
        }
    }

    /// A member left a relay room: its recordings end; its mids carry nothing until a map says otherwise.
    func relayedParticipantLeft(_ participant: String) {
        guard let membership = relayMembership else { return }
        relayMembership?.map = membership.map.filter { $0.value.participant != participant }
        guard membership.attributed.values.contains(participant) else { return }
        for (mid, owner) in membership.attributed where owner == participant { relayMembership?.attributed[mid] = nil }
        eventSink.yield(.participantLeft(id: participant, name: memberNames[participant] ?? participant))
    }

    /// The kinds `participant` sends: its peer's remote description in a mesh, the relay's track map in a
    /// relay room (a recorder waits for each of them before it starts the file).
    public func sendingKinds(of participant: String) async -> Set<MediaKind> {
        if let membership = relayMembership {
            return Set(membership.map.values.filter { $0.participant == participant }.map { $0.kind == .audio ? .audio : .video })
        }
        return await participants[participant]?.peer.remoteSendingKinds ?? []
    }
}

/// Where a member of a relay room stands with the relay.
struct RelayMembership {
    let relay: String
    /// The map that came with the offer being answered, and the one that holds (by mid).
    var pendingMap: [TrackMapEntry]?
    var map: [String: TrackMapEntry] = [:]
    /// The tracks received from the relay, by mid, and the participant each was last announced under.
    var received: [String: ReceivedTrack] = [:]
    var attributed: [String: String] = [:]
}
