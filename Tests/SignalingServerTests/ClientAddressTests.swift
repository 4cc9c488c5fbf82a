import Testing

@testable import SignalingServer

@Suite("The client's address behind a reverse proxy")
struct ClientAddressTests {
    @Test("X-Forwarded-For counts only from a trusted proxy, read from its end past trusted hops")
    func resolve() {
        let trusted: Set<String> = ["127.0.0.1", "10.0.0.5"]
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: "203.0.113.7", trustedProxies: trusted) == "203.0.113.7")
        // A client's own forged entry stays left of what the proxy appended.
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: "6.6.6.6, 203.0.113.7", trustedProxies: trusted) == "203.0.113.7")
        // Two proxies in a row: the outer one's entry is skipped.
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: "203.0.113.7, 10.0.0.5", trustedProxies: trusted) == "203.0.113.7")
        // From anyone else the header is ignored.
        #expect(ClientAddress.resolve(peer: "198.51.100.2", forwardedFor: "203.0.113.7", trustedProxies: trusted) == "198.51.100.2")
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: nil, trustedProxies: trusted) == "127.0.0.1")
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: "203.0.113.7", trustedProxies: []) == "127.0.0.1")
    }
}
