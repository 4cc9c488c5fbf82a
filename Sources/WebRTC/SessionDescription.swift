/// An SDP offer or answer; its JSON is exactly the browser's `RTCSessionDescriptionInit`.
///
/// ```swift
/// let offer = try JSONDecoder().decode(SessionDescription.self, from: #"{"type":"offer","sdp":"v=0..."}"#.data(using: .utf8)!)
/// ```
public struct SessionDescription: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case offer, answer, pranswer, rollback
    }

    public var type: Kind
    public var sdp: String

    public init(type: Kind, sdp: String) {
        self.type = type
        self.sdp = sdp
    }
}

/// A trickled ICE candidate; its JSON is exactly the browser's `RTCIceCandidateInit`.
public struct ICECandidate: Codable, Sendable, Equatable {
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
        candidate = try container.decodeIfPresent(String.self, forKey: .candidate) ?? ""
        sdpMid = try container.decodeIfPresent(String.self, forKey: .sdpMid)
        sdpMLineIndex = try container.decodeIfPresent(Int.self, forKey: .sdpMLineIndex)
        usernameFragment = try container.decodeIfPresent(String.self, forKey: .usernameFragment)
    }

    /// Writes `sdpMid` and `sdpMLineIndex` as null when absent, as the browser's `toJSON()` does.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(candidate, forKey: .candidate)
        try container.encode(sdpMid, forKey: .sdpMid)
        try container.encode(sdpMLineIndex, forKey: .sdpMLineIndex)
        try container.encodeIfPresent(usernameFragment, forKey: .usernameFragment)
    }
}

/// A STUN or TURN server in the browser's `RTCIceServer` shape.
public struct ICEServer: Codable, Sendable, Equatable {
    public var urls: [String]
    public var username: String?
    public var credential: String?

    public init(urls: [String], username: String? = nil, credential: String? = nil) {
        self.urls = urls
        self.username = username
        self.credential = credential
    }

    private enum CodingKeys: String, CodingKey { case urls, username, credential }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        // `urls` may be one string or a list, as in the browser.
        if let single = try? container.decode(String.self, forKey: .urls) {
            urls = [single]
        } else {
            urls = try container.decode([String].self, forKey: .urls)
        }
        username = try container.decodeIfPresent(String.self, forKey: .username)
        credential = try container.decodeIfPresent(String.self, forKey: .credential)
    }

    /// The URLs in webrtcbin's form: `stun://host:port` and `turn(s)://user:password@host:port?transport=…`.
    var webrtcbinURLs: [(isTURN: Bool, url: String)] {
        urls.compactMap { url in
            let lower = url.lowercased()
            for scheme in ["stuns", "stun", "turns", "turn"] where lower.hasPrefix(scheme + ":") {
                var rest = String(url.dropFirst(scheme.count + 1))
                if rest.hasPrefix("//") { rest.removeFirst(2) }
                let isTURN = scheme.hasPrefix("turn")
                if isTURN, !rest.contains("@") {
                    let user = percentEncoded(username ?? ""), password = percentEncoded(credential ?? "")
                    rest = "\(user):\(password)@\(rest)"
                }
                // webrtcbin has no stuns; plain stun is the closest it can do.
                return (isTURN, "\(scheme == "stuns" ? "stun" : scheme)://\(rest)")
            }
            return nil
        }
    }

    private func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            let scalar = Character(Unicode.Scalar(byte))
            if scalar.isLetter && byte < 128 || scalar.isNumber && byte < 128 || "-._~".contains(scalar) {
                result.append(scalar)
            } else {
                result += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return result
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
