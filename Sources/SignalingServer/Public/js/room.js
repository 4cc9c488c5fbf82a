// The room page, /r/<roomId>: local preview, one tile and one RTCPeerConnection (Peer) per remote
// participant (a full mesh), mic/camera toggles, screen sharing by replaceTrack, hang up.
//
// Query parameters: ?name=<display name> (skips the name prompt), ?capacity=<n> (the room's size
// when this join creates it; direct calls use 2), ?call=1 (a direct 1-on-1 call: the call ends
// when the other person hangs up).
//
// Life cycle: name → camera/microphone → WebSocket → `welcome` → `join-room` → `room-joined`.
// When the WebSocket drops, Signaling reconnects with backoff and resumes its id (`?resume=`); the page
// joins again. Media flows peer to peer, so every RTCPeerConnection that is still alive is KEPT: a
// member listed in `room-joined` or announced by `user-joined` for whom we already have a live Peer is
// not renegotiated. Within the server's grace the others never notice; after a server restart (rooms
// empty) they see us "join" and keep their Peer too. A Peer whose member is not listed when we rejoin
// waits up to RETURN_TIMEOUT_MS for it to come back (user-joined) and is removed if it does not, or if
// its connection fails. If the server hands us a NEW id (the token was refused), every Peer is rebuilt.
// Who offers first is decided in peer.js (the newcomer).
//
// Relay rooms (docs/protocol.md, "Relay rooms"): when `room-joined` or `relay-changed` names a relay,
// the page closes its Peers and keeps one RelayConnection (relay.js), which answers the relay's
// offers; each tile is then fed by a RelayedPeer, the participant's view of that connection, in place
// of a Peer. Tiles, names and media-state still come from the membership messages; the relay gets a
// tile only when the track map gives media to its id. When the relay leaves (`relay-changed` null,
// or a rejoin that lists none), every tile gets a Peer again: the lower id offers at once, the other
// after RELAY_FALLBACK_OFFER_TIMEOUT_MS.
// Tests and benchmarks look in through `window.vcall`, installed by inspect.js.

import { Signaling } from './signaling.js';
import { Peer, RELAY_FALLBACK_OFFER_TIMEOUT_MS } from './peer.js';
import { RelayConnection, RelayedPeer } from './relay.js';
import { ROOM_ID_PATTERN, cleanName, currentUser, el, notify, saveName, savedName } from './common.js';
import { installRoomInspection } from './inspect.js';
import { installRoomRecording } from './room-recording.js';

const $ = (id) => document.getElementById(id);

