import Foundation
import GStreamer
import Logging
import WebRTC
import WebRTCTypes

/// One other member of the room, as the gateway sees them: their `WebRTCPeer` and where
/// negotiation with them stands.
///
/// Roles follow the web app (Public/js/peer.js) so the two always agree:
/// - the newcomer offers first; an existing member waits `firstOfferTimeout` for that offer, then offers itself;
/// - on an offer collision the side whose id sorts higher (plain string comparison) is polite.
///   webrtcbin 1.22 cannot roll back a local offer, so a polite gateway replaces its not-yet-connected
///   peer with a fresh one and answers; an impolite one ignores the incoming offer.
final class Participant {
    let id: String
    var name: String
    let polite: Bool
    var peer: WebRTCPeer
    var eventsTask: Task<Void, Never>?
    var firstOfferTask: Task<Void, Never>?
    /// We sent an offer and have not yet applied the answer.
    var awaitingAnswer = false
    /// The offer currently applied came from them and we have not answered it yet.
    var answering = false
    /// Every candidate they sent, in order (nil = end of candidates).
    var remoteCandidates: [RTCIceCandidateInit?] = []
    var connectionState: PeerConnectionState = .new
    /// Not listed when we rejoined after a signaling outage, but media still flowed: kept until they rejoin or fail.
    var awaitingRejoin = false
    var lastStats: (at: ContinuousClock.Instant, sent: Int, received: Int)?
    var bitrateIn: Double = 0
    var bitrateOut: Double = 0
    var joinedAt = ContinuousClock.now
    /// Relay rooms (this gateway is the relay): the participant's own receive-only m-lines, by kind.
    var ownSlots: [MediaKind: TransceiverID] = [:]
    /// Relay rooms: the forwarding m-lines sent to this participant and whose track each carries now
    /// (nil: stopped, free for the next publisher of its kind).
    var forwardSlots: [(id: TransceiverID, kind: MediaKind, publisher: String?)] = []
    /// Relay rooms: the forwarded tracks changed while an offer was out; offer again once it is answered.
    var offerPending = false
    /// Relay rooms: the pending offer must restart ICE (the connection failed while an offer was out).
    var iceRestartPending = false
    /// Relay rooms: this participant's publications not yet forwarded (waiting for its other kinds).
    var heldPublications: [RelayPublication] = []
    var publicationHoldTask: Task<Void, Never>?
    private var midsGiven = 0

    /// Relay rooms: the mid of the next m-line the relay adds to this participant's session ("0", "1", …).
    func nextMid() -> String {
        defer { midsGiven += 1 }
        return String(midsGiven)
    }

    init(id: String, name: String, selfID: String, peer: WebRTCPeer) {
        self.id = id
        self.name = name
        self.polite = selfID > id
        self.peer = peer
    }
}
