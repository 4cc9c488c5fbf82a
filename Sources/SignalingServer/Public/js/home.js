// The home page: create or join a room, sign in, see who is online and call them directly.
//
// Direct calls (docs/protocol.md): the caller picks a fresh room id and sends `call {to, roomId}`;
// the callee gets `incoming-call {from, name, roomId}` and answers `call-accept {to}` or
// `call-reject {to}`; either side may `hangup {to}` while it rings. On accept both open
// /r/<roomId>?capacity=2&call=1, a two-person room.

import { Signaling } from './signaling.js';
import {
  api, cleanName, currentUser, el, errorMessage, notify, parseRoomInput, randomRoomId, saveName, savedName,
} from './common.js';
import { installHomeInspection } from './inspect.js';

const RING_TIMEOUT_MS = 30000;

const $ = (id) => document.getElementById(id);

const state = {
  me: null, // signed-in username or null
  selfId: null,
  name: '',
  users: [],
  call: null, // {direction: 'outgoing'|'incoming', peerId, peerName, roomId, timer}
  signaling: null,
};

// The test/inspection hooks (`window.vcall`); tests read them, see inspect.js.
installHomeInspection({ state });

function roomUrl(roomId, extra = {}) {
  const q = new URLSearchParams(extra).toString();
  return `/r/${encodeURIComponent(roomId)}${q ? `?${q}` : ''}`;
}

// ---- rooms -------------------------------------------------------------------------------------

$('create-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const capacity = $('capacity').value;
  location.href = roomUrl(randomRoomId(), capacity ? { capacity } : {});
});

$('join-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const id = parseRoomInput($('room-id').value);
  if (!id) {
    $('join-error').textContent = 'That is not a room id. Paste the id or the whole room link (letters, digits, - and _ only).';
    return;
  }
  $('join-error').textContent = '';
  location.href = roomUrl(id);
});

// ---- name and presence -------------------------------------------------------------------------

function initialName() {
  const fromUrl = cleanName(new URLSearchParams(location.search).get('name'));
  if (fromUrl) {
    saveName(fromUrl);
    return fromUrl;
  }
  return cleanName(savedName()) || state.me || '';
}

$('name-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = cleanName($('display-name').value);
  if (!name) {
    notify('Type a name first: it is what other people see.', 'error');
    return;
  }
  state.name = name;
  saveName(name);
  notify(`Your name is now ${name}.`, 'success', 3000);
  reconnectPresence();
});

function connectPresence() {
  const params = {};
  if (state.name) params.name = state.name;
  const sig = new Signaling({ params });
  state.signaling = sig;
  sig.on('open', () => {
    $('presence-status').textContent = 'online';
    $('presence-status').className = 'pill ok';
  });
  sig.on('close', ({ willRetry }) => {
    state.selfId = null;
    if (!willRetry) return;
    $('presence-status').textContent = 'reconnecting…';
    $('presence-status').className = 'pill warn';
    if (state.call) endCall('The connection to the server dropped, so the call was cancelled. Try again in a moment.', 'error');
  });
  sig.on('welcome', (msg) => {
    state.selfId = msg.id;
    $('presence-name').textContent = msg.name || 'guest';
    renderUsers();
  });
  sig.on('online-users', (msg) => {
    state.users = Array.isArray(msg.users) ? msg.users : [];
    renderUsers();
    if (state.call && !state.users.some((u) => u.id === state.call.peerId)) {
      endCall(`${state.call.peerName} went offline.`, 'info');
    }
  });
  sig.on('incoming-call', onIncomingCall);
  sig.on('call-accepted', (msg) => {
    const call = state.call;
    if (!call || call.direction !== 'outgoing' || msg.from !== call.peerId) return;
    clearTimeout(call.timer);
    state.call = null;
    sig.close();
    location.href = roomUrl(call.roomId, { capacity: 2, call: 1 });
  });
  sig.on('call-rejected', (msg) => {
    const call = state.call;
    if (!call || msg.from !== call.peerId) return;
    endCall(`${call.peerName} declined your call.`, 'info');
  });
  sig.on('hangup', (msg) => {
    const call = state.call;
    if (!call || msg.from !== call.peerId) return;
    endCall(`${call.peerName} hung up.`, 'info');
  });
  sig.on('error', (msg) => {
    if (msg.code === 'unauthorized') {
      notify(`Sign-in problem: ${msg.message || 'this server requires signing in'}. Log in or register below.`, 'error', 10000);
    } else {
      notify(`The server said: ${msg.message || msg.code}`, 'error');
    }
  });
  sig.connect();
}

