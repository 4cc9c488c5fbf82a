import Logging
import SignalingProtocol

/// One connection's way out: messages are queued and written by the connection's own writer task,
/// so a slow client never blocks the hub or another room.
final class ClientHandle: Sendable {
    let id: String
    private let continuation: AsyncStream<String>.Continuation

    /// Messages a client may have queued before it counts as stuck and is disconnected.
    static let queueLimit = 2048

    init(id: String, continuation: AsyncStream<String>.Continuation) {
        self.id = id
        self.continuation = continuation
    }

    func send(_ message: ServerMessage) {
        send(text: message.jsonString())
    }

    func send(text: String) {
        if case .dropped = continuation.yield(text) {
            // The client does not read: close it rather than buffer without end.
            continuation.finish()
        }
    }

    /// Ends the outbound queue, which closes the WebSocket.
    func close() {
        continuation.finish()
    }
}

/// A room listed by `GET /api/rooms`.
public struct RoomSummary: Codable, Sendable, Equatable {
    public var roomId: String
    public var capacity: Int
    public var members: [PeerInfo]
}

/// Rooms, presence and routing. Every client message is handled here, one at a time.
actor SignalingHub {
    struct Client {
        let handle: ClientHandle
        var name: String
        let identity: Identity?
        let sequence: Int
        var roomId: String?
    }

    struct Room {
        let id: String
        let capacity: Int
        var members: [String]
    }

    let configuration: VCallServerConfiguration
    let metrics: ServerMetrics
    let logger: Logger
    private var clients: [String: Client] = [:]
    private var rooms: [String: Room] = [:]
    private var sequence = 0
    private var presenceScheduled = false

    init(configuration: VCallServerConfiguration, metrics: ServerMetrics, logger: Logger) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }

    // MARK: connections

    /// Registers a connection and sends it `welcome` (and everyone `online-users`).
    func connect(_ handle: ClientHandle, name: String, identity: Identity?) {
        sequence += 1
        clients[handle.id] = Client(handle: handle, name: name, identity: identity, sequence: sequence, roomId: nil)
        metrics.connections.set(Double(clients.count))
        handle.send(.welcome(id: handle.id, name: name, iceServers: configuration.iceServers))
        logger.debug("connected", metadata: ["peer": "\(handle.id)", "name": "\(name)", "authenticated": "\(identity != nil)"])
        broadcastPresence()
    }

    /// Removes a connection: leaves its room and updates presence.
    func disconnect(_ id: String) {
        guard clients[id] != nil else { return }
        removeFromRoom(id)
        clients[id] = nil
        metrics.connections.set(Double(clients.count))
        logger.debug("disconnected", metadata: ["peer": "\(id)"])
        broadcastPresence()
    }

    /// Closes every connection (graceful shutdown).
    func closeAll() {
        for client in clients.values { client.handle.close() }
    }

    func roomSummaries() -> [RoomSummary] {
        rooms.values.sorted { $0.id < $1.id }.map { room in
            RoomSummary(roomId: room.id, capacity: room.capacity, members: room.members.compactMap(peerInfo))
        }
    }

    // MARK: messages

    func handle(_ message: ClientMessage, from id: String) {
        guard let client = clients[id] else { return }
        metrics.messagesReceived.increment()
        switch message {
        case .joinRoom(let roomId, let name, let capacity):
            guard authorized(client) else { return }
            join(id, roomId: roomId, name: name.flatMap(SignalingLimits.normalizedName), capacity: capacity)

        case .leaveRoom:
            guard client.roomId != nil else {
                return fail(id, .notInRoom, "leave-room: you are not in a room")
            }
            removeFromRoom(id)
            broadcastPresence()

        case .offer(let to, let offer):
            relay(from: id, to: to, type: "offer") { .offer(from: id, offer: offer) }
        case .answer(let to, let answer):
            relay(from: id, to: to, type: "answer") { .answer(from: id, answer: answer) }
        case .iceCandidate(let to, let candidate):
            relay(from: id, to: to, type: "ice-candidate") { .iceCandidate(from: id, candidate: candidate) }

        case .call(let to, let roomId):
            guard authorized(client), let target = onlinePeer(to, from: id, type: "call") else { return }
            deliver(.incomingCall(from: id, name: client.name, roomId: roomId), to: target)
        case .callAccept(let to):
            guard authorized(client), let target = onlinePeer(to, from: id, type: "call-accept") else { return }
            deliver(.callAccepted(from: id), to: target)
        case .callReject(let to):
            guard authorized(client), let target = onlinePeer(to, from: id, type: "call-reject") else { return }
            deliver(.callRejected(from: id), to: target)
        case .hangup(let to):
            guard authorized(client) else { return }
            if let to {
                guard let target = onlinePeer(to, from: id, type: "hangup") else { return }
                deliver(.hangup(from: id), to: target)
            } else {
                guard let roomId = client.roomId, let room = rooms[roomId] else {
                    return fail(id, .invalidMessage, "hangup: \"to\" is required when you are not in a room: name the user you are calling")
                }
                let others = room.members.filter { $0 != id }
                guard others.count == 1 else {
                    return fail(id, .invalidMessage, "hangup: \"to\" is required unless the room holds exactly two members")
                }
                deliver(.hangup(from: id), to: others[0])
            }

        case .mediaState(let state):
            guard let roomId = client.roomId, let room = rooms[roomId] else {
                return fail(id, .notInRoom, "media-state: join a room first")
            }
            for member in room.members where member != id {
                deliver(.mediaState(from: id, state: state), to: member)
            }
        }
    }

    /// Sends an `error` to one client and counts it.
    func fail(_ id: String, _ code: ErrorCode, _ message: String) {
        metrics.countError(code)
        clients[id]?.handle.send(.error(code: code, message: message))
    }

    // MARK: rooms

    private func join(_ id: String, roomId: String, name: String?, capacity: Int?) {
        guard var client = clients[id] else { return }
        let renamed = name != nil && name != client.name
        if let name, renamed {
            client.name = name
            clients[id] = client
        }
        if client.roomId == roomId, let room = rooms[roomId] {
            // Joining the room one is in again just repeats room-joined.
            client.handle.send(.roomJoined(
                roomId: roomId,
                self: PeerInfo(id: id, name: client.name),
                peers: room.members.filter { $0 != id }.compactMap(peerInfo),
                capacity: room.capacity
            ))
            broadcastPresence()
            return
        }
        if let room = rooms[roomId], room.members.count >= room.capacity {
            client.handle.send(.fullRoom(roomId: roomId))
            if renamed { broadcastPresence() }
            return
        }
        if client.roomId != nil { removeFromRoom(id) }
        var room = rooms[roomId] ?? Room(
            id: roomId,
            capacity: min(max(capacity ?? configuration.roomCapacity, 1), configuration.roomCapacity),
            members: []
        )
        let peers = room.members.compactMap(peerInfo)
        room.members.append(id)
        rooms[roomId] = room
        clients[id]?.roomId = roomId
        updateRoomGauges()
        client.handle.send(.roomJoined(roomId: roomId, self: PeerInfo(id: id, name: client.name), peers: peers, capacity: room.capacity))
        for peer in peers {
            deliver(.userJoined(from: id, name: client.name, roomUsers: room.members), to: peer.id, counted: false)
        }
        logger.debug("joined", metadata: ["peer": "\(id)", "room": "\(roomId)", "members": "\(room.members.count)"])
        broadcastPresence()
    }

    /// Takes a client out of its room and tells the others; the caller updates presence.
    private func removeFromRoom(_ id: String) {
        guard let roomId = clients[id]?.roomId else { return }
        clients[id]?.roomId = nil
        guard var room = rooms[roomId] else { return }
        room.members.removeAll { $0 == id }
        if room.members.isEmpty {
            rooms[roomId] = nil
        } else {
            rooms[roomId] = room
            for member in room.members {
                deliver(.userDisconnected(from: id), to: member, counted: false)
            }
        }
        updateRoomGauges()
        logger.debug("left", metadata: ["peer": "\(id)", "room": "\(roomId)"])
    }

    private func updateRoomGauges() {
        metrics.rooms.set(Double(rooms.count))
        metrics.roomMembers.set(Double(rooms.values.reduce(0) { $0 + $1.members.count }))
    }

    // MARK: routing

    /// Routes offer/answer/ice-candidate inside the sender's room.
    private func relay(from id: String, to: String?, type: String, _ make: () -> ServerMessage) {
        guard let roomId = clients[id]?.roomId, let room = rooms[roomId] else {
            return fail(id, .notInRoom, "\(type): join a room first, then send \(type) to one of its members")
        }
        let target: String
        if let to {
            guard to != id, room.members.contains(to) else {
                return fail(id, .unknownPeer, "\(type): \"\(to.prefix(64))\" is not a member of room \(roomId): use an id from room-joined or user-joined")
            }
            target = to
        } else {
            let others = room.members.filter { $0 != id }
            guard others.count == 1 else {
                return fail(
                    id, .invalidMessage,
                    "\(type): \"to\" is required because room \(roomId) has \(room.members.count) members: name the peer's id"
                )
            }
            target = others[0]
        }
        deliver(make(), to: target)
    }

    /// An online user another one may call, or nil after sending `unknown-peer`.
    private func onlinePeer(_ to: String, from id: String, type: String) -> String? {
        guard to != id, let target = clients[to], visibleInPresence(target) else {
            fail(id, .unknownPeer, "\(type): no online user has id \"\(to.prefix(64))\": pick one from online-users")
            return nil
        }
        return target.handle.id
    }

    private func deliver(_ message: ServerMessage, to id: String, counted: Bool = true) {
        guard let client = clients[id] else { return }
        if counted { metrics.messagesRelayed.increment() }
        client.handle.send(message)
    }

    private func authorized(_ client: Client) -> Bool {
        guard configuration.requireLogin, client.identity == nil else { return true }
        fail(
            client.handle.id, .unauthorized,
            "this server requires login: log in to the web app, or connect with an API token (Authorization: Bearer TOKEN or /ws?token=TOKEN)"
        )
        return false
    }

    // MARK: presence

    private func visibleInPresence(_ client: Client) -> Bool {
        !configuration.requireLogin || client.identity != nil
    }

    private func peerInfo(_ id: String) -> PeerInfo? {
        clients[id].map { PeerInfo(id: id, name: $0.name) }
    }

    /// Schedules `online-users` for every client that may see it.
    ///
    /// Changes within `presenceInterval` are coalesced into one message, so a client that joins and
    /// leaves in a loop cannot make the server flood everyone else.
    private func broadcastPresence() {
        guard !presenceScheduled else { return }
        presenceScheduled = true
        Task {
            try? await Task.sleep(for: Self.presenceInterval)
            self.flushPresence()
        }
    }

    static let presenceInterval: Duration = .milliseconds(50)

    private func flushPresence() {
        presenceScheduled = false
        let visible = clients.values.filter(visibleInPresence).sorted { $0.sequence < $1.sequence }
        let text = ServerMessage.onlineUsers(users: visible.map {
            OnlineUser(id: $0.handle.id, name: $0.name, inCall: $0.roomId != nil)
        }).jsonString()
        for client in visible {
            client.handle.send(text: text)
        }
    }
}
