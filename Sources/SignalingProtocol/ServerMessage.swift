import Foundation
import WebRTCTypes

/// A message the server sends to a client.
///
/// ```swift
/// let frame = ServerMessage.fullRoom(roomId: "standup").jsonString()
/// // {"roomId":"standup","type":"full-room"}
/// let decoded = try JSONDecoder().decode(ServerMessage.self, from: Data(frame.utf8))
/// ```
public enum ServerMessage: Sendable, Equatable {
    /// `welcome {id, name, iceServers, resumeToken}`: the first message on every connection.
    ///
    /// `resumeToken` (opaque) lets a client that lost its socket reconnect with `/ws?resume=TOKEN` and
    /// keep its id; nil from servers that predate it.
    case welcome(id: String, name: String, iceServers: [RTCIceServer], resumeToken: String?)
    /// `room-joined {roomId, self: {id, name}, peers: [{id, name}], capacity, relay}` to the member who joined.
    ///
    /// `relay` is the room's relay (the receiver's own id when it joined as the relay), nil when the room
    /// has none; it is always written, as `null` when nil.
    case roomJoined(roomId: String, self: PeerInfo, peers: [PeerInfo], capacity: Int, relay: String? = nil)
    /// `user-joined {from, name, roomUsers, account?}` to the other members; `roomUsers` lists every member, the
    /// new one included; `account` is the newcomer's username when it is logged in.
    case userJoined(from: String, name: String, roomUsers: [String], account: String? = nil)
    /// `user-disconnected {from}` when a member leaves the room or its socket closes.
    case userDisconnected(from: String)
    /// `full-room {roomId}`: the room is at capacity; nothing changed.
    case fullRoom(roomId: String)
    /// Relayed `offer {from, offer}`.
    case offer(from: String, offer: RTCSessionDescriptionInit)
    /// Relayed `answer {from, answer}`.
    case answer(from: String, answer: RTCSessionDescriptionInit)
    /// Relayed `ice-candidate {from, candidate}`; `nil` = end of candidates.
    case iceCandidate(from: String, candidate: RTCIceCandidateInit?)
    /// `online-users {users}` to every connected client on every presence change.
    case onlineUsers(users: [OnlineUser])
    /// `incoming-call {from, name, roomId}`
    case incomingCall(from: String, name: String, roomId: String)
    /// `call-accepted {from}`
    case callAccepted(from: String)
    /// `call-rejected {from}`
    case callRejected(from: String)
    /// `hangup {from}`
    case hangup(from: String)
    /// `media-state {from, audio, video, screen}` to the other members of the room.
    case mediaState(from: String, state: MediaState)
    /// `relay-changed {relay}` to the other members when a relay joins the room (right after its
    /// `user-joined`) or leaves it (right after its `user-disconnected`, with `relay` nil, written as `null`).
    case relayChanged(relay: String?)
    /// Relayed `track-map {from, tracks}`: whose media each m-line of the relay's next offer carries.
    case trackMap(from: String, tracks: [TrackMapEntry])
    /// Relayed `recording-request {from, action}` to the recording member it names.
    case recordingRequest(from: String, action: RecordingAction)
    /// `recording-state {from, recording}` to the other members of the room.
    case recordingState(from: String, recording: Bool)
    /// `recording-job {roomId, job, state, part, message}`: the server's answer to a `recording-request` without
    /// `to`: the room's recording job, its state (`waiting`, `recording`, `done`, `cancelled`, `failed`), the part
    /// its worker records, and what it is doing in words (why it waits).
    case recordingJob(roomId: String, job: Int, state: String, part: Int, message: String)
    /// `error {code, message}`; the connection stays open.
    case error(code: ErrorCode, message: String)