function reconnectPresence() {
  if (state.signaling) state.signaling.close();
  connectPresence();
}

function renderUsers() {
  const list = $('online-users');
  list.replaceChildren();
  const others = state.users.filter((u) => u.id !== state.selfId);
  $('online-empty').hidden = others.length > 0;
  for (const user of others) {
    const name = user.name || 'guest';
    const button = el('button', {
      type: 'button',
      className: 'primary small call-button',
      textContent: user.inCall ? 'In a call' : 'Call',
      disabled: Boolean(user.inCall) || state.call !== null,
      'aria-label': `Call ${name}`,
      onclick: () => startCall(user),
    });
    list.append(el('li', { className: 'user', dataset: { userId: user.id, userName: name } },
      el('span', { className: 'avatar', 'aria-hidden': 'true' }, name.slice(0, 1).toUpperCase()),
      el('span', { className: 'user-name' }, name),
      user.inCall ? el('span', { className: 'pill warn' }, 'busy') : null,
      button));
  }
}

// ---- direct calls ------------------------------------------------------------------------------

const dialog = $('call-dialog');

function showCallDialog(kind, title, text) {
  $('call-title').textContent = title;
  $('call-text').textContent = text;
  $('call-accept').hidden = kind !== 'incoming';
  $('call-reject').hidden = kind !== 'incoming';
  $('call-cancel').hidden = kind !== 'outgoing';
  dialog.dataset.kind = kind;
  if (!dialog.open) dialog.showModal();
}

function closeCallDialog() {
  if (dialog.open) dialog.close();
  delete dialog.dataset.kind;
}

function endCall(text, kind) {
  if (state.call) clearTimeout(state.call.timer);
  state.call = null;
  closeCallDialog();
  renderUsers();
  if (text) notify(text, kind);
}

function startCall(user) {
  if (state.call) return;
  const name = user.name || 'guest';
  const roomId = randomRoomId();
  if (!state.signaling.send({ type: 'call', to: user.id, roomId })) {
    notify('Not connected to the server yet. Wait a moment and try again.', 'error');
    return;
  }
  state.call = { direction: 'outgoing', peerId: user.id, peerName: name, roomId };
  state.call.timer = setTimeout(() => {
    state.signaling.send({ type: 'hangup', to: user.id });
    endCall(`${name} did not answer.`, 'info');
  }, RING_TIMEOUT_MS);
  renderUsers();
  showCallDialog('outgoing', `Calling ${name}…`, 'Ringing. The call starts when they accept.');
}

function onIncomingCall(msg) {
  const name = msg.name || 'Someone';
  if (state.call) {
    // Busy with another call: decline this one.
    state.signaling.send({ type: 'call-reject', to: msg.from });
    notify(`${name} tried to call you while you were busy.`, 'info');
    return;
  }
  if (typeof msg.roomId !== 'string' || !msg.roomId) {
    state.signaling.send({ type: 'call-reject', to: msg.from });
    notify(`${name} tried to call you, but the call had no room. Ask them to call again.`, 'error');
    return;
  }
  state.call = { direction: 'incoming', peerId: msg.from, peerName: name, roomId: msg.roomId };
  state.call.timer = setTimeout(() => {
    state.signaling.send({ type: 'call-reject', to: msg.from });
    endCall(`You missed a call from ${name}.`, 'info');
  }, RING_TIMEOUT_MS);
  renderUsers();
  showCallDialog('incoming', `${name} is calling you`, 'Accept to join a 1-on-1 video call.');
}

