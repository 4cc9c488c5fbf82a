// Relay rooms (docs/protocol.md, "Relay rooms"): when the room has a relay (an SFU), the page keeps
// exactly one RTCPeerConnection, to the relay, instead of one per member.
//
//  - The relay always offers; the page only answers, one offer at a time, in arrival order. The page
//    never offers: `negotiationneeded` is ignored (counted).
//  - Right before each offer the relay sends `track-map` [{mid, participant, kind}]. The map takes
//    effect with the offer that follows it and holds until the next one; a mid the map does not list
//    carries nothing. The relay reuses mids: when a mid changes participant, the same receiver track
//    now shows someone else, so media is attributed from the map after every offer, never once in
//    `ontrack`. Until a first map arrives, a track's msid stream id (the participant's id) stands in.
//  - The first audio and first video m-lines are the page's own (the map lists them under our id):
//    the page answers `sendonly` there with its microphone and camera, `inactive` for a kind it has
//    no track of. Screen sharing swaps the video sender's track (replaceTrack), no renegotiation.
//  - An offer whose SDP session id (`o=` line) differs from the current remote description's starts
//    a new session: the relay made a new connection for us (say we came back after the server's grace
//    period, so it saw us leave and rejoin). The page answers it on a fresh RTCPeerConnection:
//    Chromium takes such an offer on the old one but never finishes connecting (new DTLS
//    fingerprint). A session keeps its id across offers (RFC 3264 section 8; browsers do, and so does
//    webrtcbin, checked with GStreamer 1.22).
//
// RelayConnection is that one connection. RelayedPeer is how room.js sees one participant reached
// through it: the part of peer.js's Peer interface the room page and inspect.js use (state, pc, name,
// counters, close(), 'track'/'state' events, stats), so tiles, names, media-state and the inspection
// API work the same in both kinds of room.

import { candidateInit, inboundSummary } from './peer.js';

class Emitter {
  constructor() {
    this.listeners = new Map();
  }

  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(fn);
  }

  off(event, fn) {
    this.listeners.get(event)?.delete(fn);
  }

  emit(event, value) {
    for (const fn of this.listeners.get(event) || []) fn(value);
  }
}

/** A UI-level state (as peer.js's Peer.state) for an RTCPeerConnection. */
function uiState(pc, closed) {
  if (closed) return 'closed';
  switch (pc.connectionState) {
    case 'connected': return 'connected';
    case 'disconnected': return 'reconnecting';
    case 'failed': return 'failed';
    case 'closed': return 'closed';
    default: return 'connecting';
  }
}

/** The inbound-rtp entry of a receiver's stats, or null. */
async function inboundRtp(receiver) {
  const stats = await receiver.getStats();
  let result = null;
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp') result = s;
  });
  return result;
}

export class RelayConnection extends Emitter {
  /**
   * @param {object} o
   * @param {string} o.relayId the relay's peer id
   * @param {string} o.selfId our own id: the track map names our own m-lines with it
   * @param {RTCIceServer[]} o.iceServers
   * @param {(msg: object) => boolean} o.send sends one signaling message
   * @param {() => {audio: MediaStreamTrack|null, video: MediaStreamTrack|null}} o.localTracks what we
   *   send now (read at every offer, so a screen share started meanwhile is what goes out)
   */
  constructor(o) {
    super();
    this.relayId = o.relayId;
    this.selfId = o.selfId;
    this.sendSignal = o.send;
    this.localTracks = o.localTracks;
    this.closed = false;
    this.work = Promise.resolve();
    this.nextMap = null; // the last track-map received, for the offer that follows it
    this.trackMap = null; // mid → {participant, kind}: the map of the offer applied last (null before any)
    this.media = new Map(); // participant id → {audio, video}: receiver tracks as of the last offer
    this.counters = {
      offersReceived: 0, answersSent: 0, offersFailed: 0, trackMaps: 0, sessions: 0,
      candidatesSent: 0, candidatesReceived: 0, candidatesQueued: 0, negotiationNeededIgnored: 0,
    };
    this.iceServers = o.iceServers || [];
    this.pc = null;
    this.startSession();
  }

