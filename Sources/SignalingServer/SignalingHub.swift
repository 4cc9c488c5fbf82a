import Logging
import NIOConcurrencyHelpers
import NIOCore
import SignalingProtocol

/// A room listed by `GET /api/rooms`.
public struct RoomSummary: Codable, Sendable, Equatable {
    public var roomId: String
    public var capacity: Int
    /// The relay's peer id; nil (written as `null`, never left out) when the room has none.
    public var relay: String?
    public var members: [PeerInfo]

    public init(roomId: String, capacity: Int, relay: String?, members: [PeerInfo]) {
        self.roomId = roomId
        self.capacity = capacity
        self.relay = relay
        self.members = members
    }

    enum CodingKeys: String, CodingKey {
        case roomId, capacity, relay, members
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(roomId, forKey: .roomId)
        try c.encode(capacity, forKey: .capacity)
        try c.encode(relay, forKey: .relay)
        try c.encode(members, forKey: .members)
    }
}

/// Rooms, presence and routing.
///
/// All state sits behind one lock, taken briefly by the connection that received a message: a relay goes
/// straight from the sender's connection to the target's outbound queue, with no hop through an actor, and
/// two connections' messages are handled in parallel except for the lookup itself. Messages from one
/// connection are still handled in the order they arrived, since each connection calls in turn.
final class SignalingHub: Sendable {
    let resumeTokens: ResumeTokens
    /// The other nodes on the same database; nil on a server of its own (SQLite).
    let cluster: ClusterBus?
    /// The recording workers' job queue (PostgreSQL); nil on a server of its own.
    let jobs: RecordingJobQueue?
    let logger: Logger
    private let state: NIOLockedValueBox<State>

    init(
        configuration: VCallServerConfiguration, metrics: ServerMetrics, logger: Logger, resumeTokens: ResumeTokens,
        cluster: ClusterBus? = nil, jobs: RecordingJobQueue? = nil
    ) {
        self.resumeTokens = resumeTokens
        self.cluster = cluster
        self.jobs = jobs
        self.logger = logger
        self.state = NIOLockedValueBox(State(
            configuration: configuration, metrics: metrics, logger: logger, resumeTokens: resumeTokens, node: cluster?.node
        ))
        guard let cluster else { return }
        cluster.handlers = ClusterBus.Handlers(
            events: { [weak self] events in self?.withState { $0.apply(events) } },
            nodeDead: { [weak self] node in self?.withState { $0.nodeDied(node) } },
            reconnected: { [weak self] in self?.withState { $0.snapshotRequests.append(State.everyNode) } },
            undeliverable: { [weak self] events in self?.withState { $0.undeliverable(events) } }
        )
    }

    /// Runs `body` under the lock, hands the other nodes what they must hear, then starts the timers it asked for.
    ///
    /// The other nodes' events are queued before the lock is released (queuing never waits): two calls that
    /// publish after releasing it could reach the outbox in the opposite order, and a stale snapshot after a
    /// newer record would make the other nodes forget a client.
    private func withState<Result>(_ body: (inout State) -> Result) -> Result {
        let (result, timers) = state.withLockedValue { state in
            let result = body(&state)
            defer {
                state.timers = []
                state.snapshotRequests = []
            }
            if let cluster {
                cluster.publish(state.takeClusterEvents())
                for node in state.snapshotRequests {
                    cluster.publish([.snapshot(node: cluster.node, members: state.localMembers())], to: node == State.everyNode ? nil : node)
                }
            }
            return (result, state.timers)
        }
        for timer in timers {
            Task { [weak self] in
                try? await Task.sleep(for: timer.delay)
                self?.withState(timer.fire)
            }
        }
        return result
    }

    /// Registers a connection, sends it `welcome` (with its resume token) and everyone `online-users`.
    ///
    /// `resuming` is the id of a valid resume token. The connection takes that id: it inherits the id's
    /// name and room membership when the id is still known (a member in its grace, or a half-open socket,
    /// which is closed without telling anyone), or starts afresh under it (after a server restart, or once
    /// the grace is over). An id held by other credentials is not handed over: the connection gets a new id.
    func connect(
        channel: any Channel, closeObserver: CloseCodeObserver?, name: String, identity: Identity?, resuming: String?
    ) -> ClientHandle {
        withState { $0.connect(channel: channel, closeObserver: closeObserver, name: name, identity: identity, resuming: resuming) }
    }

    /// A socket ended. `clean` means the client closed it with code 1000 or 1001: the member leaves its room
    /// at once. Otherwise the room keeps the member for `resumeGrace`, telling nobody.
    func disconnect(_ handle: ClientHandle, clean: Bool) {
        withState { $0.disconnect(handle, clean: clean) }
    }

