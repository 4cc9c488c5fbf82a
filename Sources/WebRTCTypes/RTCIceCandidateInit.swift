/// A trickled ICE candidate in the W3C `RTCIceCandidateInit` shape:
/// `{candidate, sdpMid, sdpMLineIndex, usernameFragment?}`.
///
/// `sdpMid` and `sdpMLineIndex` are always written (as `null` when absent), as the browser's `toJSON()`
/// does; `usernameFragment` only when set. It names the ICE generation the candidate belongs to, so a
/// candidate left over from before an ICE restart can be told from a current one.
public struct RTCIceCandidateInit: Codable, Sendable, Equatable {
    /// The `candidate:` attribute without the leading `a=`; empty means end of candidates for that m-line.
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

    private enum CodingKeys: String, CodingKey { case candidate, sdpMid, sdpMLineIndex, usernameFragment }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        candidate = try container.decode(String.self, forKey: .candidate)
        sdpMid = try container.decodeIfPresent(String.self, forKey: .sdpMid)
        sdpMLineIndex = try container.decodeIfPresent(Int.self, forKey: .sdpMLineIndex)
        usernameFragment = try container.decodeIfPresent(String.self, forKey: .usernameFragment)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(candidate, forKey: .candidate)
        try container.encode(sdpMid, forKey: .sdpMid)
        try container.encode(sdpMLineIndex, forKey: .sdpMLineIndex)
        try container.encodeIfPresent(usernameFragment, forKey: .usernameFragment)
    }
}