  /** A new RTCPeerConnection for a new session with the relay (the first, or one it started anew). */
  startSession() {
    if (this.pc) {
      for (const handler of ['onnegotiationneeded', 'onicecandidate', 'ontrack', 'onconnectionstatechange', 'oniceconnectionstatechange']) this.pc[handler] = null;
      this.pc.close();
    }
    this.counters.sessions += 1;
    this.pendingCandidates = []; // candidates that came before the first offer
    this.streamIdByMid = new Map(); // mid → msid stream id, from ontrack: the stand-in before any map
    this.audioTransceiver = null; // our own m-lines
    this.videoTransceiver = null;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    // The relay offers every change itself (and ICE restarts); an offer from us would break its rule
    // of one offer at a time, so there is nothing to do here.
    pc.onnegotiationneeded = () => {
      this.counters.negotiationNeededIgnored += 1;
    };
    pc.onicecandidate = ({ candidate }) => {
      this.counters.candidatesSent += 1;
      this.send({ type: 'ice-candidate', candidate: candidateInit(candidate) });
    };
    pc.ontrack = ({ transceiver, streams }) => {
      if (transceiver.mid && streams[0]) this.streamIdByMid.set(transceiver.mid, streams[0].id);
    };
    pc.onconnectionstatechange = () => this.emit('state', this.state);
    pc.oniceconnectionstatechange = () => this.emit('state', this.state);
    this.emit('state', this.state);
  }

  get state() {
    return uiState(this.pc, this.closed);
  }

  /** Our own video sender (the camera or the screen goes out there), or null before the first offer. */
  get videoSender() {
    return this.videoTransceiver ? this.videoTransceiver.sender : null;
  }

  send(msg) {
    if (this.closed) return;
    this.sendSignal({ ...msg, to: this.relayId });
  }

  /** Handle a `track-map`, `offer` or `ice-candidate` from the relay, in arrival order. */
  handleSignal(msg) {
    this.work = this.work.then(() => this.process(msg)).catch((err) => {
      if (this.closed) return; // closed mid-way (the relay left): nothing is wrong
      console.error(`vcall: handling ${msg.type} from the relay failed`, err);
      this.emit('error', err);
    });
    return this.work;
  }

  async process(msg) {
    if (this.closed) return;
    if (msg.type === 'track-map') {
      this.counters.trackMaps += 1;
      this.nextMap = parseTrackMap(msg.tracks);
    } else if (msg.type === 'offer') {
      const offer = msg.offer;
      if (!offer || typeof offer.sdp !== 'string' || (offer.type && offer.type !== 'offer')) {
        console.warn('vcall: ignoring a description from the relay that is not an offer', offer && offer.type);
        return;
      }
      await this.answer({ type: 'offer', sdp: offer.sdp });
    } else if (msg.type === 'ice-candidate') {
      this.counters.candidatesReceived += 1;
      if (!this.pc.remoteDescription) {
        this.counters.candidatesQueued += 1;
        this.pendingCandidates.push(msg.candidate);
      } else {
        await this.addCandidate(msg.candidate);
      }
    }
    // `answer` cannot come: we never offer.
  }

