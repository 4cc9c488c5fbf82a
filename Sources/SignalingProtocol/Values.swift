/// A room member: `{id, name, account?}`.
public struct PeerInfo: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    /// The member's account (username) when it is logged in; absent for guests and programs' tokens.
    /// A recording gateway lists these in its reports: who may watch the recording.
    public var account: String?

    public init(id: String, name: String, account: String? = nil) {
        self.id = id
        self.name = name
        self.account = account
    }
}

/// An online user in `online-users`: `{id, name, inCall}`.
public struct OnlineUser: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    /// True while the user is a member of a room.
    public var inCall: Bool

    public init(id: String, name: String, inCall: Bool) {
        self.id = id
        self.name = name
        self.inCall = inCall
    }
}

/// Which of a participant's media are on: `{audio, video, screen}`.
public struct MediaState: Codable, Sendable, Equatable {
    public var audio: Bool
    public var video: Bool
    public var screen: Bool

    public init(audio: Bool, video: Bool, screen: Bool) {
        self.audio = audio
        self.video = video
        self.screen = screen
    }
}

/// The role a client asks for in `join-room`: `relay` makes it the room's relay (an SFU every member
/// connects to instead of to each other). Needs an API token; one relay per room.
public enum JoinRole: String, Codable, Sendable, Equatable, CaseIterable {
    case relay
}

/// One m-line of a relay's offer in `track-map`: `{mid, participant, kind}`: whose media the m-line carries.
///
/// For the member's own m-lines `participant` is the member's own id ("send your audio or video here").
public struct TrackMapEntry: Codable, Sendable, Equatable {
    /// The kind of media an m-line carries.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case audio
        case video
    }

    /// The m-line's `a=mid`: 1–32 characters.
    public var mid: String
    /// The peer id of the participant whose track the m-line carries: 1–64 characters.
    public var participant: String
    public var kind: Kind

    public init(mid: String, participant: String, kind: Kind) {
        self.mid = mid
        self.participant = participant
        self.kind = kind
    }

    enum CodingKeys: String, CodingKey {
        case mid, participant, kind
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mid = try c.decode(String.self, forKey: .mid)
        participant = try c.decode(String.self, forKey: .participant)
        // Decoded as a string first, so that a wrong kind says which values are allowed.
        let kind = try c.decode(String.self, forKey: .kind)
        guard let known = Kind(rawValue: kind) else {
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "must be \"audio\" or \"video\"")
        }
        self.kind = known
    }
}

/// What `recording-request` asks a recording gateway to do: `start` or `stop` recording the room.
public enum RecordingAction: String, Codable, Sendable, Equatable, CaseIterable {
    case start
    case stop
}
