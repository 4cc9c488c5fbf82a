// WebSocket client for vcall's signaling protocol (docs/protocol.md).
//
// One JSON object per text frame, each with a `type`. The client reconnects by itself with
// exponential backoff (0.5 s, 1 s, 2 s … capped at 8 s, with jitter) whenever the socket drops,
// until close() is called. Each `welcome` carries a `resumeToken`; a reconnect sends the last one
// (`/ws?resume=TOKEN`), so the server gives back the SAME id and, within its grace period, the room
// membership too: the others never see us leave. If the token is refused (say the server lost its
// data) the `welcome` carries a new id and the owner must rebuild its peers (see room.js).
//
//   const sig = new Signaling();
//   sig.on('welcome', (m) => sig.send({ type: 'join-room', roomId: 'abc' }));
//   sig.on('offer', (m) => …);
//   sig.connect();

export class Signaling {
  /** @param {{url?: string, params?: Record<string,string>}} [options] */
  constructor(options = {}) {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const base = options.url || `${proto}//${location.host}/ws`;
    this.base = base;
    this.params = { ...(options.params || {}) };
    this.resumeToken = null; // from the last welcome; sent on every reconnect
    this.ws = null;
    this.handlers = new Map();
    this.closedByUser = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.connections = 0;
    this.sent = 0;
    this.received = 0;
  }

  /** Register `fn` for messages of `type`, or for the pseudo-events 'open', 'close', '*'. */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type)?.delete(fn);
  }

  emit(type, value) {
    for (const fn of this.handlers.get(type) || []) {
      try {
        fn(value);
      } catch (err) {
        console.error(`vcall: handler for ${type} failed`, err);
      }
    }
  }

  /** The URL of the next connection: the params, plus the resume token once the server gave one. */
  get url() {
    const query = new URLSearchParams(this.params);
    if (this.resumeToken) query.set('resume', this.resumeToken);
    const text = query.toString();
    return text ? `${this.base}?${text}` : this.base;
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    this.closedByUser = false;
    clearTimeout(this.retryTimer);
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      console.error('vcall: cannot open WebSocket', err);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.connections += 1;
      this.emit('open', { reconnect: this.connections > 1 });
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        console.warn('vcall: server sent a frame that is not JSON', event.data);
        return;
      }
      if (!msg || typeof msg.type !== 'string') return;
      if (msg.type === 'welcome') this.resumeToken = typeof msg.resumeToken === 'string' ? msg.resumeToken : null;
      this.received += 1;
      this.emit('*', msg);
      this.emit(msg.type, msg);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const willRetry = !this.closedByUser;
      this.emit('close', { code: event.code, reason: event.reason, willRetry });
      if (willRetry) this.scheduleReconnect();
    };
    ws.onerror = () => {
      // onclose follows and handles the retry.
    };
  }

  scheduleReconnect() {
    clearTimeout(this.retryTimer);
    const delay = Math.min(8000, 500 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Send one message; returns false (and drops it) when the socket is not open. */
  send(msg) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(msg));
    this.sent += 1;
    return true;
  }

  /** Close for good: no reconnect. */
  close() {
    this.closedByUser = true;
    clearTimeout(this.retryTimer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, 'bye');
    }
  }

  /** For tests and debugging: drop the socket as a network failure would (a close code other than
   * 1000/1001, so the server keeps our room membership for a resume), and let it reconnect. */
  simulateDrop() {
    if (this.ws) this.ws.close(4000, 'simulated drop');
  }
}
