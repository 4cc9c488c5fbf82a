extension IceServer {
    /// A TURN server as written on a command line: `turn:HOST:PORT` or `USER:PASSWORD@turn:HOST:PORT`
    /// (also `turns:`). nil if it is neither.
    ///
    /// ```swift
    /// IceServer(turnArgument: "alice:secret@turn:127.0.0.1:3478")
    /// // IceServer(urls: ["turn:127.0.0.1:3478"], username: "alice", credential: "secret")
    /// ```
    public init?(turnArgument value: String) {
        if value.hasPrefix("turn:") || value.hasPrefix("turns:") {
            self.init(urls: [value])
            return
        }
        guard let at = value.range(of: "@", options: .backwards) else { return nil }
        let url = String(value[at.upperBound...])
        let credentials = value[..<at.lowerBound]
        guard url.hasPrefix("turn:") || url.hasPrefix("turns:"), let colon = credentials.firstIndex(of: ":") else { return nil }
        self.init(urls: [url], username: String(credentials[..<colon]),
                  credential: String(credentials[credentials.index(after: colon)...]))
    }
}