    func handle(_ message: ClientMessage, from handle: ClientHandle) {
        if case .recordingRequest(nil, let action) = message { return askWorkers(action, from: handle) }
        withState { $0.handle(message, from: handle) }
    }

    /// `recording-request` without `to`: files (or stops) the room's recording job for the worker pool, and
    /// answers `recording-job`. The sender must be in the room and logged in (or hold a token).
    private func askWorkers(_ action: RecordingAction, from handle: ClientHandle) {
        guard let asker = withState({ $0.recordingJobAsker(handle) }) else { return }
        guard let jobs else {
            return fail(handle, .noRecorder, "recording-request: nobody records this room and this server has no recording workers (they need vcall-server on PostgreSQL); name a recording member in \"to\", or start a gateway with --record in the room")
        }
        Task { [weak self] in
            do {
                switch action {
                case .start:
                    let (job, created) = try await jobs.request(room: asker.room, composite: true, by: asker.requester)
                    if created { self?.logger.info("recording job \(job.id) for room \(asker.room), asked by \(asker.requester)") }
                    let pool = try await jobs.pool()
                    handle.send(Self.recordingJobMessage(job, pool))
                case .stop:
                    guard let job = try await jobs.stop(room: asker.room) else {
                        self?.fail(handle, .noRecorder, "recording-request: room \(asker.room) has no recording waiting or running: nothing to stop")
                        return
                    }
                    handle.send(Self.recordingJobMessage(job, nil))
                }
            } catch {
                self?.fail(handle, .unavailable, "recording-request: the database does not answer, so the recording could not be \(action == .start ? "asked for" : "stopped"): try again shortly")
            }
        }
    }

    static func recordingJobMessage(_ job: RecordingJob, _ pool: RecordingWorkerPool?) -> ServerMessage {
        .recordingJob(roomId: job.room, job: job.id, state: job.state.rawValue, part: job.part,
                      message: job.summary(pool: pool))
    }

    /// Relays an offer, answer, candidate or track map whose frame (`type`, the sender's `from`, the payload as
    /// it came) is already built: the routing rules are those of ``handle(_:from:)``.
    func relay(_ kind: RelayEnvelope.Kind, to: String?, frame: ByteBuffer, from handle: ClientHandle) {
        withState { state in
            guard state.isCurrent(handle) else { return }
            state.metrics.messagesReceived.increment()
            state.relay(from: handle.id, to: to, type: kind.rawValue) { frame }
        }
    }

    /// Sends an `error` on one connection and counts it.
    func fail(_ handle: ClientHandle, _ code: ErrorCode, _ message: String) {
        withState { $0.fail(handle, code, message) }
    }

    /// Closes every connection (graceful shutdown).
    func closeAll() {
        withState { $0.closeAll() }
    }

    func roomSummaries() -> [RoomSummary] {
        withState { $0.roomSummaries() }
    }

    /// How long presence changes are gathered into one `online-users`: 50 ms, growing with the number of
    /// users past 100 up to 250 ms at 500. Every list goes to every user, so the bytes sent per change grow
    /// with the square of the users; waiting longer when there are many keeps a burst of arrivals (everyone
    /// reconnecting after a restart) from flooding every socket with near-identical lists.
    static func presenceInterval(visibleUsers: Int) -> Duration {
        .milliseconds(min(max(visibleUsers / 2, 50), 250))
    }
}

/// The hub's state and rules, changed only under the hub's lock.
private struct State {
    struct Client {
        var handle: ClientHandle
        var name: String
        let identity: Identity?
        let sequence: Int
        /// Milliseconds since 1970: orders `online-users` across nodes.
        let connectedAt: Int64
        var roomId: String?
        /// Set while the room keeps this member for a resume.
        var hold: Hold?
    }

    /// A room membership kept, without telling the room, after the member's socket dropped: until the
    /// member resumes its id and rejoins the room, leaves it, or the grace (`resumeGrace`) ends.
    struct Hold {
        /// No socket: the old one dropped and no resume has come yet (the member is offline in presence).
        var detached: Bool
        /// Tells this hold's timer from a later hold's.
        let generation: Int
        /// Messages for the member (offer, answer, ice-candidate, media-state, user-joined, …) as text
        /// frames, delivered right after its `room-joined` when it rejoins; dropped if the grace ends.
        var pending: [ByteBuffer] = []
    }

    /// Messages held for one member in grace; later ones are dropped.
    static let pendingLimit = 256

    struct Room {
        let id: String
        let capacity: Int
        var members: [String]
        /// The member that joined with `role: relay`: every other member connects to it alone.
        var relay: String?
    }