  async answer(offer) {
    this.counters.offersReceived += 1;
    const map = this.nextMap ?? this.trackMap;
    this.nextMap = null;
    const current = this.pc.remoteDescription;
    if (current && sdpSessionId(current.sdp) !== sdpSessionId(offer.sdp)) {
      console.info('vcall: the relay started a new session; answering it on a new connection');
      this.startSession();
    }
    const pc = this.pc;
    try {
      await pc.setRemoteDescription(offer);
    } catch (err) {
      this.counters.offersFailed += 1;
      throw err;
    }
    if (this.closed) return;
    this.trackMap = map;
    await this.sendOwnMedia();
    await pc.setLocalDescription();
    if (this.closed) return;
    const answer = pc.localDescription;
    this.counters.answersSent += 1;
    this.send({ type: 'answer', answer: { type: answer.type, sdp: answer.sdp } });
    const queued = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const c of queued) await this.addCandidate(c);
    this.attributeMedia();
  }

  /** Put our microphone and camera on our own m-lines (before the answer is made). */
  async sendOwnMedia() {
    // Our m-lines are those the map gives our id; else (no map, or it names none of a kind) the first
    // of each kind that it does not give anyone else.
    const own = { audio: null, video: null };
    const first = { audio: null, video: null };
    for (const t of this.pc.getTransceivers()) {
      if (!t.mid || t.currentDirection === 'stopped') continue;
      const kind = t.receiver.track.kind;
      const participant = this.trackMap?.get(t.mid)?.participant;
      if (participant === this.selfId && !own[kind]) own[kind] = t;
      if (!participant && !first[kind]) first[kind] = t;
    }
    for (const kind of ['audio', 'video']) own[kind] ||= first[kind];
    this.audioTransceiver = own.audio;
    this.videoTransceiver = own.video;
    const tracks = this.localTracks();
    for (const kind of ['audio', 'video']) {
      const transceiver = own[kind];
      if (!transceiver) continue;
      const track = tracks[kind];
      transceiver.direction = track ? 'sendonly' : 'inactive';
      if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
    }
  }

  /** Whose media each receiving m-line carries now; emits 'media' (participant id → {audio, video}). */
  attributeMedia() {
    if (this.closed) return;
    const media = new Map();
    for (const t of this.pc.getTransceivers()) {
      if (!t.mid || t === this.audioTransceiver || t === this.videoTransceiver) continue;
      if (t.currentDirection !== 'recvonly' && t.currentDirection !== 'sendrecv') continue;
      const participant = this.trackMap ? this.trackMap.get(t.mid)?.participant : this.streamIdByMid.get(t.mid);
      if (!participant || participant === this.selfId) continue;
      const track = t.receiver.track;
      const entry = media.get(participant) || { audio: null, video: null };
      if (!entry[track.kind]) entry[track.kind] = track; // one track of a kind per participant is shown
      media.set(participant, entry);
    }
    this.media = media;
    this.emit('media', media);
  }

  /** The receiver of `participant`'s media of `kind` as of the last offer, or null. */
  receiverOf(participant, kind) {
    const track = this.media.get(participant)?.[kind];
    if (!track) return null;
    return this.pc.getReceivers().find((r) => r.track === track) || null;
  }

  async addCandidate(candidate) {
    try {
      // null means "end of candidates".
      await this.pc.addIceCandidate(candidate ?? undefined);
    } catch (err) {
      console.warn('vcall: bad ICE candidate from the relay', err);
    }
  }

  /** Send `track` in place of the current video (screen sharing): replaceTrack, no renegotiation. */
  async replaceVideoTrack(track) {
    if (this.videoSender && this.videoSender.track !== track) await this.videoSender.replaceTrack(track);
  }

  async inboundStats(participant, kind) {
    const receiver = this.receiverOf(participant, kind);
    const s = receiver ? await inboundRtp(receiver) : null;
    return s ? inboundSummary(s) : null;
  }

  async outboundVideoStats() {
    const sender = this.videoSender;
    if (!sender || !sender.track) return null;
    const stats = await sender.getStats();
    let result = null;
    stats.forEach((s) => {
      if (s.type === 'outbound-rtp') result = { framesEncoded: s.framesEncoded || 0, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0 };
    });
    return result;
  }

  /** What the inspection API shows (see inspect.js). */
  describe() {
    const pc = this.pc;
    const map = {};
    for (const [mid, entry] of this.trackMap || []) map[mid] = { ...entry };
    const participantOf = (t) => (this.trackMap ? this.trackMap.get(t.mid)?.participant : this.streamIdByMid.get(t.mid)) ?? null;
    return {
      relay: this.relayId,
      connectionState: pc.connectionState,
      iceConnectionState: pc.iceConnectionState,
      signalingState: pc.signalingState,
      ...this.counters,
      senders: pc.getSenders().filter((s) => s.track).length,
      sending: { audio: this.audioTransceiver?.sender.track?.label ?? null, video: this.videoSender?.track?.label ?? null },
      trackMap: map,
      transceivers: pc.getTransceivers().map((t) => ({
        mid: t.mid, kind: t.receiver.track.kind, direction: t.direction, currentDirection: t.currentDirection,
        participant: participantOf(t), own: t === this.audioTransceiver || t === this.videoTransceiver,
      })),
    };
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    try {
      this.pc.close();
    } catch {
      // already closed
    }
    this.emit('state', 'closed');
  }
}

