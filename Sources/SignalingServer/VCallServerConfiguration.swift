import Foundation
import SignalingProtocol
import WebRTCTypes

/// Everything that configures a vcall server; the command line fills it from flags.
///
/// ```swift
/// var configuration = VCallServerConfiguration()
/// configuration.port = 0                      // any free port
/// configuration.dataDirectory = "/tmp/vcall"  // SQLite lives here
/// let app = try await buildApplication(configuration: configuration)
/// try await app.runService()
/// ```
public struct VCallServerConfiguration: Sendable {
    /// Address to listen on.
    public var host: String = "127.0.0.1"
    /// Port to listen on; 0 picks a free one (see `onServerRunning`).
    public var port: Int = 8080
    /// Serve HTTPS and WSS with this certificate; nil: plain HTTP and WS.
    public var tls: ServerTLS? = nil
    /// Reverse proxies (their IP addresses) whose `X-Forwarded-For` names the client; from anyone else the
    /// header is ignored.
    public var trustedProxies: [String] = []
    /// Folder that holds `vcall.sqlite` (accounts, sessions, API tokens) and `resume-secret`; created when
    /// missing. Unused when `database` is set.
    public var dataDirectory: String = "./vcall-data"
    /// Keep everything in this PostgreSQL database instead of SQLite: what several nodes share.
    public var database: PostgresURL? = nil
    /// Every `join-room` and `call` needs a session cookie or an API token.
    public var requireLogin: Bool = false
    /// Largest room; a room's creator may ask for a smaller one.
    public var roomCapacity: Int = SignalingLimits.defaultRoomCapacity
    /// Largest accepted message in bytes; larger ones are answered with `too-large`.
    public var maxMessageBytes: Int = SignalingLimits.defaultMaxMessageBytes
    /// STUN/TURN servers handed to clients in `welcome`.
    public var iceServers: [RTCIceServer] = []
    /// coturn's `static-auth-secret`: TURN servers in `iceServers` without credentials are handed to each
    /// client with a username and password of its own, valid for `turnCredentialLifetime`.
    public var turnSecret: String? = nil
    public var turnCredentialLifetime: Duration = .seconds(6 * 3600)
    /// Sustained messages per second a connection may send.
    public var rateLimitPerSecond: Double = 50
    /// Messages a connection may send in one burst.
    public var rateLimitBurst: Double = 200
    /// The gateway's recordings folder (its `--record DIR`): listed at `/recordings` and on room pages, each
    /// file to the accounts that were in its room (see `RecordingCatalog`). nil: no recordings are served.
    public var recordingsDirectory: String? = nil
    /// Folder to serve the web app from instead of the files shipped in the package.
    public var webRoot: String? = nil
    /// bcrypt cost for passwords (4…31); tests lower it.
    public var bcryptCost: UInt8 = 12
    /// How long a login session lasts.
    public var sessionLifetime: Duration = .seconds(30 * 24 * 3600)
    /// How long a room keeps a member whose socket dropped (no close frame, or a close code other than
    /// 1000/1001) before telling the others `user-disconnected`; a client that resumes its id
    /// (`/ws?resume=TOKEN`) and rejoins within it is never seen leaving. Zero disables the grace.
    public var resumeGrace: Duration = .seconds(20)
    /// API tokens that exist only in this process's memory, token → name: for a program that runs the
    /// server in-process and connects to it itself (the gateway, which takes the relay role, makes a random
    /// token at start-up and presents it as `Authorization: Bearer TOKEN`).
    ///
    /// They are accepted exactly like tokens from `vcall-server token create NAME`: the connection is named
    /// NAME, belongs to no user, and may join as a room's relay. They are never written to the data folder and
    /// end with the process. A token must be at least 16 characters (make it random, e.g. 32 random bytes as
    /// hex); a name 1–64 characters without control characters. Otherwise `buildApplication` throws.
    ///
    /// ```swift
    /// let token = "vct_" + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    /// configuration.inProcessTokens = [token: "gateway"]
    /// ```
    public var inProcessTokens: [String: String] = [:]

    public init() {}

    /// Where accounts, sessions, tokens and the resume secret live.
    public var databaseLocation: DatabaseLocation {
        database.map { .postgres($0) } ?? .sqlite(dataDirectory: dataDirectory)
    }

    /// The STUN/TURN servers for one client's `welcome`.
    public func iceServers(for clientID: String, now: Date = Date()) -> [RTCIceServer] {
        guard let turnSecret else { return iceServers }
        return TURNCredentialIssuer(secret: turnSecret, lifetime: turnCredentialLifetime).iceServers(iceServers, for: clientID, now: now)
    }

    /// Largest WebSocket frame the socket layer accepts before closing the connection (code 1009).
    ///
    /// Kept well above `maxMessageBytes` so the server itself reads an oversized message and answers `too-large`.
    public var webSocketMaxFrameSize: Int {
        max(maxMessageBytes * 4, 1 << 20)
    }
}
