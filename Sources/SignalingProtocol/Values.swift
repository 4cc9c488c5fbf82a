/// A room member: `{id, name}`.
public struct PeerInfo: Codable, Sendable, Equatable {
    public var id: String
    public var name: String

    public init(id: String, name: String) {
        self.id = id
        self.name = name
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