const params = new URLSearchParams(location.search);
const roomId = decodeURIComponent(location.pathname.replace(/^\/r\//, '').replace(/\/$/, ''));
const capacityParam = Number.parseInt(params.get('capacity') || '', 10);
const capacity = Number.isInteger(capacityParam) && capacityParam >= 1 && capacityParam <= 64 ? capacityParam : null;
const isDirectCall = params.get('call') === '1';

// How long a Peer kept across a reconnect waits for its member to show up in the room again.
const RETURN_TIMEOUT_MS = 30000;
let peerSerial = 0; // every Peer (RTCPeerConnection) this page made, numbered: tests check none is new

const state = {
  phase: 'starting', // starting → naming → media → joining → joined | full | left | ended | error
  name: '',
  selfId: null,
  iceServers: [],
  signaling: null,
  peers: new Map(), // id → {peer (a Peer, or a RelayedPeer in a relay room), name, tile, media}
  members: new Map(), // id → name: the other members of the room, the relay included
  relay: null, // the room's relay's id, or null (a mesh)
  relayConnection: null, // our one RelayConnection while the room has a relay
  stream: new MediaStream(), // what we send: mic + camera (or a placeholder)
  mic: null,
  camera: null,
  placeholder: null, // a black canvas track when there is no camera
  screen: null,
  micOn: false,
  cameraOn: false,
  joins: 0,
  joinedAt: null,
  capacity: null, // the room's capacity, from room-joined
  authProblem: null, // the message of an `unauthorized` error not yet explained to the user
  errors: [],
};

// The test/inspection hooks (`window.vcall`); tests and benchmarks read them, see inspect.js.
installRoomInspection({ roomId, state, mediaState, currentVideoTrack });

// The record button, the "Recording" badge and the room's recordings panel.
const recording = installRoomRecording({ roomId, send: (msg) => state.signaling && state.signaling.send(msg) });

// ---- messages to the user ----------------------------------------------------------------------

function showMessage(title, text, actions) {
  $('message-title').textContent = title;
  $('message-text').textContent = text;
  const box = $('message-actions');
  box.replaceChildren();
  for (const action of actions) {
    if (action.href) box.append(el('a', { className: `button ${action.kind || ''}`, href: action.href }, action.label));
    else box.append(el('button', { type: 'button', className: action.kind || '', onclick: action.onclick }, action.label));
  }
  $('message').hidden = false;
  $('message').dataset.kind = title;
}

function hideMessage() {
  $('message').hidden = true;
}

function setBanner(text, kind = 'warn') {
  const banner = $('banner');
  banner.hidden = !text;
  banner.textContent = text || '';
  banner.className = `banner ${kind}`;
}

function setServerStatus(text, kind) {
  const pill = $('server-status');
  pill.textContent = text;
  pill.className = `pill ${kind || ''}`;
}

const HOME = { label: 'Go to the home page', href: '/' };
const RELOAD = { label: 'Try again', kind: 'primary', onclick: () => location.reload() };

// ---- local media -------------------------------------------------------------------------------

function blackVideoTrack() {
  const canvas = Object.assign(document.createElement('canvas'), { width: 640, height: 360 });
  const ctx = canvas.getContext('2d');
  const paint = () => {
    ctx.fillStyle = '#111';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  paint();
  const track = canvas.captureStream(5).getVideoTracks()[0];
  const timer = setInterval(paint, 500);
  track.addEventListener('ended', () => clearInterval(timer));
  return track;
}

function describeMediaError(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera and microphone are blocked for this site. Allow them in the browser (the icon in the address bar) and reload; until then others cannot see or hear you.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera or microphone was found. Plug one in and reload; you can still see and hear the others.';
    case 'NotReadableError':
      return 'The camera or microphone is in use by another program. Close it and reload.';
    default:
      return `The camera and microphone could not be started (${err && err.message ? err.message : err}). Reload to try again.`;
  }
}

async function startMedia() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    notify('This page needs a secure connection (https or localhost) to use the camera and microphone. You can still see and hear the others.', 'error', 0);
  } else {
    setBanner('Waiting for the camera and microphone… allow them if the browser asks.', 'info');
    const video = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24 } };
    const attempts = [{ audio: true, video }, { audio: false, video }, { audio: true, video: false }];
    let lastError = null;
    for (const constraints of attempts) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia(constraints);
        state.mic = stream.getAudioTracks()[0] || null;
        state.camera = stream.getVideoTracks()[0] || null;
        break;
      } catch (err) {
        lastError = err;
        if (err && (err.name === 'NotAllowedError' || err.name === 'SecurityError')) break;
      }
    }
    setBanner('');
    if (!state.mic && !state.camera) notify(describeMediaError(lastError), 'error', 0);
    else if (!state.camera) notify('No camera: the others see a blank tile. Plug a camera in and reload to be seen.', 'info');
    else if (!state.mic) notify('No microphone: the others cannot hear you. Plug one in and reload to be heard.', 'info');
  }
  if (!state.camera) state.placeholder = blackVideoTrack();
  state.micOn = Boolean(state.mic);
  state.cameraOn = Boolean(state.camera);
  if (state.mic) state.stream.addTrack(state.mic);
  state.stream.addTrack(state.camera || state.placeholder);
  for (const track of [state.mic, state.camera]) {
    track?.addEventListener('ended', () => notify(`Your ${track.kind === 'audio' ? 'microphone' : 'camera'} stopped (unplugged?). Reload to start it again.`, 'error', 0));
  }
  $('toggle-mic').disabled = !state.mic;
  $('toggle-camera').disabled = !state.camera;
  $('toggle-screen').disabled = !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
  showLocalPreview();
  renderControls();
}

function currentVideoTrack() {
  return state.screen || state.camera || state.placeholder;
}

function showLocalPreview() {
  const video = $('local-video');
  const track = currentVideoTrack();
  video.srcObject = track ? new MediaStream([track]) : null;
  const tile = $('local-tile');
  tile.classList.toggle('mirrored', !state.screen && Boolean(state.camera));
  const media = mediaState();
  tile.dataset.audio = String(media.audio);
  tile.dataset.video = String(media.video);
  tile.dataset.screen = String(media.screen);
  video.play().catch(() => {});
}

