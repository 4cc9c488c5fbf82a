/// A STUN or TURN server in the W3C `RTCIceServer` shape: `{urls, username?, credential?}`.
/// `urls` may be one string or a list, as in the browser.
public struct RTCIceServer: Codable, Sendable, Equatable {
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
        if let single = try? container.decode(String.self, forKey: .urls) {
            urls = [single]
        } else {
            urls = try container.decode([String].self, forKey: .urls)
        }
        username = try container.decodeIfPresent(String.self, forKey: .username)
        credential = try container.decodeIfPresent(String.self, forKey: .credential)
    }

    /// A TURN server as written on a command line: `turn:HOST:PORT` or `USER:PASSWORD@turn:HOST:PORT`
    /// (also `turns:`). nil if it is neither.
    ///
    /// ```swift
    /// RTCIceServer(turnArgument: "alice:secret@turn:127.0.0.1:3478")
    /// // RTCIceServer(urls: ["turn:127.0.0.1:3478"], username: "alice", credential: "secret")
    /// ```
    public init?(turnArgument value: String) {
        if value.hasPrefix("turn:") || value.hasPrefix("turns:") {
            self.init(urls: [value])
            return
        }
        guard let at = value.lastIndex(of: "@") else { return nil }
        let url = String(value[value.index(after: at)...])
        let credentials = value[..<at]
        guard url.hasPrefix("turn:") || url.hasPrefix("turns:"), let colon = credentials.firstIndex(of: ":") else { return nil }
        self.init(urls: [url], username: String(credentials[..<colon]),
                  credential: String(credentials[credentials.index(after: colon)...]))
    }
}
