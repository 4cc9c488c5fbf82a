import GStreamer
import Logging
import SignalingProtocol
import WebRTC

/// The gateway as a room's relay (`CallConfiguration.relay`): one peer per member, receiving that
/// member's tracks on the first audio and video m-lines and sending every other publisher's on send-only
/// m-lines, forwarded without decoding (`PublishedTrack`). The relay always offers, one offer at a time
/// per member, and sends `track-map` before each (docs/protocol.md, "Relay rooms").
extension Call {
    /// A member's peer in a relay room: its own slots first (their m-lines come first), then one
    /// send-only track per publication of everyone else.
    func addRelayTracks(to participant: Participant) async throws {
        let peer = participant.peer
        participant.ownSlots[.audio] = try await peer.addReceiveOnly(.opus, mid: participant.nextMid())
        participant.ownSlots[.video] = try await peer.addReceiveOnly(.vp8, mid: participant.nextMid())
        for publication in relayPublications.values where publication.publisher != participant.id {
            let slot = try await peer.addTrack(publication.codec, from: publication.tee, streamID: publication.publisher,
                                               sendOnly: true, mid: participant.nextMid())
            participant.forwardSlots.append((slot, publication.codec.kind, publication.publisher))
        }
    }

    /// A member's track arrived: publish it and forward it to everyone else, together with the member's
    /// other kinds. Its answer says which kinds it sends; their tracks arrive some milliseconds apart,
    /// and forwarding them in one offer spares each subscriber a renegotiation and lets a recording
    /// member see the whole participant in one track map. A kind that does not come within
    /// `relayPublicationHold` is not waited for.
    func publish(_ track: ReceivedTrack, of participant: Participant) async {
        guard let codec = track.codec else {
            logger.warning("not forwarding \(participant.name)'s \(track): the relay forwards \(Codec.allCases.map(\.encodingName))")
            return
        }
        let key = RelayPublicationKey(publisher: participant.id, kind: codec.kind)
        if let previous = relayPublications[key] { await unpublish(previous) }
        do {
            let published = try PublishedTrack(publisher: participant.id, track: track, codec: codec, pipeline: pipeline,
                                               name: "relay-\(participant.id.prefix(8))-\(codec.kind.rawValue)")
            let publication = RelayPublication(publisher: participant.id, codec: codec, tee: published.tee, published: published)
            relayPublications[key] = publication
            participant.heldPublications.append(publication)
        } catch {
            logger.error("cannot forward \(participant.name)'s \(codec.kind.rawValue): \(error)")
            eventSink.yield(.problem("cannot forward \(participant.name)'s \(codec.kind.rawValue): \(error)"))
            return
        }
        let announced = await participant.peer.remoteSendingKinds
        let published = Set(relayPublications.keys.filter { $0.publisher == participant.id }.map(\.kind))
        if announced.isSubset(of: published) {
            await releaseHeldPublications(of: participant)
        } else if participant.publicationHoldTask == nil {
            let id = participant.id
            participant.publicationHoldTask = Task { [weak self] in
                try? await Task.sleep(for: relayPublicationHold)
                guard !Task.isCancelled else { return }
                await self?.releaseHeldPublications(of: id)
            }
        }
    }

    /// The gateway's own sources, published under its own id.
    func publishOwnTracks(as selfID: String) {
        for track in tracks {
            relayPublications[RelayPublicationKey(publisher: selfID, kind: track.codec.kind)] =
                RelayPublication(publisher: selfID, codec: track.codec, tee: track.tee, published: nil)
        }
    }

    private func releaseHeldPublications(of id: String) async {
        guard let participant = participants[id] else { return }
        await releaseHeldPublications(of: participant)
    }

    /// Forwards the participant's held publications to everyone else, one offer per subscriber.
    private func releaseHeldPublications(of participant: Participant) async {
        participant.publicationHoldTask?.cancel()
        participant.publicationHoldTask = nil
        let publications = participant.heldPublications.filter {
            relayPublications[RelayPublicationKey(publisher: $0.publisher, kind: $0.codec.kind)]?.tee === $0.tee
        }
        participant.heldPublications = []
        guard !publications.isEmpty, participants[participant.id] === participant else { return }
        logger.info("forwarding \(participant.name)'s \(publications.map(\.codec.kind.rawValue).joined(separator: " and "))")
        for subscriber in participants.values where subscriber.id != participant.id {
            var changed = false
            for publication in publications where await attach(publication, to: subscriber) { changed = true }
            if changed { await renegotiate(subscriber) }
        }
    }