function mediaState() {
  return { audio: Boolean(state.mic && state.micOn), video: Boolean(state.camera && state.cameraOn), screen: Boolean(state.screen) };
}

function sendMediaState() {
  if (state.phase !== 'joined') return;
  state.signaling.send({ type: 'media-state', ...mediaState() });
}

function renderControls() {
  const media = mediaState();
  const set = (id, on, label) => {
    const button = $(id);
    button.setAttribute('aria-pressed', String(on));
    button.classList.toggle('off', !on);
    button.querySelector('.control-label').textContent = label;
  };
  set('toggle-mic', media.audio, media.audio ? 'Mic on' : 'Mic off');
  set('toggle-camera', media.video, media.video ? 'Camera on' : 'Camera off');
  set('toggle-screen', media.screen, media.screen ? 'Stop sharing' : 'Share screen');
  $('toggle-screen').classList.toggle('off', false);
  $('toggle-screen').classList.toggle('active', media.screen);
}

$('toggle-mic').addEventListener('click', () => {
  if (!state.mic) return;
  state.micOn = !state.micOn;
  state.mic.enabled = state.micOn;
  renderControls();
  showLocalPreview();
  sendMediaState();
});

$('toggle-camera').addEventListener('click', () => {
  if (!state.camera) return;
  state.cameraOn = !state.cameraOn;
  state.camera.enabled = state.cameraOn;
  renderControls();
  showLocalPreview();
  sendMediaState();
});

$('toggle-screen').addEventListener('click', () => {
  if (state.screen) stopScreenShare();
  else startScreenShare();
});

async function startScreenShare() {
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
  } catch (err) {
    if (err && err.name === 'NotAllowedError') notify('Screen sharing was cancelled or is blocked by the browser.', 'info');
    else notify(`Screen sharing could not start (${err && err.message ? err.message : err}).`, 'error');
    return;
  }
  const track = stream.getVideoTracks()[0];
  if (!track) return;
  if ('contentHint' in track) track.contentHint = 'detail';
  // The browser's own "Stop sharing" button ends the track: restore the camera then too.
  track.addEventListener('ended', () => {
    if (state.screen === track) stopScreenShare();
  });
  state.screen = track;
  await swapOutgoingVideo(track);
  showLocalPreview();
  renderControls();
  sendMediaState();
}

async function stopScreenShare() {
  const track = state.screen;
  if (!track) return;
  state.screen = null;
  await swapOutgoingVideo(currentVideoTrack());
  track.stop();
  showLocalPreview();
  renderControls();
  sendMediaState();
}

/** Send `track` to every peer (or the relay) in place of the current video: replaceTrack, no renegotiation. */
async function swapOutgoingVideo(track) {
  const swaps = [...state.peers.values()].map(({ peer }) => peer.replaceVideoTrack(track).catch((err) => {
    console.error('vcall: replaceTrack failed', err);
    notify(`Could not switch the video sent to ${peer.name}. Stop and start sharing again.`, 'error');
  }));
  if (state.relayConnection) {
    swaps.push(state.relayConnection.replaceVideoTrack(track).catch((err) => {
      console.error('vcall: replaceTrack failed', err);
      notify('Could not switch the video you send. Stop and start sharing again.', 'error');
    }));
  }
  await Promise.all(swaps);
}

// ---- remote participants -----------------------------------------------------------------------

const STATE_LABELS = {
  connecting: 'connecting…',
  connected: 'connected',
  reconnecting: 'reconnecting…',
  failed: 'connection failed, retrying…',
  closed: 'left',
};

function makeTile(id, name) {
  const video = el('video', { autoplay: true, playsInline: true, muted: true });
  video.muted = true; // sound plays through the <audio> element, so the video may always autoplay
  const audio = el('audio', { autoplay: true });
  const tile = el('figure', { className: 'tile remote', dataset: { peerId: id, peerName: name, state: 'connecting', audio: 'true', video: 'true', screen: 'false' } },
    video,
    audio,
    el('div', { className: 'tile-placeholder', 'aria-hidden': 'true' }, el('span', { className: 'avatar big' }, (name || '?').slice(0, 1).toUpperCase())),
    el('figcaption', { className: 'tile-bar' },
      el('span', { className: 'tile-name' }, name),
      el('span', { className: 'tile-state' }, STATE_LABELS.connecting),
      el('span', { className: 'tile-flags' },
        el('span', { className: 'flag flag-mic', title: `${name}'s microphone is off` }, 'mic off'),
        el('span', { className: 'flag flag-cam', title: `${name}'s camera is off` }, 'camera off'),
        el('span', { className: 'flag flag-screen', title: `${name} is sharing their screen` }, 'sharing'))));
  $('stage').append(tile);
  updateStageLayout();
  return tile;
}