/** The session id of an SDP's `o=` line (constant for the life of one session, RFC 3264 section 5). */
function sdpSessionId(sdp) {
  const match = /^o=\S+ (\S+) /m.exec(sdp || '');
  return match ? match[1] : null;
}

/** A `track-map`'s tracks as mid → {participant, kind}; entries that are not well-formed are skipped. */
function parseTrackMap(tracks) {
  const map = new Map();
  for (const t of Array.isArray(tracks) ? tracks : []) {
    if (!t || typeof t.mid !== 'string' || typeof t.participant !== 'string') continue;
    map.set(t.mid, { participant: t.participant, kind: t.kind });
  }
  return map;
}

/** One participant as seen through the relay connection: the Peer-shaped face room.js gives a tile. */
export class RelayedPeer extends Emitter {
  /**
   * @param {RelayConnection} connection
   * @param {string} id the participant's id
   * @param {string} name
   */
  constructor(connection, id, name) {
    super();
    this.connection = connection;
    this.id = id;
    this.name = name || 'guest';
    this.relayed = true;
    this.polite = null; // no negotiation of its own
    this.initiator = false;
    this.videoSender = null; // we send once, on the relay connection (connection.videoSender)
    this.closed = false;
    this.remoteStream = new MediaStream();
    this.onConnectionState = () => this.emit('state', this.state);
    connection.on('state', this.onConnectionState);
  }

  get pc() {
    return this.connection.pc;
  }

  get state() {
    return this.closed ? 'closed' : this.connection.state;
  }

  /** The shared connection's counters: every participant of the room shows the same ones. */
  get counters() {
    return { ...this.connection.counters };
  }

  /** Show `tracks` ({audio, video}, either null) as this participant's; emits 'track' for each change. */
  setTracks(tracks) {
    if (this.closed) return;
    for (const kind of ['audio', 'video']) {
      const track = tracks?.[kind] || null;
      const current = this.remoteStream.getTracks().filter((t) => t.kind === kind);
      if (current.length === (track ? 1 : 0) && (!track || current[0] === track)) continue;
      for (const old of current) this.remoteStream.removeTrack(old);
      if (track) this.remoteStream.addTrack(track);
      this.emit('track', { kind, track, stream: this.remoteStream });
    }
  }

  async inboundVideoStats() {
    return this.closed ? null : this.connection.inboundStats(this.id, 'video');
  }

  async inboundAudioStats() {
    return this.closed ? null : this.connection.inboundStats(this.id, 'audio');
  }

  async outboundVideoStats() {
    return this.closed ? null : this.connection.outboundVideoStats();
  }

  /** Sending goes through the relay connection (RelayConnection.replaceVideoTrack). */
  async replaceVideoTrack() {}

  /** Only the relay restarts ICE (it offers); nothing to do here. */
  restartIce() {}

  close() {
    if (this.closed) return;
    this.closed = true;
    this.connection.off('state', this.onConnectionState);
    this.emit('state', 'closed');
  }
}