    /// Sends `publication` to `subscriber`, in a stopped slot of its kind if there is one (m-lines are
    /// never removed, so reusing them keeps the session from growing), else in a new one. The caller offers.
    /// False when nothing changed: a subscriber that joined while the publication was held got it then.
    private func attach(_ publication: RelayPublication, to subscriber: Participant) async -> Bool {
        guard !subscriber.forwardSlots.contains(where: { $0.publisher == publication.publisher && $0.kind == publication.codec.kind })
        else { return false }
        do {
            if let index = subscriber.forwardSlots.firstIndex(where: { $0.kind == publication.codec.kind && $0.publisher == nil }) {
                try await subscriber.peer.setSource(of: subscriber.forwardSlots[index].id, to: publication.tee,
                                                    streamID: publication.publisher)
                subscriber.forwardSlots[index].publisher = publication.publisher
            } else {
                let slot = try await subscriber.peer.addTrack(publication.codec, from: publication.tee,
                                                              streamID: publication.publisher, sendOnly: true,
                                                              mid: subscriber.nextMid())
                subscriber.forwardSlots.append((slot, publication.codec.kind, publication.publisher))
            }
            return true
        } catch {
            logger.error("cannot forward to \(subscriber.name): \(error)")
            eventSink.yield(.problem("cannot forward to \(subscriber.name): \(error)"))
            return false
        }
    }

    /// A member left: stop forwarding its tracks (their slots go silent, free for the next publisher)
    /// and remove its publications.
    func unpublishAll(of publisher: String) async {
        for (key, publication) in relayPublications where key.publisher == publisher {
            await unpublish(publication)
        }
    }

    private func unpublish(_ publication: RelayPublication) async {
        relayPublications[RelayPublicationKey(publisher: publication.publisher, kind: publication.codec.kind)] = nil
        for subscriber in participants.values {
            var changed = false
            for index in subscriber.forwardSlots.indices where subscriber.forwardSlots[index].publisher == publication.publisher
                && subscriber.forwardSlots[index].kind == publication.codec.kind {
                do {
                    try await subscriber.peer.setSource(of: subscriber.forwardSlots[index].id, to: nil, streamID: nil)
                } catch {
                    logger.warning("cannot stop forwarding to \(subscriber.name): \(error)")
                }
                subscriber.forwardSlots[index].publisher = nil
                changed = true
            }
            if changed { await renegotiate(subscriber) }
        }
        publication.published?.close()
    }

    /// Offers to `participant` now, or once its current offer is answered (an ICE restart asked
    /// meanwhile is kept for that offer).
    func renegotiate(_ participant: Participant, iceRestart: Bool = false) async {
        guard participants[participant.id] === participant else { return }
        if participant.awaitingAnswer {
            participant.offerPending = true
            participant.iceRestartPending = participant.iceRestartPending || iceRestart
            return
        }
        let restart = iceRestart || participant.iceRestartPending
        participant.offerPending = false
        participant.iceRestartPending = false
        await sendOffer(to: participant, iceRestart: restart)
    }

    /// The `track-map` for the offer just applied locally: the member's own m-lines, then every
    /// forwarding m-line that carries a track now.
    func trackMap(for participant: Participant) async -> [TrackMapEntry] {
        var entries: [TrackMapEntry] = []
        for kind in [MediaKind.audio, .video] {
            if let slot = participant.ownSlots[kind], let mid = await participant.peer.mid(of: slot) {
                entries.append(TrackMapEntry(mid: mid, participant: participant.id, kind: TrackMapEntry.Kind(kind)))
            }
        }
        for slot in participant.forwardSlots {
            guard let publisher = slot.publisher, let mid = await participant.peer.mid(of: slot.id) else { continue }
            entries.append(TrackMapEntry(mid: mid, participant: publisher, kind: TrackMapEntry.Kind(slot.kind)))
        }
        return entries
    }
}

/// Whose track a relay forwards, and of which kind: one publication per member and kind.
struct RelayPublicationKey: Hashable {
    let publisher: String
    let kind: MediaKind
}

/// A track the relay forwards: a member's (depayloaded once, `published`) or the gateway's own source.
struct RelayPublication {
    let publisher: String
    let codec: Codec
    let tee: Element
    let published: PublishedTrack?
}

/// How long the relay holds a member's first track for the member's other announced kinds.
let relayPublicationHold = Duration.seconds(1)

extension TrackMapEntry.Kind {
    init(_ kind: MediaKind) {
        self = kind == .audio ? .audio : .video
    }
}