    let configuration: VCallServerConfiguration
    let metrics: ServerMetrics
    let logger: Logger
    let resumeTokens: ResumeTokens
    private var clients: [String: Client] = [:]
    private var rooms: [String: Room] = [:]
    private var sequence = 0
    private var presenceScheduled = false
    private var holdGeneration = 0

    // MARK: other nodes (when `node` is set)

    /// This node's id on the shared database; nil on a server of its own.
    let node: String?
    /// Clients of other nodes, as they announced them. Their ids are in `rooms` like local ones.
    private var remote: [String: ClusterMember] = [:]
    /// The hold (resume grace) of a remote client whose node died, by generation.
    private var remoteHolds: [String: Int] = [:]
    /// Local clients whose record the other nodes must hear of, in order of change.
    private var changed: [String] = []
    /// Messages for clients of other nodes, in order.
    private var outgoing: [ClusterEvent] = []
    /// Nodes that asked for this node's clients (`hello`), or `everyNode`.
    var snapshotRequests: [String] = []
    static let everyNode = ""

    /// Something to do to the state later (a hold's end, a presence broadcast); the hub starts it.
    struct Timer {
        let delay: Duration
        let fire: @Sendable (inout State) -> Void
    }

    /// Timers asked for under the lock, started by the hub once it is released.
    var timers: [Timer] = []