function updateStageLayout() {
  const count = state.peers.size + 1;
  $('stage').dataset.count = String(count);
  if (state.phase === 'joined') {
    const here = state.capacity ? `${count} of ${state.capacity} here` : `${count} here`;
    setServerStatus(state.relay ? `${here} · via relay` : here, 'ok');
  }
}

function setTileState(entry, uiState) {
  entry.tile.dataset.state = uiState;
  entry.tile.querySelector('.tile-state').textContent = STATE_LABELS[uiState] || uiState;
}

/** A tile for member `id`, fed by a Peer of its own, or in a relay room by the relay connection. */
function createPeer(id, name, initiator, options) {
  removePeer(id);
  const entry = { peer: null, name, serial: 0, tile: makeTile(id, name), media: { audio: true, video: true, screen: false }, returnTimer: null };
  state.peers.set(id, entry);
  updateStageLayout();
  const peer = state.relayConnection ? new RelayedPeer(state.relayConnection, id, name) : meshPeer(id, name, initiator, options);
  attachPeer(id, entry, peer);
  return entry;
}

/** A Peer (our own RTCPeerConnection) to member `id`. */
function meshPeer(id, name, initiator, { firstOfferTimeoutMs } = {}) {
  return new Peer({
    id,
    name,
    selfId: state.selfId,
    iceServers: state.iceServers,
    initiator,
    firstOfferTimeoutMs,
    send: (msg) => state.signaling.send(msg),
    stream: state.stream,
    tracks: { audio: state.mic, video: currentVideoTrack() },
  });
}

/** Feed `entry`'s tile from `peer` (a Peer or a RelayedPeer), closing the one it had (a move to or from a relay). */
function attachPeer(id, entry, peer) {
  const previous = entry.peer;
  entry.peer = peer;
  peerSerial += 1;
  entry.serial = peerSerial;
  if (previous) {
    previous.close();
    // Its tracks end with it; the new connection's arrive as 'track' events.
    for (const media of entry.tile.querySelectorAll('video, audio')) media.srcObject = null;
  }
  peer.on('track', ({ track, kind = track.kind, stream }) => {
    if (entry.peer !== peer) return;
    if (kind === 'video') {
      const video = entry.tile.querySelector('video');
      const tracks = stream.getVideoTracks();
      video.srcObject = tracks.length ? new MediaStream(tracks) : null;
      if (tracks.length) video.play().catch(() => {});
    } else {
      const audio = entry.tile.querySelector('audio');
      const tracks = stream.getAudioTracks();
      audio.srcObject = tracks.length ? new MediaStream(tracks) : null;
      if (tracks.length) audio.play().catch(() => askForSound());
    }
  });
  peer.on('state', (uiState) => {
    if (state.peers.get(id) !== entry || entry.peer !== peer) return;
    setTileState(entry, uiState);
    // A member we were waiting for after a reconnect whose connection died is gone for good.
    if (entry.returnTimer && (uiState === 'failed' || uiState === 'closed')) removePeer(id);
  });
  peer.on('error', (err) => {
    state.errors.push(`${id}: ${err && err.message ? err.message : err}`);
  });
  setTileState(entry, peer.state);
  // A participant the relay already forwards (a move to the relay, a member announced late).
  if (peer.relayed) peer.setTracks(state.relayConnection.media.get(id));
}

function removePeer(id) {
  const entry = state.peers.get(id);
  if (!entry) return null;
  clearTimeout(entry.returnTimer);
  state.peers.delete(id);
  entry.peer.close();
  entry.tile.remove();
  updateStageLayout();
  return entry;
}

function removeAllPeers() {
  for (const id of [...state.peers.keys()]) removePeer(id);
}

// ---- relay rooms -------------------------------------------------------------------------------

