import Foundation
import WebRTCTypes

/// A message a client sends to the server.
///
/// Parse a text frame with ``ClientMessage/parse(_:)``, which reports every problem as a
/// ``SignalingError`` carrying the protocol's error code:
///
/// ```swift
/// let message = try ClientMessage.parse(Array(#"{"type":"join-room","roomId":"standup"}"#.utf8))
/// // .joinRoom(roomId: "standup", name: nil, capacity: nil, role: nil)
/// ```
///
/// A `from` field sent by a client is ignored: the server stamps the true sender itself.
public enum ClientMessage: Sendable, Equatable {
    /// `join-room {roomId, name?, capacity?, role?}`; `capacity` only counts when the room is created;
    /// `role: .relay` joins as the room's relay (the connection needs an API token).
    case joinRoom(roomId: String, name: String?, capacity: Int?, role: JoinRole? = nil)
    /// `leave-room {}`
    case leaveRoom
    /// `offer {to?, offer: {type, sdp}}`
    case offer(to: String?, offer: RTCSessionDescriptionInit)
    /// `answer {to?, answer: {type, sdp}}`
    case answer(to: String?, answer: RTCSessionDescriptionInit)
    /// `ice-candidate {to?, candidate: {candidate, sdpMid, sdpMLineIndex} | null}`; `nil` = end of candidates.
    case iceCandidate(to: String?, candidate: RTCIceCandidateInit?)
    /// `call {to, roomId}`: ring an online user; `roomId` is the fresh room both will join.
    case call(to: String, roomId: String)
    /// `call-accept {to}`
    case callAccept(to: String)
    /// `call-reject {to}`
    case callReject(to: String)
    /// `hangup {to?}`
    case hangup(to: String?)
    /// `media-state {audio, video, screen}`
    case mediaState(MediaState)
    /// `track-map {to, tracks: [{mid, participant, kind}]}`: the relay tells a member, right before an
    /// offer, whose media each active m-line of that offer carries.
    case trackMap(to: String, tracks: [TrackMapEntry])
    /// `recording-request {to?, action}`: ask a member that records the room (it sent `recording-state`) to
    /// start or stop; the room page's record button. Without `to`, the server's recording workers are asked
    /// (a job; the server answers `recording-job`).
    case recordingRequest(to: String?, action: RecordingAction)
    /// `recording-state {recording}`: a member that can record the room says whether it is recording (on
    /// every change and to each newcomer), so every page shows it and offers the record button.
    case recordingState(recording: Bool)

    /// Every client message type, as it appears in `type`.
    public static let types: [String] = [
        "join-room", "leave-room", "offer", "answer", "ice-candidate",
        "call", "call-accept", "call-reject", "hangup", "media-state", "track-map",
        "recording-request", "recording-state",
    ]

    /// The message's `type`.
    public var type: String {
        switch self {
        case .joinRoom: "join-room"
        case .leaveRoom: "leave-room"
        case .offer: "offer"
        case .answer: "answer"
        case .iceCandidate: "ice-candidate"
        case .call: "call"
        case .callAccept: "call-accept"
        case .callReject: "call-reject"
        case .hangup: "hangup"
        case .mediaState: "media-state"
        case .trackMap: "track-map"
        case .recordingRequest: "recording-request"
        case .recordingState: "recording-state"
        }
    }

    /// Parses and validates one frame, in one pass of `JSONDecoder` (which also finds malformed JSON).
    ///
    /// - Throws: ``SignalingError`` with `bad-json`, `unknown-type` or `invalid-message`.
    public static func parse(_ bytes: some Collection<UInt8>) throws(SignalingError) -> ClientMessage {
        let message: ClientMessage
        do {
            message = try JSONDecoder().decode(ClientMessage.self, from: Data(bytes))
        } catch let error as SignalingError {
            throw error
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            // Nothing at the top level is decoded as a value that could be corrupt: the bytes are not JSON.
            throw SignalingError(.badJSON, "the frame is not valid JSON: send one JSON object per text frame")
        } catch let error as DecodingError {
            // `init(from:)` reports a missing or unknown type itself, so the type is known here.
            let type = (try? JSONDecoder().decode(TypeField.self, from: Data(bytes)).type) ?? "message"
            throw SignalingError(.invalidMessage, "\(type): \(describe(error))")
        } catch {
            throw SignalingError(.badJSON, "the frame is not valid JSON: send one JSON object per text frame")
        }
        try message.validate()
        return message
    }

    /// Only a message's `type`: names the message in an error about its other fields.
    private struct TypeField: Decodable {
        let type: String
    }

    static let notAnObject = SignalingError(.invalidMessage, "a message must be a JSON object with a \"type\" field")
    static let noType = SignalingError(.invalidMessage, "the message has no string \"type\" field: add one, e.g. \"join-room\"")

    static func unknownType(_ type: String) -> SignalingError {
        SignalingError(.unknownType, "unknown message type \"\(type.prefix(64))\": use one of \(types.joined(separator: ", "))")
    }

