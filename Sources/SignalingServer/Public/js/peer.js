// One RTCPeerConnection per remote participant, negotiated by the perfect-negotiation pattern
// (https://developer.mozilla.org/en-US/docs/Web/API/WebRTC_API/Perfect_negotiation).
//
// Roles:
//  - polite / impolite: the side whose id sorts HIGHER (plain string comparison) is polite. On an
//    offer collision the polite side rolls its own offer back and answers; the impolite side
//    ignores the incoming offer and waits for the answer to its own.
//  - who offers first: the NEWCOMER (initiator). It creates a Peer for every member listed in
//    `room-joined` and its `negotiationneeded` sends the first offer. Existing members create their
//    Peer on `user-joined` and add their tracks too (addTrack, so the remote offer's m-lines reuse
//    those transceivers and the answer is sendrecv), but hold back their own offers until the first
//    remote offer has been answered; if none comes within FIRST_OFFER_TIMEOUT_MS they offer
//    themselves. After the first exchange either side may offer at any time (ICE restarts, …) and
//    perfect negotiation resolves collisions. When a relay leaves a room (room.js falls back to a
//    mesh) the member whose id sorts lower is the initiator and the other waits only
//    RELAY_FALLBACK_OFFER_TIMEOUT_MS (docs/protocol.md, "Relay rooms").
//  - ICE candidates that arrive before a remote description are queued and added once it is set.
//  - on connectionState `failed` the peer calls restartIce(), which triggers a new offer with
//    fresh ICE credentials. Both sides usually see the failure at once, so the POLITE side waits
//    POLITE_RESTART_DELAY_MS for the impolite side's restart offer (answering it restarts ICE on both
//    sides) and offers itself only if none came. This avoids the collision: its rollback of our own
//    offer sometimes (4 in 10 collisions in Chromium 156) leaves the video receiver decoding frames
//    that never reach the page, which nothing short of a new connection repairs.

const FIRST_OFFER_TIMEOUT_MS = 5000;
export const RELAY_FALLBACK_OFFER_TIMEOUT_MS = 3000;
const POLITE_RESTART_DELAY_MS = 1500;

/** The ICE username fragment of a session description (the first one: the call is bundled). */
function iceUfrag(sdp) {
  const match = /^a=ice-ufrag:(\S+)/m.exec(sdp || '');
  return match ? match[1] : null;
}

/**
 * A local candidate as `ice-candidate` carries it (RTCIceCandidateInit); null for end of candidates.
 * @param {RTCIceCandidate|null} candidate
 */
export function candidateInit(candidate) {
  if (!candidate) return null;
  const init = { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex };
  // The ICE generation it belongs to, so a late candidate from before an ICE restart is not misapplied.
  if (candidate.usernameFragment) init.usernameFragment = candidate.usernameFragment;
  return init;
}

/**
 * The figures the app reports of an inbound-rtp stats entry (what inspect.js's inboundVideo and
 * inboundAudio return), for a mesh Peer and the relay connection alike.
 * @param {RTCInboundRtpStreamStats} s
 */
export function inboundSummary(s) {
  if (s.kind === 'video') {
    return {
      framesDecoded: s.framesDecoded || 0,
      framesReceived: s.framesReceived || 0,
      frameWidth: s.frameWidth || 0,
      frameHeight: s.frameHeight || 0,
      bytesReceived: s.bytesReceived || 0,
      packetsReceived: s.packetsReceived || 0,
    };
  }
  return {
    packetsReceived: s.packetsReceived || 0,
    bytesReceived: s.bytesReceived || 0,
    totalSamplesReceived: s.totalSamplesReceived || 0,
    audioLevel: s.audioLevel || 0,
  };
}