/** The room has the relay `relayId`: one connection, to it, feeds every tile; we only answer its offers. */
function useRelay(relayId) {
  const previous = state.relayConnection;
  if (previous && state.relay === relayId && !previous.closed && previous.pc.connectionState !== 'closed') return;
  const previousRelayId = state.relay;
  state.relay = relayId;
  const connection = new RelayConnection({
    relayId,
    selfId: state.selfId,
    iceServers: state.iceServers,
    send: (msg) => state.signaling.send(msg),
    localTracks: () => ({ audio: state.mic, video: currentVideoTrack() }),
  });
  state.relayConnection = connection;
  connection.on('media', (media) => {
    if (state.relayConnection === connection) showRelayedMedia(media);
  });
  connection.on('error', (err) => state.errors.push(`${relayId}: ${err && err.message ? err.message : err}`));
  // user-joined came before relay-changed told us what this member is: it gets no tile of its own.
  removePeer(relayId);
  if (previousRelayId !== relayId) removePeer(previousRelayId); // the tile of a former relay's own media
  for (const [id, entry] of state.peers) attachPeer(id, entry, new RelayedPeer(connection, id, entry.name));
  previous?.close(); // after its RelayedPeers let go of it, so no tile shows it closing
  updateStageLayout();
}

/** The relay is gone: connect to every other member as in a mesh (the lower id offers, the other waits). */
function useMesh() {
  if (!state.relay && !state.relayConnection) return;
  const relayId = state.relay;
  const previous = state.relayConnection;
  state.relayConnection = null;
  state.relay = null;
  removePeer(relayId);
  for (const [id, entry] of state.peers) {
    const initiator = String(state.selfId) < String(id);
    attachPeer(id, entry, meshPeer(id, entry.name, initiator, { firstOfferTimeoutMs: RELAY_FALLBACK_OFFER_TIMEOUT_MS }));
  }
  previous?.close(); // after its RelayedPeers let go of it, so no tile shows it closing
  updateStageLayout();
}

function closeRelayConnection() {
  state.relayConnection?.close();
  state.relayConnection = null;
}

/** After each offer from the relay: every tile shows the tracks the track map now gives its member. */
function showRelayedMedia(media) {
  const relayId = state.relay;
  // The relay's own media (say, a recording's playback) gets a tile while the map gives it any.
  if (media.has(relayId) && !state.peers.has(relayId)) createPeer(relayId, state.members.get(relayId) || 'relay', false);
  for (const [id, entry] of [...state.peers]) {
    if (!entry.peer.relayed) continue;
    if (id === relayId && !media.has(id)) removePeer(id);
    else entry.peer.setTracks(media.get(id));
  }
}

/** Whether a Peer's RTCPeerConnection can still carry media (it is not closed or failed). */
function isAlive(entry) {
  const pcState = entry.peer.pc.connectionState;
  return !entry.peer.closed && pcState !== 'closed' && pcState !== 'failed';
}

/**
 * The room lists `id` again (room-joined after a reconnect, or user-joined after a server restart):
 * keep its Peer if the connection is alive, so media keeps flowing with no renegotiation. Returns false
 * when there is nothing to keep (a dead Peer is removed): the caller makes a new one.
 */
function keepPeer(id, name) {
  const entry = state.peers.get(id);
  if (!entry) return false;
  if (!isAlive(entry)) {
    removePeer(id);
    return false;
  }
  clearTimeout(entry.returnTimer);
  entry.returnTimer = null;
  if (name && name !== entry.name) {
    entry.name = name;
    entry.peer.name = name;
    entry.tile.dataset.peerName = name;
    entry.tile.querySelector('.tile-name').textContent = name;
  }
  setTileState(entry, entry.peer.state);
  return true;
}

/** A member we have a Peer for was not listed when we rejoined: wait a while for it to come back. */
function awaitReturn(id, entry) {
  if (entry.returnTimer) return;
  if (!isAlive(entry)) {
    removePeer(id);
    return;
  }
  entry.returnTimer = setTimeout(() => {
    if (state.peers.get(id) !== entry) return;
    removePeer(id);
    if (state.phase === 'joined') notify(`${entry.name} left.`, 'info', 2500);
  }, RETURN_TIMEOUT_MS);
}

let soundPromptShown = false;
function askForSound() {
  if (soundPromptShown) return;
  soundPromptShown = true;
  const item = notify('The browser blocked sound. Click here to hear the others.', 'info', 0);
  item.style.cursor = 'pointer';
  item.addEventListener('click', () => {
    for (const audio of document.querySelectorAll('.tile audio')) audio.play().catch(() => {});
    item.remove();
    soundPromptShown = false;
  });
}