    /// Checks values beyond their JSON types: room ids, names, SDP types, peer ids, track maps.
    public func validate() throws(SignalingError) {
        func checkRoom(_ roomId: String) throws(SignalingError) {
            guard SignalingLimits.isValidRoomID(roomId) else {
                throw SignalingError(
                    .invalidMessage,
                    "\(type): roomId must be 1–\(SignalingLimits.maxRoomIDLength) characters of A-Z, a-z, 0-9, _ and -"
                )
            }
        }
        func checkPeer(_ to: String?) throws(SignalingError) {
            guard let to else { return }
            guard !to.isEmpty, to.utf8.count <= SignalingLimits.maxPeerIDLength else {
                throw SignalingError(.invalidMessage, "\(type): \"to\" must be a peer id from room-joined, user-joined or online-users")
            }
        }
        switch self {
        case .joinRoom(let roomId, let name, _, _):
            try checkRoom(roomId)
            if let name, SignalingLimits.normalizedName(name) == nil {
                throw SignalingError(
                    .invalidMessage,
                    "join-room: name must be 1–\(SignalingLimits.maxNameLength) characters without control characters"
                )
            }
        case .leaveRoom, .mediaState, .recordingState:
            break
        case .recordingRequest(let to, _):
            if let to { try checkPeer(to) }
        case .offer(let to, _), .answer(let to, _):
            // The description's type was checked when it was decoded (`RTCSdpType`).
            try checkPeer(to)
        case .iceCandidate(let to, _):
            try checkPeer(to)
        case .call(let to, let roomId):
            try checkPeer(to)
            try checkRoom(roomId)
        case .callAccept(let to), .callReject(let to):
            try checkPeer(to)
        case .hangup(let to):
            try checkPeer(to)
        case .trackMap(let to, let tracks):
            try checkPeer(to)
            guard tracks.count <= SignalingLimits.maxTrackMapEntries else {
                throw SignalingError(
                    .invalidMessage,
                    "track-map: \(tracks.count) entries; at most \(SignalingLimits.maxTrackMapEntries) are allowed (one per active m-line)"
                )
            }
            for (index, entry) in tracks.enumerated() {
                guard !entry.mid.isEmpty, entry.mid.utf8.count <= SignalingLimits.maxMidLength else {
                    throw SignalingError(.invalidMessage, "track-map: tracks[\(index)].mid must be the m-line's mid, 1–\(SignalingLimits.maxMidLength) characters")
                }
                guard !entry.participant.isEmpty, entry.participant.utf8.count <= SignalingLimits.maxPeerIDLength else {
                    throw SignalingError(
                        .invalidMessage,
                        "track-map: tracks[\(index)].participant must be a peer id (1–\(SignalingLimits.maxPeerIDLength) characters)"
                    )
                }
            }
        }
    }
}

/// Describes a decoding error as the field that is wrong and why.
func describe(_ error: DecodingError) -> String {
    func path(_ codingPath: [any CodingKey], _ key: (any CodingKey)? = nil) -> String {
        let keys = codingPath + (key.map { [$0] } ?? [])
        let joined = keys.reduce(into: "") { text, key in
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return joined.isEmpty ? "the message" : "field \"\(joined)\""
    }
    switch error {
    case .keyNotFound(let key, let context):
        return "\(path(context.codingPath, key)) is missing"
    case .typeMismatch(let expected, let context):
        return "\(path(context.codingPath)) must be \(jsonTypeName(expected))"
    case .valueNotFound(let expected, let context):
        return "\(path(context.codingPath)) must be \(jsonTypeName(expected)), not null"
    case .dataCorrupted(let context):
        return "\(path(context.codingPath)) is invalid: \(context.debugDescription)"
    @unknown default:
        return "invalid message"
    }
}

private func jsonTypeName(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Bool.Type: "a boolean (true or false)"
    case is Int.Type, is Double.Type: "a number"
    default: "an object"
    }
}

extension ClientMessage: Codable {
    enum Keys: String, CodingKey {
        case type, to, roomId, name, capacity, role, offer, answer, candidate, audio, video, screen, tracks, action, recording
    }

