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
//   peerIds()                  the ids of the members we have a Peer (RTCPeerConnection) for
//   peers()                    {id: {name, serial (1, 2, … per Peer this page made: a kept Peer keeps
//                              it), awaitingReturn, state (peer.js's UI state), connectionState,
//                              iceConnectionState, signalingState, polite, initiator,
//                              media: {audio, video, screen} (as that member last announced),
//                              ...peer.js's counters (offersSent, answersReceived, iceRestarts, …)}}
//   totals()                   {offersSent, offersReceived, answersSent, answersReceived, iceRestarts}
//                              summed over every Peer
//   inboundVideo(id)           async: peer.js's inbound video stats {framesDecoded, frameWidth,
//                              frameHeight, bytesReceived, packetsReceived}; null if none or no such Peer
//   outboundVideo(id)          async: {framesEncoded, frameWidth, frameHeight}; null likewise
//   mediaDiagnostics(id)       async: where a remote video stops: {polite, counters, transceivers,
//                              videoElement (the tile's <video>), inbound (every inbound-rtp)}; null
//                              if no such Peer
//   localMedia()               {audio, video, screen (what we announce), sendingTrack (label of the
//                              video track we send), senders (each Peer's video sender's track label)}
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
  window.vcall = {
    page: 'room',
    roomId,
    get phase() { return state.phase; },
    get selfId() { return state.selfId; },
    get name() { return state.name; },
    get joins() { return state.joins; },
    get joinedAt() { return state.joinedAt; },
    get errors() { return state.errors.slice(); },
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
          media: { ...entry.media },
          ...peer.counters,
        };
      }
      return out;
    },
    totals: () => {
      const sum = { offersSent: 0, offersReceived: 0, answersSent: 0, answersReceived: 0, iceRestarts: 0 };
      for (const { peer } of state.peers.values()) for (const k of Object.keys(sum)) sum[k] += peer.counters[k];
      return sum;
    },
    inboundVideo: async (id) => state.peers.get(id)?.peer.inboundVideoStats() ?? null,
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
      };
    },
    localMedia: () => {
      const { audio, video, screen } = mediaState();
      return {
        audio,
        video,
        screen,
        sendingTrack: currentVideoTrack()?.label ?? null,
        senders: [...state.peers.values()].map(({ peer }) => peer.videoSender?.track?.label ?? null),
      };
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
