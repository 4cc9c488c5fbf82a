import Foundation
import Testing
import WebRTCTypes

@testable import SignalingServer

@Suite("TURN credentials in coturn's shared-secret mode")
struct TURNCredentialTests {
    @Test("the username is EXPIRY:ID and the password base64(HMAC-SHA1(secret, username)) (checked against Python's hmac)")
    func credentialVector() {
        let issuer = TURNCredentialIssuer(secret: "vcall-turn-secret", lifetime: .seconds(3600))
        let issued = issuer.credential(for: "u-1", now: Date(timeIntervalSince1970: 1_767_222_000))
        #expect(issued.username == "1767225600:u-1")
        // python3 -c "import hmac,hashlib,base64; print(base64.b64encode(hmac.new(b'vcall-turn-secret', b'1767225600:u-1', hashlib.sha1).digest()).decode())"
        #expect(issued.credential == "8686SN1NaQLUOL+QOdHtxfuU18A=")
    }

    @Test("only TURN servers given without credentials get the client's; STUN and TURN with its own stay as they are")
    func whichServers() {
        let servers = [
            RTCIceServer(urls: ["stun:stun.example.org:3478"]),
            RTCIceServer(urls: ["turn:turn.example.org:3478", "turns:turn.example.org:5349"]),
            RTCIceServer(urls: ["turn:other.example.org:3478"], username: "fixed", credential: "password"),
        ]
        let now = Date(timeIntervalSince1970: 1_767_222_000)
        let given = TURNCredentialIssuer(secret: "s", lifetime: .seconds(7200)).iceServers(servers, for: "u-9", now: now)
        #expect(given[0] == servers[0] && given[2] == servers[2])
        #expect(given[1].urls == servers[1].urls)
        #expect(given[1].username == "1767229200:u-9")
        #expect(given[1].credential?.isEmpty == false)
    }

    @Test("welcome hands each client a TURN credential of its own, valid for the configured lifetime")
    func welcomeCarriesCredentials() async throws {
        try await TestServer.run({ configuration in
            configuration.iceServers = [RTCIceServer(urls: ["turn:127.0.0.1:3478"])]
            configuration.turnSecret = "vcall-turn-secret"
            configuration.turnCredentialLifetime = .seconds(4 * 3600)
        }) { server in
            let a = try await server.connect()
            let b = try await server.connect()
            let now = Int(Date().timeIntervalSince1970)
            for client in [a, b] {
                let turn = try #require(client.iceServers.first)
                let username = try #require(turn.username)
                let parts = username.split(separator: ":", maxSplits: 1)
                #expect(parts.count == 2 && parts[1] == Substring(client.id), "the username names the client: \(username)")
                let expiry = try #require(Int(parts[0]))
                #expect(abs(expiry - (now + 4 * 3600)) <= 5)
                let expected = TURNCredentialIssuer(secret: "vcall-turn-secret", lifetime: .seconds(4 * 3600))
                    .credential(for: client.id, now: Date(timeIntervalSince1970: TimeInterval(expiry - 4 * 3600)))
                #expect(turn.credential == expected.credential)
            }
            #expect(a.iceServers.first?.credential != b.iceServers.first?.credential)
            await a.close()
            await b.close()
        }
    }
}
