// The app's inspection API: `window.vcall`, how the browser tests (tests/app, tests/gateway,
// tests/interop) and the benchmarks (bench/*.py) look into a page through page.evaluate. They rely on
// every name and shape below: rename or reshape nothing without updating them (grep `vcall.` there).
// The pages hand over their state and helpers, so this module imports nothing from them.
//
// Room page (/r/<roomId>), installed by room.js:
//   page                       'room'
//   roomId                     the room id from the URL
//   phase                      starting → naming → media → joining → joined | full | left | ended | error
//   selfId                     our signaling id (null before the first `welcome`)
//   name                       our display name
//   joins                      how many `room-joined` arrived (2 after one rejoin)
//   joinedAt                   performance.now() of the last `room-joined` (call-setup timing), or null
//   errors                     a copy of the errors seen: server `error`s as "code: message", Peer
//                              errors as "peerId: message"
//   peerIds()                  the ids of the members with a tile: in a mesh those we have a Peer
//                              (RTCPeerConnection) for; in a relay room the participants (not the
//                              relay, unless the track map gives it media of its own)
//   peers()                    {id: {name, serial (1, 2, … per Peer this page made: a kept Peer keeps
//                              it; a move to or from a relay makes new ones), awaitingReturn, state
//                              (peer.js's UI state), connectionState, iceConnectionState,
//                              signalingState, polite, initiator, relayed,
//                              media: {audio, video, screen} (as that member last announced),
//                              ...peer.js's counters (offersSent, answersReceived, iceRestarts, …)}}
//                              In a relay room (relayed: true) the states and counters are the one
//                              relay connection's (relay.js), the same for every participant;
//                              polite is null, initiator false.
//   totals()                   {offersSent, offersReceived, answersSent, answersReceived, iceRestarts}
//                              summed over every Peer, plus the relay connection's (counted once)
//   inboundVideo(id)           async: inbound video stats from member `id` {framesDecoded,
//                              framesReceived, frameWidth, frameHeight, bytesReceived,
//                              packetsReceived}; null if none or no such member. In a relay room,
//                              those of the receiver the track map gives to `id` (a reused mid's
//                              counts include its earlier participants')
//   inboundAudio(id)           async: {packetsReceived, bytesReceived, totalSamplesReceived,
//                              audioLevel, playing (the tile's <audio> plays a live track)}; null
//                              likewise
//   outboundVideo(id)          async: {framesEncoded, frameWidth, frameHeight} of what we send to
//                              `id` (in a relay room: to the relay); null likewise
//   mediaDiagnostics(id)       async: where a remote video stops: {polite, counters, transceivers,
//                              videoElement (the tile's <video>), inbound (every inbound-rtp), relay
//                              (relayConnection(), or null)}; null if no such member
//   localMedia()               {audio, video, screen (what we announce), sendingTrack (label of the
//                              video track we send), senders (each Peer's video sender's track label;
//                              in a relay room the one sender on the relay connection)}
//   relay                      the room's relay's id, or null (a mesh)
//   relayConnection()          null without a relay; else {relay, connectionState,
//                              iceConnectionState, signalingState, offersReceived, answersSent,
//                              offersFailed, trackMaps, sessions (RTCPeerConnections made for the
//                              relay: 2 after it started a new session), candidatesSent, candidatesReceived,
//                              candidatesQueued, negotiationNeededIgnored, senders (how many senders
//                              have a track), sending: {audio, video} (track labels or null),
//                              trackMap: {mid: {participant, kind}} (the map of the offer applied
//                              last), transceivers: [{mid, kind, direction, currentDirection,
//                              participant, own}]}
//   connections()              every RTCPeerConnection the page holds open: [{remote (the member's or
//                              the relay's id), relay (boolean), connectionState, signalingState}]
//   dropSignaling()            drops the WebSocket as a network failure would; it reconnects
//   restartIce(id, options)    peer.js's restartIce(options) on that Peer
//   endScreenShareAsBrowser()  ends the screen track as the browser's "Stop sharing" button does;
//                              false when not sharing
//
// Home page (/), installed by home.js:
//   page 'home', selfId, name, users (a copy of the online users), call ({direction, peerId, roomId}
//   while a direct call rings, else null), connected (the WebSocket is open)

/**
 * The room page's `window.vcall`.
 * @param {{roomId: string, state: object, mediaState: () => {audio: boolean, video: boolean, screen: boolean},
 *          currentVideoTrack: () => MediaStreamTrack|null}} room
 */