export class Peer {
  /**
   * @param {object} o
   * @param {string} o.id remote participant id
   * @param {string} o.name remote participant name
   * @param {string} o.selfId our own id
   * @param {RTCIceServer[]} o.iceServers
   * @param {boolean} o.initiator true when we are the newcomer and must send the first offer
   * @param {number} [o.firstOfferTimeoutMs] how long a non-initiator waits for the first offer
   * @param {(msg: object) => boolean} o.send sends one signaling message
   * @param {MediaStream} o.stream local stream (for addTrack's stream association)
   * @param {{audio: MediaStreamTrack|null, video: MediaStreamTrack|null}} o.tracks current local tracks
   */
  constructor(o) {
    this.id = o.id;
    this.name = o.name || 'guest';
    this.selfId = o.selfId;
    this.polite = String(o.selfId) > String(o.id);
    this.initiator = o.initiator;
    this.sendSignal = o.send;
    this.listeners = new Map();
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.isSettingRemoteAnswerPending = false;
    this.negotiatedOnce = false;
    this.pendingCandidates = [];
    this.politeRestartTimer = null;
    this.closed = false;
    this.work = Promise.resolve();
    this.remoteStream = new MediaStream();
    this.counters = {
      offersSent: 0, offersReceived: 0, answersSent: 0, answersReceived: 0,
      candidatesSent: 0, candidatesReceived: 0, candidatesQueued: 0,
      offersIgnored: 0, rollbacks: 0, iceRestarts: 0,
    };

    const pc = new RTCPeerConnection({ iceServers: o.iceServers || [] });
    this.pc = pc;

    this.audioSender = null;
    this.videoSender = null;
    if (o.tracks.audio) this.audioSender = pc.addTrack(o.tracks.audio, o.stream);
    if (o.tracks.video) this.videoSender = pc.addTrack(o.tracks.video, o.stream);
    if (this.initiator) {
      // Without a local track of a kind, still ask to receive it.
      if (!this.audioSender) pc.addTransceiver('audio', { direction: 'recvonly' });
      if (!this.videoSender) pc.addTransceiver('video', { direction: 'recvonly' });
    }

    pc.onnegotiationneeded = () => {
      if (!this.initiator && !this.negotiatedOnce) return; // wait for the newcomer's offer
      this.makeOffer();
    };
    pc.onicecandidate = ({ candidate }) => {
      this.counters.candidatesSent += 1;
      this.send({ type: 'ice-candidate', candidate: candidateInit(candidate) });
    };
    pc.ontrack = ({ track }) => {
      for (const old of this.remoteStream.getTracks()) {
        if (old.kind === track.kind && old !== track) this.remoteStream.removeTrack(old);
      }
      if (!this.remoteStream.getTracks().includes(track)) this.remoteStream.addTrack(track);
      this.emit('track', { track, stream: this.remoteStream });
    };
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState;
      if (state === 'failed') this.restartIce();
      this.emit('state', this.state);
    };
    pc.oniceconnectionstatechange = () => this.emit('state', this.state);