function applyMediaState(entry, msg) {
  entry.media = { audio: Boolean(msg.audio), video: Boolean(msg.video), screen: Boolean(msg.screen) };
  entry.tile.dataset.audio = String(entry.media.audio);
  entry.tile.dataset.video = String(entry.media.video);
  entry.tile.dataset.screen = String(entry.media.screen);
}

// ---- signaling ---------------------------------------------------------------------------------

function join() {
  state.phase = 'joining';
  const msg = { type: 'join-room', roomId, name: state.name };
  if (capacity) msg.capacity = capacity;
  state.signaling.send(msg);
}

/** Connect to the server; each handler below is one step of the life cycle in the file header. */
function connect() {
  const sig = new Signaling({ params: { name: state.name } });
  state.signaling = sig;
  sig.on('open', onServerOpen);
  sig.on('close', onServerLost);
  sig.on('welcome', onWelcome);
  sig.on('room-joined', onRoomJoined);
  sig.on('user-joined', onUserJoined);
  sig.on('user-disconnected', onUserDisconnected);
  for (const type of ['offer', 'answer', 'ice-candidate', 'track-map']) sig.on(type, (msg) => onRelayedSignal(type, msg));
  sig.on('relay-changed', onRelayChanged);
  sig.on('media-state', onMediaState);
  sig.on('recording-state', (msg) => recording.onRecordingState(msg));
  sig.on('full-room', onRoomFull);
  sig.on('hangup', onHangup);
  sig.on('incoming-call', onIncomingCall);
  sig.on('error', onServerError);
  sig.connect();
}

function onServerOpen({ reconnect }) {
  setServerStatus(reconnect ? 'rejoining…' : 'joining…', 'warn');
}

function onServerLost({ willRetry }) {
  if (!willRetry) return;
  if (state.phase === 'joined' || state.phase === 'joining') {
    state.phase = 'joining';
    setServerStatus('offline', 'bad');
    // Media flows peer to peer: each tile keeps showing its own connection's state.
    setBanner('Lost the connection to the server. Reconnecting… calls that are already connected keep going.', 'warn');
  }
}

function onWelcome(msg) {
  // A new id (the server did not take our resume token): the others will see a newcomer, so start again.
  if (state.selfId && msg.id !== state.selfId) {
    removeAllPeers();
    closeRelayConnection(); // it was negotiated for our old id
    state.relay = null;
  }
  state.selfId = msg.id;
  state.iceServers = Array.isArray(msg.iceServers) ? msg.iceServers : [];
  if (state.phase === 'joining' || state.phase === 'media') join();
}

function onRoomJoined(msg) {
  const self = msg.self && typeof msg.self === 'object' ? msg.self.id : msg.self;
  if (self) state.selfId = self;
  const rejoin = state.joins > 0;
  state.joins += 1;
  state.phase = 'joined';
  state.joinedAt = performance.now();
  setBanner('');
  if (Number.isInteger(msg.capacity)) state.capacity = msg.capacity;
  updateStageLayout();
  const members = Array.isArray(msg.peers) ? msg.peers : [];
  state.members = new Map(members.filter((p) => p && p.id && p.id !== state.selfId).map((p) => [p.id, p.name || 'guest']));
  recording.keepOnly(new Set(state.members.keys()));
  // Logged in (room-joined names our account): the record button may ask the server's recording workers.
  if (msg.self && typeof msg.self === 'object' && msg.self.account) recording.signedIn();
  // Before the Peers: a relay room feeds tiles from the relay; a room whose relay left while we were
  // away (a rejoin) falls back to a mesh. A relay connection still alive is kept, as Peers are.
  const relay = typeof msg.relay === 'string' && msg.relay ? msg.relay : null;
  if (relay) useRelay(relay);
  else useMesh();
  reconcilePeers(members);
  sendMediaState();
  announceJoin(rejoin, members.filter((p) => p && p.id !== state.relay).length);
}