export function installRoomInspection({ roomId, state, mediaState, currentVideoTrack }) {
  const meshPeers = () => [...state.peers.values()].map(({ peer }) => peer).filter((peer) => !peer.relayed);
  window.vcall = {
    page: 'room',
    roomId,
    get phase() { return state.phase; },
    get selfId() { return state.selfId; },
    get name() { return state.name; },
    get joins() { return state.joins; },
    get joinedAt() { return state.joinedAt; },
    get errors() { return state.errors.slice(); },
    get relay() { return state.relay; },
    peerIds: () => [...state.peers.keys()],
    peers: () => {
      const out = {};
      for (const [id, entry] of state.peers) {
        const { peer } = entry;
        out[id] = {
          name: entry.name,
          serial: entry.serial,
          awaitingReturn: Boolean(entry.returnTimer),
          state: peer.state,
          connectionState: peer.pc.connectionState,
          iceConnectionState: peer.pc.iceConnectionState,
          signalingState: peer.pc.signalingState,
          polite: peer.polite,
          initiator: peer.initiator,
          relayed: Boolean(peer.relayed),
          media: { ...entry.media },
          ...peer.counters,
        };
      }
      return out;
    },
    totals: () => {
      const sum = { offersSent: 0, offersReceived: 0, answersSent: 0, answersReceived: 0, iceRestarts: 0 };
      const counters = meshPeers().map((peer) => peer.counters);
      if (state.relayConnection) counters.push(state.relayConnection.counters);
      for (const c of counters) for (const k of Object.keys(sum)) sum[k] += c[k] || 0;
      return sum;
    },
    inboundVideo: async (id) => state.peers.get(id)?.peer.inboundVideoStats() ?? null,
    inboundAudio: async (id) => {
      const entry = state.peers.get(id);
      if (!entry) return null;
      const stats = await entry.peer.inboundAudioStats();
      if (!stats) return null;
      const audio = entry.tile.querySelector('audio');
      const tracks = audio.srcObject ? audio.srcObject.getAudioTracks() : [];
      return { ...stats, playing: !audio.paused && tracks.some((t) => t.readyState === 'live') };
    },
    outboundVideo: async (id) => state.peers.get(id)?.peer.outboundVideoStats() ?? null,
    // The ICE candidate types ('host', 'srflx', 'prflx', 'relay') of the pair carrying media with `id`.
    selectedCandidates: async (id) => {
      const entry = state.peers.get(id);
      if (!entry) return null;
      const stats = await entry.peer.pc.getStats();
      let pair = null;
      stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
      });
      return pair && { local: stats.get(pair.localCandidateId)?.candidateType, remote: stats.get(pair.remoteCandidateId)?.candidateType };
    },
    mediaDiagnostics: async (id) => {
      const entry = state.peers.get(id);
      if (!entry) return null;
      const describe = (t) => t && { id: t.id, kind: t.kind, readyState: t.readyState, muted: t.muted };
      const video = entry.tile.querySelector('video');
      const inbound = [];
      (await entry.peer.pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp') {
          inbound.push({ kind: s.kind, mid: s.mid, trackIdentifier: s.trackIdentifier, packetsReceived: s.packetsReceived, framesDecoded: s.framesDecoded });
        }
      });
      return {
        polite: entry.peer.polite,
        counters: { ...entry.peer.counters },
        transceivers: entry.peer.pc.getTransceivers().map((t) => ({
          mid: t.mid, direction: t.direction, currentDirection: t.currentDirection, receiverTrack: describe(t.receiver.track),
        })),
        videoElement: {
          readyState: video.readyState, paused: video.paused, networkState: video.networkState,
          videoWidth: video.videoWidth, videoHeight: video.videoHeight,
          tracks: video.srcObject ? video.srcObject.getTracks().map(describe) : null,
        },
        inbound,
        relay: state.relayConnection?.describe() ?? null,
      };
    },
    localMedia: () => {
      const { audio, video, screen } = mediaState();
      return {
        audio,
        video,
        screen,
        sendingTrack: currentVideoTrack()?.label ?? null,
        senders: state.relayConnection
          ? [state.relayConnection.videoSender?.track?.label ?? null]
          : meshPeers().map((peer) => peer.videoSender?.track?.label ?? null),
      };
    },
    relayConnection: () => state.relayConnection?.describe() ?? null,
    connections: () => {
      const out = meshPeers().map((peer) => ({ remote: peer.id, relay: false, pc: peer.pc }));
      if (state.relayConnection) out.push({ remote: state.relayConnection.relayId, relay: true, pc: state.relayConnection.pc });
      return out
        .filter(({ pc }) => pc.connectionState !== 'closed')
        .map(({ remote, relay, pc }) => ({ remote, relay, connectionState: pc.connectionState, signalingState: pc.signalingState }));
    },
    dropSignaling: () => state.signaling?.simulateDrop(),
    restartIce: (id, options) => state.peers.get(id)?.peer.restartIce(options),
    endScreenShareAsBrowser: () => {
      const track = state.screen;
      if (!track) return false;
      track.stop(); // stop() alone fires no event; the browser's button fires `ended`
      track.dispatchEvent(new Event('ended'));
      return true;
    },
  };
}

/**
 * The home page's `window.vcall`.
 * @param {{state: object}} home
 */
export function installHomeInspection({ state }) {
  window.vcall = {
    page: 'home',
    get selfId() { return state.selfId; },
    get name() { return state.name; },
    get users() { return state.users.map((u) => ({ ...u })); },
    get call() { return state.call ? { direction: state.call.direction, peerId: state.call.peerId, roomId: state.call.roomId } : null; },
    get connected() { return state.signaling ? state.signaling.isOpen : false; },
  };
}