    public init(from decoder: any Decoder) throws {
        // The type is checked before any other field so that its errors come first, as the protocol lists them.
        guard let c = try? decoder.container(keyedBy: Keys.self) else { throw Self.notAnObject }
        guard let type = try? c.decode(String.self, forKey: .type) else { throw Self.noType }
        switch type {
        case "join-room":
            let roomId = try c.decode(String.self, forKey: .roomId)
            let name = try c.decodeIfPresent(String.self, forKey: .name)
            let capacity = try c.decodeIfPresent(Int.self, forKey: .capacity)
            var role: JoinRole?
            if let value = try c.decodeIfPresent(String.self, forKey: .role) {
                guard let known = JoinRole(rawValue: value) else {
                    throw SignalingError(.invalidMessage, "join-room: role must be \"relay\" or absent, not \"\(value.prefix(32))\"")
                }
                role = known
            }
            self = .joinRoom(roomId: roomId, name: name, capacity: capacity, role: role)
        case "leave-room":
            self = .leaveRoom
        case "offer":
            self = .offer(to: try c.decodeIfPresent(String.self, forKey: .to), offer: try c.decode(RTCSessionDescriptionInit.self, forKey: .offer))
        case "answer":
            self = .answer(to: try c.decodeIfPresent(String.self, forKey: .to), answer: try c.decode(RTCSessionDescriptionInit.self, forKey: .answer))
        case "ice-candidate":
            guard c.contains(.candidate) else {
                throw DecodingError.keyNotFound(Keys.candidate, .init(codingPath: [], debugDescription: "candidate is required (null ends candidates)"))
            }
            self = .iceCandidate(
                to: try c.decodeIfPresent(String.self, forKey: .to),
                candidate: try c.decodeNil(forKey: .candidate) ? nil : try c.decode(RTCIceCandidateInit.self, forKey: .candidate)
            )
        case "call":
            self = .call(to: try c.decode(String.self, forKey: .to), roomId: try c.decode(String.self, forKey: .roomId))
        case "call-accept":
            self = .callAccept(to: try c.decode(String.self, forKey: .to))
        case "call-reject":
            self = .callReject(to: try c.decode(String.self, forKey: .to))
        case "hangup":
            self = .hangup(to: try c.decodeIfPresent(String.self, forKey: .to))
        case "media-state":
            self = .mediaState(MediaState(
                audio: try c.decode(Bool.self, forKey: .audio),
                video: try c.decode(Bool.self, forKey: .video),
                screen: try c.decode(Bool.self, forKey: .screen)
            ))
        case "track-map":
            // `to` is required here (a map is for one member), so its absence gets the routing rules' error.
            guard let to = try c.decodeIfPresent(String.self, forKey: .to) else {
                throw SignalingError(.invalidMessage, "track-map: \"to\" is required: name the member whose offer this map describes")
            }
            self = .trackMap(to: to, tracks: try c.decode([TrackMapEntry].self, forKey: .tracks))
        case "recording-request":
            let to = try c.decodeIfPresent(String.self, forKey: .to)
            let value = try c.decode(String.self, forKey: .action)
            guard let action = RecordingAction(rawValue: value) else {
                throw SignalingError(.invalidMessage, "recording-request: action must be \"start\" or \"stop\", not \"\(value.prefix(32))\"")
            }
            self = .recordingRequest(to: to, action: action)
        case "recording-state":
            self = .recordingState(recording: try c.decode(Bool.self, forKey: .recording))
        default:
            throw Self.unknownType(type)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(type, forKey: .type)
        switch self {
        case .joinRoom(let roomId, let name, let capacity, let role):
            try c.encode(roomId, forKey: .roomId)
            try c.encodeIfPresent(name, forKey: .name)
            try c.encodeIfPresent(capacity, forKey: .capacity)
            try c.encodeIfPresent(role, forKey: .role)
        case .leaveRoom:
            break
        case .offer(let to, let offer):
            try c.encodeIfPresent(to, forKey: .to)
            try c.encode(offer, forKey: .offer)
        case .answer(let to, let answer):
            try c.encodeIfPresent(to, forKey: .to)
            try c.encode(answer, forKey: .answer)
        case .iceCandidate(let to, let candidate):
            try c.encodeIfPresent(to, forKey: .to)
            try c.encode(candidate, forKey: .candidate)
        case .call(let to, let roomId):
            try c.encode(to, forKey: .to)
            try c.encode(roomId, forKey: .roomId)
        case .callAccept(let to), .callReject(let to):
            try c.encode(to, forKey: .to)
        case .hangup(let to):
            try c.encodeIfPresent(to, forKey: .to)
        case .mediaState(let state):
            try c.encode(state.audio, forKey: .audio)
            try c.encode(state.video, forKey: .video)
            try c.encode(state.screen, forKey: .screen)
        case .trackMap(let to, let tracks):
            try c.encode(to, forKey: .to)
            try c.encode(tracks, forKey: .tracks)
        case .recordingRequest(let to, let action):
            try c.encodeIfPresent(to, forKey: .to)
            try c.encode(action, forKey: .action)
        case .recordingState(let recording):
            try c.encode(recording, forKey: .recording)
        }
    }

    /// The message as one JSON text frame.
    public func jsonString() -> String {
        jsonText(self)
    }
}

func jsonText(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    // Encoding these value types cannot fail: they hold only strings, numbers, booleans and nulls.
    let data = (try? encoder.encode(value)) ?? Data(#"{"type":"error","code":"invalid-message","message":"encoding failed"}"#.utf8)
    return String(decoding: data, as: UTF8.self)
}
