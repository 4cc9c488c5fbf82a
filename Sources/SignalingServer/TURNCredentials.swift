import Crypto
import Foundation
import WebRTCTypes

/// Short-lived TURN credentials in coturn's shared-secret mode (`use-auth-secret`, the "TURN REST API"):
/// the username is `EXPIRY:ID` (EXPIRY in Unix seconds), the password base64(HMAC-SHA1(secret, username)).
/// coturn recomputes the password from the username and refuses it once EXPIRY has passed, so each client
/// gets its own credential and nobody holds a password that works for good.
///
/// ```swift
/// let issuer = TURNCredentialIssuer(secret: "s3cret", lifetime: .seconds(6 * 3600))
/// let (username, credential) = issuer.credential(for: "u-42")   // ("1767247200:u-42", "…=")
/// ```
public struct TURNCredentialIssuer: Sendable {
    public let secret: String
    public let lifetime: Duration

    public init(secret: String, lifetime: Duration) {
        self.secret = secret
        self.lifetime = lifetime
    }

    /// The username and password for `clientID`, valid from `now` for `lifetime`.
    public func credential(for clientID: String, now: Date = Date()) -> (username: String, credential: String) {
        let expiry = Int(now.timeIntervalSince1970) + Int(lifetime.components.seconds)
        let username = "\(expiry):\(clientID)"
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(username.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return (username, Data(mac).base64EncodedString())
    }

    /// `servers` as one client gets them: each TURN server given without credentials gets this client's.
    public func iceServers(_ servers: [RTCIceServer], for clientID: String, now: Date = Date()) -> [RTCIceServer] {
        servers.map { server in
            guard server.username == nil, server.credential == nil, server.isTURN else { return server }
            let issued = credential(for: clientID, now: now)
            return RTCIceServer(urls: server.urls, username: issued.username, credential: issued.credential)
        }
    }
}

extension RTCIceServer {
    /// Whether every URL is a TURN one (`turn:` or `turns:`).
    var isTURN: Bool { !urls.isEmpty && urls.allSatisfy { $0.hasPrefix("turn:") || $0.hasPrefix("turns:") } }
}
