// Helpers shared by the home page and the room page.

/** A random, unguessable room id: 12 random bytes as base64url (16 characters). */
export function randomRoomId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export const ROOM_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Accept a bare room id or a pasted room link (…/r/<id>); returns null when neither. */
export function parseRoomInput(text) {
  const value = (text || '').trim();
  if (!value) return null;
  const match = value.match(/\/r\/([^/?#]+)/);
  const id = match ? decodeURIComponent(match[1]) : value;
  return ROOM_ID_PATTERN.test(id) ? id : null;
}

/** Call the REST API; resolves to {ok, status, data}. Never throws for HTTP errors. */
export async function api(method, path, body) {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    return { ok: false, status: 0, data: { error: { code: 'network', message: 'The server cannot be reached. Check your connection and try again.' } } };
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { raw: text };
    }
  }
  return { ok: res.ok, status: res.status, data };
}

/** The human-readable message of an API error body. */
export function errorMessage(result, fallback) {
  const e = result && result.data && result.data.error;
  if (e && e.message) return e.message;
  if (result && result.status === 0) return 'The server cannot be reached. Check your connection and try again.';
  return fallback;
}

/** Who is signed in, or null. */
export async function currentUser() {
  const r = await api('GET', '/api/me');
  if (r.ok && r.data && r.data.username) return r.data.username;
  return null;
}

const NAME_KEY = 'vcall.name';

export function savedName() {
  try {
    return localStorage.getItem(NAME_KEY) || '';
  } catch {
    return '';
  }
}

export function saveName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // storage disabled: the name lasts for this page only
  }
}

export function cleanName(name) {
  return (name || '').replace(/\s+/g, ' ').trim().slice(0, 40);
}

/** Show a transient notice at the bottom of the page. kind: info | error | success. */
export function notify(text, kind = 'info', timeoutMs = 6000) {
  let box = document.getElementById('notices');
  if (!box) {
    box = document.createElement('div');
    box.id = 'notices';
    box.setAttribute('aria-live', 'polite');
    document.body.appendChild(box);
  }
  const item = document.createElement('div');
  item.className = `notice notice-${kind}`;
  item.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  item.textContent = text;
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'notice-close';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';
  close.onclick = () => item.remove();
  item.appendChild(close);
  box.appendChild(item);
  if (timeoutMs > 0) setTimeout(() => item.remove(), timeoutMs);
  return item;
}

/** Create an element: el('div', {className: 'x', onclick: f}, child1, 'text'). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('aria-') || key === 'role' || key === 'for') node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