    init(configuration: VCallServerConfiguration, metrics: ServerMetrics, logger: Logger, resumeTokens: ResumeTokens, node: String?) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.resumeTokens = resumeTokens
        self.node = node
    }

    // MARK: connections

    /// Registers a connection, sends it `welcome` (with its resume token) and everyone `online-users`.
    ///
    /// `resuming` is the id of a valid resume token. The connection takes that id: it inherits the id's
    /// name and room membership when the id is still known (a member in its grace, or a half-open socket,
    /// which is closed without telling anyone), or starts afresh under it (after a server restart, or once
    /// the grace is over). An id held by other credentials is not handed over: the connection gets a new id.
    mutating func connect(
        channel: any Channel, closeObserver: CloseCodeObserver?, name: String, identity: Identity?, resuming: String?
    ) -> ClientHandle {
        var id = RandomToken.hex(byteCount: 12)
        var inherited: Client?
        if let resuming {
            if let existing = clients[resuming], existing.identity != identity {
                logger.debug("resume refused: the id belongs to other credentials", metadata: ["peer": "\(resuming)"])
            } else if let member = remote[resuming], member.identity != identity {
                logger.debug("resume refused: the id belongs to other credentials (on node \(member.node))", metadata: ["peer": "\(resuming)"])
            } else {
                id = resuming
                inherited = clients[resuming]
            }
        }
        touch(id)
        let handle = ClientHandle(id: id, channel: channel, closeObserver: closeObserver)
        if inherited == nil, let member = remote.removeValue(forKey: id) {
            // The id was on another node (whose socket dropped, or which died): it moves here with its room,
            // which never sees it leave; that node hears of it from this node's record and lets go of it.
            remoteHolds[id] = nil
            sequence += 1
            clients[id] = Client(
                handle: handle, name: member.name, identity: identity, sequence: sequence, connectedAt: member.connectedAt, roomId: member.roomId
            )
            if let roomId = member.roomId {
                if member.relay || configuration.resumeGrace == .zero {
                    clients[id]?.roomId = nil
                    leave(id, roomId: roomId)
                } else {
                    var hold = startHold(id)
                    hold.detached = false
                    clients[id]?.hold = hold
                }
            }
            logger.debug("resumed from node \(member.node)", metadata: ["peer": "\(id)", "room": "\(member.roomId ?? "-")"])
        } else if var client = inherited {
            let previous = client.handle
            client.handle = handle
            clients[id] = client
            if let roomId = client.roomId, rooms[roomId]?.relay == id {
                // A relay's socket ending, this way too, takes it out of its room at once: it comes back as a newcomer.
                removeFromRoom(id)
            } else if client.roomId != nil {
                if configuration.resumeGrace > .zero {
                    // Held until it sends join-room for its room (or the grace ends).
                    if clients[id]?.hold == nil {
                        let hold = startHold(id)
                        clients[id]?.hold = hold
                    }
                    clients[id]?.hold?.detached = false
                } else {
                    removeFromRoom(id)
                }
            }
            // A half-open socket of the same id: close it; its end is not reported to anyone.
            previous.close()
            logger.debug("resumed", metadata: ["peer": "\(id)", "room": "\(client.roomId ?? "-")"])
        } else {
            sequence += 1
            clients[id] = Client(handle: handle, name: name, identity: identity, sequence: sequence, connectedAt: nowMilliseconds(), roomId: nil)
            logger.debug(
                "connected",
                metadata: ["peer": "\(id)", "name": "\(name)", "authenticated": "\(identity != nil)", "resumed": "\(resuming != nil)"]
            )
        }
        updateConnectionGauge()
        handle.send(.welcome(
            id: id, name: clients[id]?.name ?? name, iceServers: configuration.iceServers(for: id), resumeToken: resumeTokens.token(for: id)
        ))
        broadcastPresence()
        return handle
    }

    /// A socket ended. `clean` means the client closed it with code 1000 or 1001: the member leaves its room
    /// at once. Otherwise the room keeps the member for `resumeGrace`, telling nobody.
    mutating func disconnect(_ handle: ClientHandle, clean: Bool) {
        let id = handle.id
        // A socket whose id a resume took over is gone without a trace.
        guard let client = clients[id], client.handle === handle else { return }
        touch(id)
        // The relay is never held: its members must fall back to a mesh at once, not after the grace.
        let isRelay = client.roomId.flatMap { rooms[$0]?.relay } == id
        if !clean, client.roomId != nil, configuration.resumeGrace > .zero, !isRelay {
            if client.hold == nil {
                let hold = startHold(id)
                clients[id]?.hold = hold
            }
            clients[id]?.hold?.detached = true
            logger.debug("socket dropped: the room keeps the member for a resume", metadata: ["peer": "\(id)", "room": "\(client.roomId ?? "-")"])
        } else {
            removeFromRoom(id)
            clients[id] = nil
            logger.debug("disconnected", metadata: ["peer": "\(id)", "clean": "\(clean)"])
        }
        updateConnectionGauge()
        broadcastPresence()
    }

    /// Starts the grace timer of a new hold.
    private mutating func startHold(_ id: String) -> Hold {
        holdGeneration += 1
        let generation = holdGeneration
        timers.append(Timer(delay: configuration.resumeGrace) { $0.expireHold(id, generation: generation) })
        return Hold(detached: true, generation: generation)
    }

    /// The grace is over and the member has not rejoined: the room is told it left.
    private mutating func expireHold(_ id: String, generation: Int) {
        guard let hold = clients[id]?.hold, hold.generation == generation else { return }
        touch(id)
        logger.debug("no resume within the grace: the member leaves its room", metadata: ["peer": "\(id)"])
        removeFromRoom(id)
        if hold.detached {
            clients[id] = nil
            updateConnectionGauge()
        }
        broadcastPresence()
    }

    private mutating func updateConnectionGauge() {
        metrics.connections.set(Double(clients.values.filter { $0.hold?.detached != true }.count))
    }

    /// Closes every connection (graceful shutdown).
    func closeAll() {
        for client in clients.values { client.handle.close() }
    }

    /// The room and the name of a client asking the recording workers; nil (having told it why) when it is in no
    /// room or not logged in.
    mutating func recordingJobAsker(_ handle: ClientHandle) -> (room: String, requester: String)? {
        guard isCurrent(handle), let client = clients[handle.id] else { return nil }
        metrics.messagesReceived.increment()
        guard let room = client.roomId else {
            fail(handle.id, .notInRoom, "recording-request: join the room you want recorded first")
            return nil
        }
        guard let identity = client.identity else {
            fail(handle.id, .unauthorized, "recording-request: asking the recording workers needs a login or an API token (the recordings are for the accounts that were in the room)")
            return nil
        }
        return (room, identity.username ?? identity.name)
    }

    func roomSummaries() -> [RoomSummary] {
        rooms.values.sorted { $0.id < $1.id }.map { room in
            // Names only: accounts are for the room's members (a recorder lists them), not for anyone asking.
            RoomSummary(roomId: room.id, capacity: room.capacity, relay: room.relay,
                        members: room.members.compactMap(peerInfo).map { PeerInfo(id: $0.id, name: $0.name) })
        }
    }

    // MARK: messages

    mutating func handle(_ message: ClientMessage, from handle: ClientHandle) {
        let id = handle.id
        guard isCurrent(handle), let client = clients[id] else { return }
        metrics.messagesReceived.increment()
        switch message {
        case .joinRoom(let roomId, let name, let capacity, let role):
            guard authorized(client) else { return }
            if role == .relay {
                guard mayRelay(client, roomId: roomId) else { return }
            }
            join(id, roomId: roomId, name: name.flatMap(SignalingLimits.normalizedName), capacity: capacity, asRelay: role == .relay)

        case .leaveRoom:
            guard client.roomId != nil else {
                return fail(id, .notInRoom, "leave-room: you are not in a room")
            }
            removeFromRoom(id)
            broadcastPresence()

        case .offer(let to, let offer):
            relay(from: id, to: to, type: "offer") { Self.frame(.offer(from: id, offer: offer)) }
        case .answer(let to, let answer):
            relay(from: id, to: to, type: "answer") { Self.frame(.answer(from: id, answer: answer)) }
        case .iceCandidate(let to, let candidate):
            relay(from: id, to: to, type: "ice-candidate") { Self.frame(.iceCandidate(from: id, candidate: candidate)) }
        case .trackMap(let to, let tracks):
            relay(from: id, to: to, type: "track-map") { Self.frame(.trackMap(from: id, tracks: tracks)) }

        case .call(let to, let roomId):
            guard authorized(client), let target = onlinePeer(to, from: id, type: "call") else { return }
            deliver(.incomingCall(from: id, name: client.name, roomId: roomId), to: target, from: id)
        case .callAccept(let to):
            guard authorized(client), let target = onlinePeer(to, from: id, type: "call-accept") else { return }
            deliver(.callAccepted(from: id), to: target, from: id)
        case .callReject(let to):
            guard authorized(client), let target = onlinePeer(to, from: id, type: "call-reject") else { return }
            deliver(.callRejected(from: id), to: target, from: id)
        case .hangup(let to):
            guard authorized(client) else { return }
            if let to {
                guard let target = onlinePeer(to, from: id, type: "hangup") else { return }
                deliver(.hangup(from: id), to: target, from: id)
            } else {
                guard let roomId = client.roomId, let room = rooms[roomId] else {
                    return fail(id, .invalidMessage, "hangup: \"to\" is required when you are not in a room: name the user you are calling")
                }
                let others = room.members.filter { $0 != id }
                guard others.count == 1 else {
                    return fail(id, .invalidMessage, "hangup: \"to\" is required unless the room holds exactly two members")
                }
                deliver(.hangup(from: id), to: others[0], from: id)
            }

        case .mediaState(let state):
            toOthersInRoom(from: id, type: "media-state", .mediaState(from: id, state: state))

        case .recordingRequest(let to, let action):
            // Without `to` the workers are asked: `SignalingHub.handle` takes those before they reach here.
            relay(from: id, to: to, type: "recording-request") { Self.frame(.recordingRequest(from: id, action: action)) }
        case .recordingState(let recording):
            toOthersInRoom(from: id, type: "recording-state", .recordingState(from: id, recording: recording))
        }
    }

    /// Sends `message` (framed once) to every other member of the sender's room; outside a room the sender
    /// gets `not-in-room`.
    private mutating func toOthersInRoom(from id: String, type: String, _ message: ServerMessage) {
        guard let roomId = clients[id]?.roomId, let room = rooms[roomId] else {
            return fail(id, .notInRoom, "\(type): join a room first")
        }
        let frame = Self.frame(message)
        for member in room.members where member != id {
            deliver(frame, to: member, from: id)
        }
    }

    /// Messages still arriving on a socket that a resume replaced are ignored.
    func isCurrent(_ handle: ClientHandle) -> Bool {
        clients[handle.id]?.handle === handle
    }

    /// Sends an `error` to one client and counts it.
    mutating func fail(_ id: String, _ code: ErrorCode, _ message: String) {
        metrics.countError(code)
        clients[id]?.handle.send(.error(code: code, message: message))
    }

    /// Sends an `error` on one connection and counts it.
    mutating func fail(_ handle: ClientHandle, _ code: ErrorCode, _ message: String) {
        metrics.countError(code)
        handle.send(.error(code: code, message: message))
    }

    // MARK: rooms

    /// Whether a client may join `roomId` as its relay; sends `unauthorized` or `relay-taken` when not.
    private mutating func mayRelay(_ client: Client, roomId: String) -> Bool {
        let id = client.handle.id
        guard client.identity?.credential == .apiToken else {
            fail(
                id, .unauthorized,
                "join-room: the relay role needs an API token, since the relay sees everyone's media: make one with `vcall-server token create NAME` (or POST /api/tokens when logged in) and connect with Authorization: Bearer TOKEN or /ws?token=TOKEN"
            )
            return false
        }
        if let relay = rooms[roomId]?.relay, relay != id {
            let name = peerInfo(relay)?.name ?? relay
            fail(
                id, .relayTaken,
                "join-room: room \(roomId) already has a relay, \(name) (\(relay)): a room has one relay; join without role, or wait until it leaves"
            )
            return false
        }
        return true
    }

    private mutating func join(_ id: String, roomId: String, name: String?, capacity: Int?, asRelay: Bool) {
        guard var client = clients[id] else { return }
        touch(id)
        let renamed = name != nil && name != client.name
        if let name, renamed {
            client.name = name
            clients[id] = client
        }
        if client.roomId == roomId, var room = rooms[roomId] {
            // Joining the room one is in again just repeats room-joined. This is also how a resumed member
            // comes back: the others never saw it leave, so they are told nothing; what was held for it follows.
            // The role is the one asked for now: a member may take the free relay role, and the relay may drop it.
            let relayBefore = room.relay
            if asRelay {
                room.relay = id
            } else if room.relay == id {
                room.relay = nil
            }
            rooms[roomId] = room
            client.handle.send(.roomJoined(
                roomId: roomId,
                self: PeerInfo(id: id, name: client.name, account: client.identity?.username),
                peers: room.members.filter { $0 != id }.compactMap(peerInfo),
                capacity: room.capacity,
                relay: room.relay
            ))
            if let hold = client.hold {
                clients[id]?.hold = nil
                for frame in hold.pending { client.handle.send(frame) }
                logger.debug("rejoined after a resume", metadata: ["peer": "\(id)", "room": "\(roomId)", "held": "\(hold.pending.count)"])
            }
            if room.relay != relayBefore {
                for member in room.members where member != id {
                    notifyLocal(.relayChanged(relay: room.relay), to: member)
                }
                logger.debug("relay role changed", metadata: ["peer": "\(id)", "room": "\(roomId)", "relay": "\(room.relay ?? "none")"])
            }
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
        if asRelay { room.relay = id }
        rooms[roomId] = room
        clients[id]?.roomId = roomId
        updateRoomGauges()
        client.handle.send(.roomJoined(
            roomId: roomId, self: PeerInfo(id: id, name: client.name, account: client.identity?.username), peers: peers, capacity: room.capacity, relay: room.relay
        ))
        notifyJoined(id, name: client.name, account: client.identity?.username, room: room, asRelay: asRelay)
        logger.debug("joined", metadata: ["peer": "\(id)", "room": "\(roomId)", "members": "\(room.members.count)", "relay": "\(asRelay)"])
        broadcastPresence()
    }

    /// Takes a client out of its room and tells the others; the caller updates presence.
    private mutating func removeFromRoom(_ id: String) {
        guard let roomId = clients[id]?.roomId else { return }
        touch(id)
        clients[id]?.roomId = nil
        clients[id]?.hold = nil
        leave(id, roomId: roomId)
    }

    /// Takes a member (local or of another node) out of `roomId`, telling this node's other members; each node
    /// tells its own.
    private mutating func leave(_ id: String, roomId: String) {
        guard var room = rooms[roomId] else { return }
        room.members.removeAll { $0 == id }
        let wasRelay = room.relay == id
        if wasRelay { room.relay = nil }
        if room.members.isEmpty {
            rooms[roomId] = nil
        } else {
            rooms[roomId] = room
            for member in room.members {
                notifyLocal(.userDisconnected(from: id), to: member)
                // After user-disconnected: the members go back to a mesh.
                if wasRelay { notifyLocal(.relayChanged(relay: nil), to: member) }
            }
        }
        updateRoomGauges()
        logger.debug("left", metadata: ["peer": "\(id)", "room": "\(roomId)"])
    }

    /// Tells this node's members of `room` that `id` joined it (and, right after, that it is the relay, so
    /// a member knows the newcomer before it learns it is the relay).
    private mutating func notifyJoined(_ id: String, name: String, account: String?, room: Room, asRelay: Bool) {
        for member in room.members where member != id {
            notifyLocal(.userJoined(from: id, name: name, roomUsers: room.members, account: account), to: member)
            if asRelay { notifyLocal(.relayChanged(relay: id), to: member) }
        }
    }

    /// Room news for a member of this node; a member of another node hears it from its own node.
    private mutating func notifyLocal(_ message: ServerMessage, to id: String) {
        guard clients[id] != nil else { return }
        deliver(message, to: id, counted: false)
    }

    private mutating func updateRoomGauges() {
        metrics.rooms.set(Double(rooms.count))
        metrics.roomMembers.set(Double(rooms.values.reduce(0) { $0 + $1.members.count }))
    }

    // MARK: routing

    /// Routes offer/answer/ice-candidate/track-map inside the sender's room; `frame` makes the message once the
    /// target is known.
    mutating func relay(from id: String, to: String?, type: String, _ frame: () -> ByteBuffer) {
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
        deliver(frame(), to: target, from: id)
    }

    /// An online user another one may call, or nil after sending `unknown-peer`.
    private mutating func onlinePeer(_ to: String, from id: String, type: String) -> String? {
        let online = clients[to].map(visibleInPresence) ?? remote[to]?.visible ?? false
        guard to != id, online else {
            fail(id, .unknownPeer, "\(type): no online user has id \"\(to.prefix(64))\": pick one from online-users")
            return nil
        }
        return to
    }

    /// Sends a message to a client, or holds it while the client's room membership is held for a resume.
    private mutating func deliver(_ message: ServerMessage, to id: String, counted: Bool = true, from: String? = nil) {
        deliver(Self.frame(message), to: id, counted: counted, from: from)
    }

    /// A client of another node gets the frame through the outbox; `from` hears if it cannot be delivered.
    private mutating func deliver(_ frame: ByteBuffer, to id: String, counted: Bool = true, from: String? = nil) {
        guard let client = clients[id] else {
            if remote[id] != nil {
                if counted { metrics.messagesRelayed.increment() }
                outgoing.append(.frame(to: id, from: from, text: String(buffer: frame)))
            }
            return
        }
        if counted { metrics.messagesRelayed.increment() }
        guard let hold = client.hold else { return client.handle.send(frame) }
        guard hold.pending.count < Self.pendingLimit else {
            logger.debug("dropping a message for a member in its grace: too many held", metadata: ["peer": "\(id)"])
            return
        }
        clients[id]?.hold?.pending.append(frame)
    }

    private static func frame(_ message: ServerMessage) -> ByteBuffer {
        ByteBuffer(string: message.jsonString())
    }

    private mutating func authorized(_ client: Client) -> Bool {
        guard configuration.requireLogin, client.identity == nil else { return true }
        fail(
            client.handle.id, .unauthorized,
            "this server requires login: log in to the web app, or connect with an API token (Authorization: Bearer TOKEN or /ws?token=TOKEN)"
        )
        return false
    }

    // MARK: presence

    /// Whether a client is listed in `online-users` (and may be called): not while its socket is gone.
    private func visibleInPresence(_ client: Client) -> Bool {
        client.hold?.detached != true && (!configuration.requireLogin || client.identity != nil)
    }

    private func peerInfo(_ id: String) -> PeerInfo? {
        if let client = clients[id] { return PeerInfo(id: id, name: client.name, account: client.identity?.username) }
        return remote[id].map { PeerInfo(id: id, name: $0.name, account: $0.username) }
    }

    /// Schedules `online-users` for every client that may see it.
    ///
    /// Changes within `presenceInterval` are coalesced into one message, so a client that joins and
    /// leaves in a loop cannot make the server flood everyone else.
    private mutating func broadcastPresence() {
        guard !presenceScheduled else { return }
        presenceScheduled = true
        let visible = clients.values.count(where: visibleInPresence) + remote.values.count(where: \.visible)
        timers.append(Timer(delay: SignalingHub.presenceInterval(visibleUsers: visible)) { $0.flushPresence() })
    }

    private mutating func flushPresence() {
        presenceScheduled = false
        let visible = clients.values.filter(visibleInPresence)
        // Every node's users, in the order they connected.
        var listed = visible.map { (at: $0.connectedAt, sequence: $0.sequence, user: OnlineUser(id: $0.handle.id, name: $0.name, inCall: $0.roomId != nil)) }
        listed += remote.values.filter(\.visible).map { (at: $0.connectedAt, sequence: Int.max, user: OnlineUser(id: $0.id, name: $0.name, inCall: $0.roomId != nil)) }
        listed.sort { ($0.at, $0.sequence, $0.user.id) < ($1.at, $1.sequence, $1.user.id) }
        // One buffer for everyone: each client's queue shares it.
        let frame = ByteBuffer(string: ServerMessage.onlineUsers(users: listed.map(\.user)).jsonString())
        for client in visible {
            client.handle.send(frame)
        }
    }
}