/** Match our Peers to the members `room-joined` lists: keep live ones, offer to new ones. */
function reconcilePeers(members) {
  const listed = new Set();
  for (const p of members) {
    if (!p || !p.id || p.id === state.selfId) continue;
    listed.add(p.id);
    if (p.id === state.relay) continue; // no Peer and no tile: showRelayedMedia decides
    if (!keepPeer(p.id, p.name)) createPeer(p.id, p.name || 'guest', true);
  }
  // Peers the room did not list: after a server restart they come back (user-joined) as they reconnect;
  // otherwise they left while we were away (and user-disconnected follows).
  for (const [id, entry] of [...state.peers]) {
    if (!listed.has(id)) awaitReturn(id, entry);
  }
}

function announceJoin(rejoin, memberCount) {
  if (state.authProblem) {
    notify(`You joined as a guest: ${state.authProblem}`, 'info', 8000);
    state.authProblem = null;
  }
  if (rejoin) notify('Reconnected to the server and rejoined the room.', 'success', 3000);
  else if (memberCount === 0) {
    notify(isDirectCall ? 'Waiting for the other person to join…' : 'You are the first one here. Share the room link so others can join.', 'info', 4000);
  }
}

function onUserJoined(msg) {
  if (state.phase !== 'joined' || !msg.from || msg.from === state.selfId) return;
  state.members.set(msg.from, msg.name || 'guest');
  if (msg.from === state.relay) return;
  // Someone we are already in a call with, back after the server restarted: keep the call as it is.
  if (keepPeer(msg.from, msg.name)) {
    sendMediaState();
    return;
  }
  const entry = createPeer(msg.from, msg.name || 'guest', false);
  notify(`${entry.name} joined.`, 'info', 2500);
  sendMediaState(); // the newcomer learns our mic/camera/screen state
}

function onUserDisconnected(msg) {
  state.members.delete(msg.from);
  recording.forget(msg.from);
  const entry = removePeer(msg.from);
  if (msg.from === state.relay) {
    // relay-changed {relay: null} follows; falling back now is the same.
    if (state.phase === 'joined') onRelayChanged({ relay: null });
    return;
  }
  if (entry && state.phase === 'joined') notify(`${entry.name} left.`, 'info', 2500);
}

function onRelayChanged(msg) {
  if (state.phase !== 'joined') return;
  const relay = typeof msg.relay === 'string' && msg.relay ? msg.relay : null;
  if (relay === state.relay) return;
  if (relay) {
    useRelay(relay);
    notify('The call now goes through a relay.', 'info', 2500);
  } else {
    useMesh();
    if (state.peers.size > 0) notify('The relay left: reconnecting to everyone directly…', 'info', 3000);
  }
}

/**
 * An offer, answer, ICE candidate or track map from another member. In a relay room only the relay
 * negotiates with us (relay.js); in a mesh each member's Peer does (peer.js).
 */
function onRelayedSignal(type, msg) {
  if (!msg.from || state.phase !== 'joined') return;
  if (state.relayConnection) {
    // Anything else is left over from the mesh, sent before its sender heard of the relay.
    if (msg.from === state.relay) state.relayConnection.handleSignal(msg);
    return;
  }
  if (type === 'track-map') return; // a relay's, and the room has none (any more)
  let entry = state.peers.get(msg.from);
  if (!entry) {
    if (type !== 'offer') return; // stale message for a peer we no longer have
    entry = createPeer(msg.from, 'guest', false);
  }
  entry.peer.handleSignal(msg);
}

function onMediaState(msg) {
  const entry = state.peers.get(msg.from);
  if (entry) applyMediaState(entry, msg);
}

function onRoomFull() {
  state.phase = 'full';
  shutdown();
  showMessage('This room is full',
    'Every place in this room is taken, so you cannot join now. Try again when someone leaves, or create a new room.',
    [RELOAD, { label: 'Create a new room', href: '/' }]);
}

function onHangup(msg) {
  const entry = state.peers.get(msg.from);
  const name = entry ? entry.name : 'The other person';
  if (isDirectCall) {
    state.phase = 'ended';
    shutdown();
    showMessage('Call ended', `${name} hung up.`, [{ label: 'Back to the home page', kind: 'primary', href: '/' }]);
  } else {
    notify(`${name} hung up.`, 'info');
    removePeer(msg.from);
  }
}

function onIncomingCall(msg) {
  state.signaling.send({ type: 'call-reject', to: msg.from });
  notify(`${msg.name || 'Someone'} tried to call you. You are busy in this call, so it was declined.`, 'info');
}

