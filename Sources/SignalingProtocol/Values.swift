/// An SDP offer or answer, as `RTCSessionDescriptionInit`: `{type, sdp}`.
public struct SessionDescription: Codable, Sendable, Equatable {
    public var type: String
    public var sdp: String

    public init(type: String, sdp: String) {
        self.type = type
        self.sdp = sdp
    }
}

/// An ICE candidate, as `RTCIceCandidateInit`: `{candidate, sdpMid, sdpMLineIndex, usernameFragment?}`.
///
/// `sdpMid` and `sdpMLineIndex` are always written (as `null` when absent), `usernameFragment` only when set.
public struct IceCandidate: Codable, Sendable, Equatable {
    public var candidate: String
    public var sdpMid: String?
    public var sdpMLineIndex: Int?
    public var usernameFragment: String?

    public init(candidate: String, sdpMid: String?, sdpMLineIndex: Int?, usernameFragment: String? = nil) {
        self.candidate = candidate
        self.sdpMid = sdpMid
        self.sdpMLineIndex = sdpMLineIndex
        self.usernameFragment = usernameFragment
    }

    enum CodingKeys: String, CodingKey { case candidate, sdpMid, sdpMLineIndex, usernameFragment }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(candidate, forKey: .candidate)
        try c.encode(sdpMid, forKey: .sdpMid)
        try c.encode(sdpMLineIndex, forKey: .sdpMLineIndex)
        try c.encodeIfPresent(usernameFragment, forKey: .usernameFragment)
    }
}

/// A STUN or TURN server, as `RTCIceServer`: `{urls, username?, credential?}`.
public struct IceServer: Codable, Sendable, Equatable {
    public var urls: [String]
    public var username: String?
    public var credential: String?

    public init(urls: [String], username: String? = nil, credential: String? = nil) {
        self.urls = urls
        self.username = username
        self.credential = credential
    }

    enum CodingKeys: String, CodingKey { case urls, username, credential }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let one = try? c.decode(String.self, forKey: .urls) {
            urls = [one]
        } else {
            urls = try c.decode([String].self, forKey: .urls)
        }
        username = try c.decodeIfPresent(String.self, forKey: .username)
        credential = try c.decodeIfPresent(String.self, forKey: .credential)
    }
}

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