    /// The message's `type`.
    public var type: String {
        switch self {
        case .welcome: "welcome"
        case .roomJoined: "room-joined"
        case .userJoined: "user-joined"
        case .userDisconnected: "user-disconnected"
        case .fullRoom: "full-room"
        case .offer: "offer"
        case .answer: "answer"
        case .iceCandidate: "ice-candidate"
        case .onlineUsers: "online-users"
        case .incomingCall: "incoming-call"
        case .callAccepted: "call-accepted"
        case .callRejected: "call-rejected"
        case .hangup: "hangup"
        case .mediaState: "media-state"
        case .relayChanged: "relay-changed"
        case .trackMap: "track-map"
        case .recordingRequest: "recording-request"
        case .recordingState: "recording-state"
        case .recordingJob: "recording-job"
        case .error: "error"
        }
    }

    /// The message as one JSON text frame.
    public func jsonString() -> String {
        jsonText(self)
    }

    /// Decodes a frame received from the server.
    public static func decode(_ text: String) throws -> ServerMessage {
        try JSONDecoder().decode(ServerMessage.self, from: Data(text.utf8))
    }
}

extension ServerMessage: Codable {
    enum Keys: String, CodingKey {
        case type, id, name, iceServers, resumeToken, roomId, `self`, peers, capacity, relay, from, roomUsers, account
        case offer, answer, candidate, users, audio, video, screen, tracks, code, message, action, recording
        case job, state, part
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let type = try c.decode(String.self, forKey: .type)
        func from() throws -> String { try c.decode(String.self, forKey: .from) }
        switch type {
        case "welcome":
            self = .welcome(
                id: try c.decode(String.self, forKey: .id),
                name: try c.decode(String.self, forKey: .name),
                iceServers: try c.decodeIfPresent([RTCIceServer].self, forKey: .iceServers) ?? [],
                resumeToken: try c.decodeIfPresent(String.self, forKey: .resumeToken)
            )
        case "room-joined":
            self = .roomJoined(
                roomId: try c.decode(String.self, forKey: .roomId),
                self: try c.decode(PeerInfo.self, forKey: .self),
                peers: try c.decode([PeerInfo].self, forKey: .peers),
                capacity: try c.decodeIfPresent(Int.self, forKey: .capacity) ?? SignalingLimits.defaultRoomCapacity,
                relay: try c.decodeIfPresent(String.self, forKey: .relay)
            )
        case "user-joined":
            self = .userJoined(
                from: try from(),
                name: try c.decode(String.self, forKey: .name),
                roomUsers: try c.decode([String].self, forKey: .roomUsers),
                account: try c.decodeIfPresent(String.self, forKey: .account)
            )
        case "user-disconnected":
            self = .userDisconnected(from: try from())
        case "full-room":
            self = .fullRoom(roomId: try c.decode(String.self, forKey: .roomId))
        case "offer":
            self = .offer(from: try from(), offer: try c.decode(RTCSessionDescriptionInit.self, forKey: .offer))
        case "answer":
            self = .answer(from: try from(), answer: try c.decode(RTCSessionDescriptionInit.self, forKey: .answer))
        case "ice-candidate":
            self = .iceCandidate(from: try from(), candidate: try c.decodeIfPresent(RTCIceCandidateInit.self, forKey: .candidate))
        case "online-users":
            self = .onlineUsers(users: try c.decode([OnlineUser].self, forKey: .users))
        case "incoming-call":
            self = .incomingCall(
                from: try from(),
                name: try c.decode(String.self, forKey: .name),
                roomId: try c.decode(String.self, forKey: .roomId)
            )
        case "call-accepted":
            self = .callAccepted(from: try from())
        case "call-rejected":
            self = .callRejected(from: try from())
        case "hangup":
            self = .hangup(from: try from())
        case "media-state":
            self = .mediaState(from: try from(), state: MediaState(
                audio: try c.decode(Bool.self, forKey: .audio),
                video: try c.decode(Bool.self, forKey: .video),
                screen: try c.decode(Bool.self, forKey: .screen)
            ))
        case "relay-changed":
            self = .relayChanged(relay: try c.decodeIfPresent(String.self, forKey: .relay))
        case "track-map":
            self = .trackMap(from: try from(), tracks: try c.decode([TrackMapEntry].self, forKey: .tracks))
        case "recording-request":
            self = .recordingRequest(from: try from(), action: try c.decode(RecordingAction.self, forKey: .action))
        case "recording-state":
            self = .recordingState(from: try from(), recording: try c.decode(Bool.self, forKey: .recording))
        case "recording-job":
            self = .recordingJob(
                roomId: try c.decode(String.self, forKey: .roomId), job: try c.decode(Int.self, forKey: .job),
                state: try c.decode(String.self, forKey: .state), part: try c.decode(Int.self, forKey: .part),
                message: try c.decode(String.self, forKey: .message)
            )
        case "error":
            self = .error(code: try c.decode(ErrorCode.self, forKey: .code), message: try c.decode(String.self, forKey: .message))
        default:
            throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown server message type \(type)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(type, forKey: .type)
        switch self {
        case .welcome(let id, let name, let iceServers, let resumeToken):
            try c.encode(id, forKey: .id)
            try c.encode(name, forKey: .name)
            try c.encode(iceServers, forKey: .iceServers)
            try c.encodeIfPresent(resumeToken, forKey: .resumeToken)
        case .roomJoined(let roomId, let me, let peers, let capacity, let relay):
            try c.encode(roomId, forKey: .roomId)
            try c.encode(me, forKey: .self)
            try c.encode(peers, forKey: .peers)
            try c.encode(capacity, forKey: .capacity)
            // Always present: null says the room has no relay.
            try c.encode(relay, forKey: .relay)
        case .userJoined(let from, let name, let roomUsers, let account):
            try c.encode(from, forKey: .from)
            try c.encode(name, forKey: .name)
            try c.encode(roomUsers, forKey: .roomUsers)
            try c.encodeIfPresent(account, forKey: .account)
        case .userDisconnected(let from), .callAccepted(let from), .callRejected(let from), .hangup(let from):
            try c.encode(from, forKey: .from)
        case .fullRoom(let roomId):
            try c.encode(roomId, forKey: .roomId)
        case .offer(let from, let offer):
            try c.encode(from, forKey: .from)
            try c.encode(offer, forKey: .offer)
        case .answer(let from, let answer):
            try c.encode(from, forKey: .from)
            try c.encode(answer, forKey: .answer)
        case .iceCandidate(let from, let candidate):
            try c.encode(from, forKey: .from)
            try c.encode(candidate, forKey: .candidate)
        case .onlineUsers(let users):
            try c.encode(users, forKey: .users)
        case .incomingCall(let from, let name, let roomId):
            try c.encode(from, forKey: .from)
            try c.encode(name, forKey: .name)
            try c.encode(roomId, forKey: .roomId)
        case .mediaState(let from, let state):
            try c.encode(from, forKey: .from)
            try c.encode(state.audio, forKey: .audio)
            try c.encode(state.video, forKey: .video)
            try c.encode(state.screen, forKey: .screen)
        case .relayChanged(let relay):
            try c.encode(relay, forKey: .relay)
        case .trackMap(let from, let tracks):
            try c.encode(from, forKey: .from)
            try c.encode(tracks, forKey: .tracks)
        case .recordingRequest(let from, let action):
            try c.encode(from, forKey: .from)
            try c.encode(action, forKey: .action)
        case .recordingState(let from, let recording):
            try c.encode(from, forKey: .from)
            try c.encode(recording, forKey: .recording)
        case .recordingJob(let roomId, let job, let state, let part, let message):
            try c.encode(roomId, forKey: .roomId)
            try c.encode(job, forKey: .job)
            try c.encode(state, forKey: .state)
            try c.encode(part, forKey: .part)
            try c.encode(message, forKey: .message)
        case .error(let code, let message):
            try c.encode(code, forKey: .code)
            try c.encode(message, forKey: .message)
        }
    }
}