function onServerError(msg) {
  state.errors.push(`${msg.code}: ${msg.message}`);
  if (msg.code === 'unauthorized') {
    onUnauthorized(msg);
  } else if (msg.code === 'rate-limited') {
    notify('You are sending too much too fast; the server dropped a message. Wait a moment.', 'error');
  } else if (msg.code === 'not-in-room' && state.phase === 'joined') {
    // The server forgot us (restart?): join again.
    join();
  } else {
    notify(`The server reported a problem: ${msg.message || msg.code}.`, 'error');
  }
}

/**
 * Either this server requires login (join-room is refused: no room-joined follows) or the
 * session/token we sent is no longer valid and we are connected as a guest (room-joined follows).
 */
function onUnauthorized(msg) {
  state.authProblem = msg.message || 'sign-in required';
  setTimeout(() => {
    if (state.phase === 'joined' || state.phase === 'left' || state.phase === 'full') return;
    state.phase = 'error';
    shutdown();
    showMessage('Sign in to join',
      'This server only lets signed-in users join rooms. Sign in (or register) on the home page, then open this room link again.',
      [{ label: 'Sign in', kind: 'primary', href: '/' }, RELOAD]);
  }, 1500);
}

function shutdown() {
  removeAllPeers();
  closeRelayConnection();
  state.signaling?.close();
  stopScreenShareSilently();
  for (const track of [state.mic, state.camera, state.placeholder]) track?.stop();
  $('local-video').srcObject = null;
  for (const id of ['toggle-mic', 'toggle-camera', 'toggle-screen', 'hang-up']) $(id).disabled = true;
  setBanner('');
  setServerStatus('not connected', '');
}

function stopScreenShareSilently() {
  if (state.screen) {
    state.screen.stop();
    state.screen = null;
  }
}

function leave() {
  if (state.phase === 'joined') {
    const others = [...state.peers.keys()];
    if (others.length === 1) state.signaling.send({ type: 'hangup', to: others[0] });
    state.signaling.send({ type: 'leave-room' });
  }
  state.phase = 'left';
  shutdown();
  showMessage(isDirectCall ? 'Call ended' : 'You left the room',
    isDirectCall ? 'You hung up.' : 'Rejoin to come back, or go to the home page.',
    isDirectCall ? [{ label: 'Back to the home page', kind: 'primary', href: '/' }] : [{ label: 'Rejoin', kind: 'primary', onclick: () => location.reload() }, HOME]);
}

$('hang-up').addEventListener('click', leave);

window.addEventListener('pagehide', () => {
  if (state.phase === 'joined') {
    state.signaling.send({ type: 'leave-room' });
    state.signaling.close();
  }
});

$('copy-link').addEventListener('click', async () => {
  const link = `${location.origin}/r/${encodeURIComponent(roomId)}`;
  try {
    await navigator.clipboard.writeText(link);
    notify('Room link copied. Send it to the people you want to talk to.', 'success', 3000);
  } catch {
    notify(`Room link: ${link}`, 'info', 10000);
  }
});

// ---- start -------------------------------------------------------------------------------------

async function askName(initial) {
  $('guest-name').value = initial;
  $('name-prompt').hidden = false;
  $('guest-name').focus();
  return new Promise((resolve) => {
    $('name-form').addEventListener('submit', function onSubmit(event) {
      event.preventDefault();
      const name = cleanName($('guest-name').value);
      if (!name) return;
      $('name-form').removeEventListener('submit', onSubmit);
      $('name-prompt').hidden = true;
      resolve(name);
    });
  });
}

async function main() {
  $('room-name').textContent = roomId;
  document.title = `vcall · ${roomId}`;
  if (!ROOM_ID_PATTERN.test(roomId)) {
    state.phase = 'error';
    showMessage('This room link is broken',
      'A room id uses only letters, digits, "-" and "_". Check the link you were sent, or create a new room.', [HOME]);
    for (const id of ['hang-up']) $(id).disabled = true;
    return;
  }
  let name = cleanName(params.get('name'));
  if (!name) {
    const me = await currentUser();
    name = cleanName(savedName()) || me || '';
    if (!name) {
      state.phase = 'naming';
      name = await askName(name);
    }
  }
  state.name = name;
  saveName(name);
  $('local-name').textContent = `${name} (you)`;
  $('local-initial').textContent = name.slice(0, 1).toUpperCase();
  await startMedia();
  state.phase = 'media';
  connect();
}

main();