// MARK: - other nodes

extension State {
    /// A local client's record changed: the other nodes hear of it when the hub's lock is released.
    fileprivate mutating func touch(_ id: String) {
        guard node != nil, !changed.contains(id) else { return }
        changed.append(id)
    }

    /// What the other nodes must hear of this call under the lock: the records that changed, then the messages.
    mutating func takeClusterEvents() -> [ClusterEvent] {
        guard let node, !(changed.isEmpty && outgoing.isEmpty) else { return [] }
        var events = changed.map { id in memberRecord(id).map(ClusterEvent.member) ?? .gone(id: id, node: node) }
        events += outgoing
        changed = []
        outgoing = []
        return events
    }

    /// Every local client's record (a `snapshot` for a node that said `hello`).
    func localMembers() -> [ClusterMember] {
        clients.keys.sorted().compactMap(memberRecord)
    }

    private func memberRecord(_ id: String) -> ClusterMember? {
        guard let node, let client = clients[id] else { return nil }
        let room = client.roomId.flatMap { rooms[$0] }
        return ClusterMember(
            id: id, node: node, name: client.name, identity: client.identity, roomId: client.roomId, capacity: room?.capacity,
            relay: room?.relay == id, visible: visibleInPresence(client), connectedAt: client.connectedAt
        )
    }