$('call-accept').addEventListener('click', () => {
  const call = state.call;
  if (!call || call.direction !== 'incoming') return;
  clearTimeout(call.timer);
  state.signaling.send({ type: 'call-accept', to: call.peerId });
  state.call = null;
  closeCallDialog();
  state.signaling.close();
  location.href = roomUrl(call.roomId, { capacity: 2, call: 1 });
});

$('call-reject').addEventListener('click', () => {
  const call = state.call;
  if (!call || call.direction !== 'incoming') return;
  state.signaling.send({ type: 'call-reject', to: call.peerId });
  endCall(`You declined the call from ${call.peerName}.`, 'info');
});

$('call-cancel').addEventListener('click', () => {
  const call = state.call;
  if (!call || call.direction !== 'outgoing') return;
  state.signaling.send({ type: 'hangup', to: call.peerId });
  endCall('Call cancelled.', 'info');
});

dialog.addEventListener('cancel', (event) => {
  // Escape: reject or cancel rather than leaving the call hanging.
  event.preventDefault();
  if (state.call?.direction === 'incoming') $('call-reject').click();
  else if (state.call?.direction === 'outgoing') $('call-cancel').click();
});

// ---- account -----------------------------------------------------------------------------------

function renderAccount() {
  const signedIn = Boolean(state.me);
  $('signed-in').hidden = !signedIn;
  $('signed-out').hidden = signedIn;
  $('me-name').textContent = state.me || '';
  $('account-status').textContent = signedIn ? `Signed in as ${state.me}` : 'Guest';
  $('account-status').dataset.user = state.me || '';
}

async function authenticate(kind) {
  const username = $('username').value.trim();
  const password = $('password').value;
  $('auth-error').textContent = '';
  if (!username || !password) {
    $('auth-error').textContent = 'Enter a username and a password.';
    return;
  }
  const result = await api('POST', kind === 'register' ? '/api/register' : '/api/login', { username, password });
  if (!result.ok) {
    const fallback = kind === 'register'
      ? 'Registration failed. Try another username.'
      : 'Wrong username or password. Check them, or register first.';
    $('auth-error').textContent = errorMessage(result, fallback);
    return;
  }
  state.me = await currentUser();
  if (!state.me && kind === 'register') {
    // Registration did not start a session: log in with the same credentials.
    const login = await api('POST', '/api/login', { username, password });
    if (login.ok) state.me = await currentUser();
  }
  if (!state.me) {
    $('auth-error').textContent = 'Signed in, but the browser did not keep the session. Allow cookies for this site and try again.';
    return;
  }
  $('password').value = '';
  if (!cleanName(savedName()) || !state.name) {
    state.name = state.me;
    $('display-name').value = state.name;
  }
  renderAccount();
  notify(kind === 'register' ? `Welcome, ${state.me}! Your account is ready.` : `Signed in as ${state.me}.`, 'success', 3000);
  reconnectPresence();
}

$('auth-form').addEventListener('submit', (event) => {
  event.preventDefault();
  authenticate('login');
});
$('register').addEventListener('click', () => authenticate('register'));

$('logout').addEventListener('click', async () => {
  const result = await api('POST', '/api/logout');
  if (!result.ok && result.status !== 401) {
    notify(errorMessage(result, 'Logging out failed. Try again.'), 'error');
    return;
  }
  state.me = null;
  $('token-output').hidden = true;
  renderAccount();
  notify('You are signed out.', 'info', 3000);
  reconnectPresence();
});

$('make-token').addEventListener('click', async () => {
  const name = `token-${new Date().toISOString().slice(0, 10)}`;
  const result = await api('POST', '/api/tokens', { name });
  if (!result.ok || !result.data?.token) {
    notify(errorMessage(result, 'Could not create a token. Sign in again and retry.'), 'error');
    return;
  }
  const out = $('token-output');
  out.textContent = `${result.data.token}\n(shown once: copy it now)`;
  out.hidden = false;
});

// ---- start -------------------------------------------------------------------------------------

async function main() {
  state.me = await currentUser();
  renderAccount();
  state.name = initialName();
  $('display-name').value = state.name;
  const params = new URLSearchParams(location.search);
  if (params.get('notice')) notify(params.get('notice'), 'info');
  renderUsers();
  connectPresence();
}

main();