    if (!this.initiator) {
      this.firstOfferTimer = setTimeout(() => {
        if (this.closed || this.negotiatedOnce) return;
        console.warn(`vcall: no offer from ${this.id} yet; offering ourselves`);
        this.negotiatedOnce = true;
        this.makeOffer();
      }, o.firstOfferTimeoutMs ?? FIRST_OFFER_TIMEOUT_MS);
    }
  }

  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(fn);
  }

  emit(event, value) {
    for (const fn of this.listeners.get(event) || []) fn(value);
  }

  send(msg) {
    if (this.closed) return;
    this.sendSignal({ ...msg, to: this.id });
  }

  /** A UI-level state: connecting, connected, reconnecting, failed or closed. */
  get state() {
    if (this.closed) return 'closed';
    switch (this.pc.connectionState) {
      case 'connected': return 'connected';
      case 'disconnected': return 'reconnecting';
      case 'failed': return 'failed';
      case 'closed': return 'closed';
      default: return this.counters.iceRestarts > 0 ? 'reconnecting' : 'connecting';
    }
  }

  async makeOffer() {
    if (this.closed) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      const desc = this.pc.localDescription;
      if (desc && desc.type === 'offer') {
        this.counters.offersSent += 1;
        this.send({ type: 'offer', offer: { type: desc.type, sdp: desc.sdp } });
      }
    } catch (err) {
      console.error(`vcall: creating an offer for ${this.id} failed`, err);
      this.emit('error', err);
    } finally {
      this.makingOffer = false;
    }
  }

  /**
   * Restart ICE: at once on the impolite side; on the polite side after POLITE_RESTART_DELAY_MS unless
   * the other side's restart offer arrives first (see the roles above). `immediately` skips the wait.
   */
  restartIce({ immediately = false } = {}) {
    if (this.closed) return;
    this.counters.iceRestarts += 1;
    if (this.polite && !immediately) {
      if (!this.politeRestartTimer) {
        this.politeRestartTimer = setTimeout(() => {
          this.politeRestartTimer = null;
          this.restartIceNow();
        }, POLITE_RESTART_DELAY_MS);
      }
      return;
    }
    this.restartIceNow();
  }

  restartIceNow() {
    if (this.closed) return;
    clearTimeout(this.politeRestartTimer);
    this.politeRestartTimer = null;
    // restartIce() marks negotiation needed; the next offer carries new ICE credentials.
    this.negotiatedOnce = true;
    this.pc.restartIce();
  }

  /** Handle a relayed `offer`, `answer` or `ice-candidate` message, in arrival order. */
  handleSignal(msg) {
    this.work = this.work.then(() => this.process(msg)).catch((err) => {
      console.error(`vcall: handling ${msg.type} from ${this.id} failed`, err);
      this.emit('error', err);
    });
    return this.work;
  }

  async process(msg) {
    if (this.closed) return;
    if (msg.type === 'offer' || msg.type === 'answer') {
      const description = msg.type === 'offer' ? msg.offer : msg.answer;
      if (!description || typeof description.sdp !== 'string') return;
      await this.acceptDescription({ type: description.type || msg.type, sdp: description.sdp });
    } else if (msg.type === 'ice-candidate') {
      this.counters.candidatesReceived += 1;
      await this.acceptCandidate(msg.candidate);
    }
  }

  async acceptDescription(description) {
    const pc = this.pc;
    if (description.type === 'offer') this.counters.offersReceived += 1;
    else this.counters.answersReceived += 1;

    const readyForOffer = !this.makingOffer && (pc.signalingState === 'stable' || this.isSettingRemoteAnswerPending);
    const offerCollision = description.type === 'offer' && !readyForOffer;
    this.ignoreOffer = !this.polite && offerCollision;
    if (this.ignoreOffer) {
      this.counters.offersIgnored += 1;
      return;
    }
    if (description.type === 'answer' && pc.signalingState !== 'have-local-offer') {
      console.warn(`vcall: ignoring an answer from ${this.id} in state ${pc.signalingState}`);
      return;
    }
    if (offerCollision) this.counters.rollbacks += 1; // setRemoteDescription rolls back implicitly
    if (description.type === 'offer' && this.politeRestartTimer && iceUfrag(description.sdp) !== iceUfrag(pc.remoteDescription?.sdp)) {
      // The other side restarted ICE; our answer brings fresh credentials too, so ours is not needed.
      clearTimeout(this.politeRestartTimer);
      this.politeRestartTimer = null;
    }
    this.isSettingRemoteAnswerPending = description.type === 'answer';
    try {
      await pc.setRemoteDescription(description);
    } finally {
      this.isSettingRemoteAnswerPending = false;
    }
    await this.flushCandidates();
    if (description.type === 'offer') {
      await pc.setLocalDescription();
      const answer = pc.localDescription;
      this.counters.answersSent += 1;
      this.send({ type: 'answer', answer: { type: answer.type, sdp: answer.sdp } });
    }
    if (!this.negotiatedOnce) {
      this.negotiatedOnce = true;
      clearTimeout(this.firstOfferTimer);
    }
  }

  async acceptCandidate(candidate) {
    if (!this.pc.remoteDescription) {
      this.counters.candidatesQueued += 1;
      this.pendingCandidates.push(candidate);
      return;
    }
    await this.addCandidate(candidate);
  }

  async flushCandidates() {
    const queued = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const c of queued) await this.addCandidate(c);
  }

  async addCandidate(candidate) {
    try {
      // null means "end of candidates".
      await this.pc.addIceCandidate(candidate ?? undefined);
    } catch (err) {
      if (!this.ignoreOffer) console.warn(`vcall: bad ICE candidate from ${this.id}`, err);
    }
  }

  /** Swap the outgoing video track without renegotiation. */
  async replaceVideoTrack(track) {
    if (this.videoSender) await this.videoSender.replaceTrack(track);
  }

  async inboundVideoStats() {
    const stats = await this.pc.getStats();
    let result = null;
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        result = inboundSummary(s);
      }
    });
    return result;
  }

  async inboundAudioStats() {
    const stats = await this.pc.getStats();
    let result = null;
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        result = inboundSummary(s);
      }
    });
    return result;
  }

  async outboundVideoStats() {
    const stats = await this.pc.getStats();
    let result = null;
    stats.forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        result = { framesEncoded: s.framesEncoded || 0, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0 };
      }
    });
    return result;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.firstOfferTimer);
    clearTimeout(this.politeRestartTimer);
    try {
      this.pc.close();
    } catch {
      // already closed
    }
    this.emit('state', 'closed');
  }
}