    /// The other nodes' events, in the outbox's order.
    mutating func apply(_ events: [ClusterEvent]) {
        // Only a change of who is online makes a new `online-users`: a run of frames must not send every client the
        // whole list again (it did, every 50–250 ms while messages crossed, and took most of the nodes' CPU).
        var presenceChanged = false
        for event in events {
            switch event {
            case .member(let member):
                applyMember(member)
                presenceChanged = true
            case .gone(let id, let node):
                if remote[id]?.node == node { removeRemote(id) }
                presenceChanged = true
            case .frame(let to, _, let text):
                // Not here (any more): the client moved on or left; its new node got nothing, as a peer that left.
                guard clients[to] != nil else { continue }
                deliver(ByteBuffer(string: text), to: to, counted: false)
            case .hello(let other):
                snapshotRequests.append(other)
            case .snapshot(let other, let members):
                let present = Set(members.map(\.id))
                for (id, member) in remote where member.node == other && !present.contains(id) {
                    removeRemote(id)
                }
                for member in members { applyMember(member) }
                presenceChanged = true
            }
        }
        if presenceChanged { broadcastPresence() }
    }

    private mutating func applyMember(_ member: ClusterMember) {
        guard member.node != node else { return }
        let id = member.id
        var roomBefore: String?
        var wasRelay = false
        if let local = clients[id] {
            // A resume moved this id to another node: it leaves here without a word, its room never sees it go.
            roomBefore = local.roomId
            wasRelay = roomBefore.flatMap { rooms[$0]?.relay } == id
            clients[id] = nil
            changed.removeAll { $0 == id }
            local.handle.close()
            updateConnectionGauge()
            logger.debug("moved to node \(member.node)", metadata: ["peer": "\(id)"])
        } else if let known = remote[id] {
            roomBefore = known.roomId
            wasRelay = known.relay
        }
        remoteHolds[id] = nil
        remote[id] = member
        if roomBefore != member.roomId {
            if let roomBefore { leave(id, roomId: roomBefore) }
            if let roomId = member.roomId {
                var room = rooms[roomId] ?? Room(id: roomId, capacity: member.capacity ?? configuration.roomCapacity, members: [])
                if !room.members.contains(id) { room.members.append(id) }
                if member.relay { room.relay = id }
                rooms[roomId] = room
                updateRoomGauges()
                notifyJoined(id, name: member.name, account: member.username, room: room, asRelay: member.relay)
            }
        } else if let roomId = member.roomId, wasRelay != member.relay, var room = rooms[roomId] {
            if member.relay {
                room.relay = id
            } else if room.relay == id {
                room.relay = nil
            }
            rooms[roomId] = room
            for other in room.members where other != id {
                notifyLocal(.relayChanged(relay: room.relay), to: other)
            }
        }
    }

