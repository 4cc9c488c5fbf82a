#!/usr/bin/env node
// The signaling benchmark's baseline: a minimal room relay on Node.js and the `ws` package, as the
// plain-WebSocket calling apps write it. It speaks the subset of vcall's protocol (docs/protocol.md) that
// `vcall-bench signaling` uses, so the same generator drives both servers:
//   welcome {id}; join-room {roomId, capacity?} -> room-joined {roomId, self, peers, capacity} to the joiner and
//   user-joined {from, roomUsers} to the others (full-room when full); offer / answer / ice-candidate relayed to
//   `to` (or the other member of a two-person room) with `from` stamped; user-disconnected on close.
// Errors (bad JSON, not in a room, unknown peer) are answered with {type: "error", code, message}.
//
//   node bench/node_relay.js [--port 0] [--host 127.0.0.1]
// Prints "node-relay listening on ws://HOST:PORT/ws".

'use strict';

// Debian's node-ws lives in /usr/share/nodejs, which a Node.js not built by Debian does not search.
module.paths.push('/usr/share/nodejs');
const { WebSocketServer } = require('ws');
const crypto = require('crypto');

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

const host = option('host', '127.0.0.1');
const port = Number(option('port', '0'));
const maxCapacity = 8;

const clients = new Map(); // id -> socket
const rooms = new Map(); // roomId -> {capacity, members: [id]}

const wss = new WebSocketServer({ host, port, path: '/ws', maxPayload: 1 << 20, backlog: 1024 });

function send(socket, message) {
  if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
}

function fail(socket, code, message) {
  send(socket, { type: 'error', code, message });
}

function leave(socket) {
  const room = socket.roomId && rooms.get(socket.roomId);
  socket.roomId = null;
  if (!room) return;
  room.members = room.members.filter((id) => id !== socket.id);
  if (room.members.length === 0) {
    rooms.delete(room.id);
    return;
  }
  for (const member of room.members) send(clients.get(member), { type: 'user-disconnected', from: socket.id });
}

function join(socket, message) {
  const roomId = message.roomId;
  if (typeof roomId !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(roomId)) {
    return fail(socket, 'invalid-message', 'join-room: roomId must be 1-64 of A-Z a-z 0-9 _ -');
  }
  let room = rooms.get(roomId);
  if (room && room.members.length >= room.capacity) return send(socket, { type: 'full-room', roomId });
  if (socket.roomId && socket.roomId !== roomId) leave(socket);
  if (!room) {
    const capacity = Number.isInteger(message.capacity) ? Math.min(Math.max(message.capacity, 1), maxCapacity) : maxCapacity;
    room = { id: roomId, capacity, members: [] };
    rooms.set(roomId, room);
  }
  const peers = room.members.filter((id) => id !== socket.id);
  if (!room.members.includes(socket.id)) room.members.push(socket.id);
  socket.roomId = roomId;
  send(socket, {
    type: 'room-joined', roomId, self: { id: socket.id, name: socket.id },
    peers: peers.map((id) => ({ id, name: id })), capacity: room.capacity,
  });
  for (const peer of peers) send(clients.get(peer), { type: 'user-joined', from: socket.id, name: socket.id, roomUsers: room.members });
}

function relay(socket, message, field) {
  const room = socket.roomId && rooms.get(socket.roomId);
  if (!room) return fail(socket, 'not-in-room', `${message.type}: join a room first`);
  let target = message.to;
  if (target === undefined || target === null) {
    const others = room.members.filter((id) => id !== socket.id);
    if (others.length !== 1) return fail(socket, 'invalid-message', `${message.type}: "to" is required`);
    target = others[0];
  } else if (target === socket.id || !room.members.includes(target)) {
    return fail(socket, 'unknown-peer', `${message.type}: not a member of the room`);
  }
  if (!(field in message)) return fail(socket, 'invalid-message', `${message.type}: "${field}" is required`);
  send(clients.get(target), { type: message.type, from: socket.id, [field]: message[field] });
}

wss.on('connection', (socket) => {
  socket.id = crypto.randomBytes(12).toString('hex');
  socket.roomId = null;
  clients.set(socket.id, socket);
  send(socket, { type: 'welcome', id: socket.id, name: socket.id, iceServers: [] });

  socket.on('message', (data, isBinary) => {
    let message;
    try {
      if (isBinary) throw new Error('binary');
      message = JSON.parse(data);
    } catch {
      return fail(socket, 'bad-json', 'send one JSON object per text frame');
    }
    if (message === null || typeof message !== 'object' || typeof message.type !== 'string') {
      return fail(socket, 'invalid-message', 'a message is a JSON object with a "type"');
    }
    switch (message.type) {
      case 'join-room': return join(socket, message);
      case 'leave-room': return leave(socket);
      case 'offer': return relay(socket, message, 'offer');
      case 'answer': return relay(socket, message, 'answer');
      case 'ice-candidate': return relay(socket, message, 'candidate');
      default: return fail(socket, 'unknown-type', `unknown message type ${message.type}`);
    }
  });

  socket.on('close', () => {
    leave(socket);
    clients.delete(socket.id);
  });
  socket.on('error', () => {});
});

wss.on('listening', () => {
  const address = wss.address();
  console.log(`node-relay listening on ws://${address.address}:${address.port}/ws`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const socket of wss.clients) socket.terminate();
    wss.close(() => process.exit(0));
  });
}