    private mutating func removeRemote(_ id: String) {
        guard let member = remote.removeValue(forKey: id) else { return }
        remoteHolds[id] = nil
        if let roomId = member.roomId { leave(id, roomId: roomId) }
    }

    /// A node stopped heartbeating: its clients are as if their sockets had dropped. Those in a room are kept
    /// for the resume grace (offline in presence), so one that reconnects to a node keeps its id and room.
    mutating func nodeDied(_ dead: String) {
        for (id, member) in remote where member.node == dead {
            guard member.roomId != nil, configuration.resumeGrace > .zero, !member.relay else {
                removeRemote(id)
                continue
            }
            remote[id]?.visible = false
            holdGeneration += 1
            let generation = holdGeneration
            remoteHolds[id] = generation
            timers.append(Timer(delay: configuration.resumeGrace) { state in
                guard state.remoteHolds[id] == generation else { return }
                state.removeRemote(id)
                state.broadcastPresence()
            })
        }
        broadcastPresence()
    }

    /// Messages the other nodes never got (the database was unreachable): their senders are told.
    mutating func undeliverable(_ events: [ClusterEvent]) {
        var told: Set<String> = []
        for case .frame(let to, let from?, _) in events where clients[from] != nil && !told.contains(from) {
            told.insert(from)
            fail(from, .undeliverable, "a message to \(to) (on another server node) could not be passed on: the server's database was unreachable; send it again in a few seconds")
        }
    }
}
