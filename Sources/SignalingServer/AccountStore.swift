import Foundation
import HummingbirdBcrypt
import Logging
import NIOPosix

/// Who is behind a connection or request.
public struct Identity: Sendable, Equatable, Codable {
    /// What proved the identity.
    public enum Credential: String, Sendable, Equatable, Codable {
        /// The web app's login session (the `vcall_session` cookie).
        case session
        /// An API token (a user's, a command-line one, or an in-process one), as a Bearer header or `?token=`:
        /// what programs use, and what the relay role needs.
        case apiToken
    }

    /// The account name for a session or a user's token; the token's name for a command-line token.
    public var name: String
    /// The account, when a user (not the command line) owns the credentials.
    public var username: String?
    public var credential: Credential

    public init(name: String, username: String?, credential: Credential) {
        self.name = name
        self.username = username
        self.credential = credential
    }
}

/// Problems with accounts that the REST API reports.
enum AccountError: Error, Equatable {
    case invalidUsername
    case invalidPassword
    case usernameTaken
    case invalidCredentials
    case invalidTokenName
}

/// Accounts, login sessions and API tokens, in SQLite (`vcall.sqlite` in the data folder) or PostgreSQL.
///
/// Passwords are bcrypt hashes; session and API tokens are stored as SHA-256 hashes only.
///
/// ```swift
/// let store = try await AccountStore.open(dataDirectory: "./vcall-data", logger: logger)
/// let token = try await store.createToken(name: "gateway", username: nil)
/// ```
public final class AccountStore: Sendable {
    let db: any SQLDatabase
    let bcryptCost: UInt8
    let sessionLifetime: Duration
    /// In-process tokens' names by the tokens' hashes: never written to the database.
    let inProcessTokenNames: [String: String]

    init(db: any SQLDatabase, bcryptCost: UInt8, sessionLifetime: Duration, inProcessTokens: [String: String] = [:]) {
        self.db = db
        self.bcryptCost = bcryptCost
        self.sessionLifetime = sessionLifetime
        self.inProcessTokenNames = Dictionary(inProcessTokens.map { (TokenHash.hex($0.key), $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    /// Why `inProcessTokens` cannot be used, naming the entry and what to fix.
    public struct InProcessTokenError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Opens (and creates or migrates) `vcall.sqlite` in `dataDirectory`.
    public static func open(
        dataDirectory: String,
        bcryptCost: UInt8 = 12,
        sessionLifetime: Duration = .seconds(30 * 24 * 3600),
        inProcessTokens: [String: String] = [:],
        logger: Logger
    ) async throws -> AccountStore {
        try await open(
            .sqlite(dataDirectory: dataDirectory), bcryptCost: bcryptCost, sessionLifetime: sessionLifetime,
            inProcessTokens: inProcessTokens, logger: logger
        )
    }

    /// Opens (and creates or migrates) the database at `location`.
    ///
    /// `inProcessTokens` (token → name) are API tokens that live only in this process's memory; see
    /// ``VCallServerConfiguration/inProcessTokens``.
    public static func open(
        _ location: DatabaseLocation,
        bcryptCost: UInt8 = 12,
        sessionLifetime: Duration = .seconds(30 * 24 * 3600),
        inProcessTokens: [String: String] = [:],
        logger: Logger
    ) async throws -> AccountStore {
        for (token, name) in inProcessTokens {
            guard token.utf8.count >= 16 else {
                throw InProcessTokenError(description: "the in-process API token named \"\(name)\" is \(token.utf8.count) characters long: make it at least 16 random characters")
            }
            guard isValidTokenName(name) else {
                throw InProcessTokenError(description: "an in-process API token's name \"\(name.prefix(80))\" is not 1–64 characters without control characters: it is the display name in rooms, so pick one such as \"gateway\"")
            }
        }
        let db = try await location.open(logger: logger)
        return AccountStore(db: db, bcryptCost: bcryptCost, sessionLifetime: sessionLifetime, inProcessTokens: inProcessTokens)
    }

    /// Closes the database.
    public func close() async {
        await db.close()
    }

    static func now() -> Int { Int(Date().timeIntervalSince1970) }

    /// 3–32 characters of `A–Z a–z 0–9 _ . -`.
    static func isValidUsername(_ name: String) -> Bool {
        (3...32).contains(name.utf8.count) && name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2E || c == 0x2D
        }
    }

    /// 8–72 bytes (bcrypt reads no further).
    static func isValidPassword(_ password: String) -> Bool {
        (8...72).contains(password.utf8.count)
    }

    /// Creates an account; hashing runs on the thread pool, off the event loop.
    func register(username: String, password: String) async throws -> String {
        guard Self.isValidUsername(username) else { throw AccountError.invalidUsername }
        guard Self.isValidPassword(password) else { throw AccountError.invalidPassword }
        let cost = bcryptCost
        let hash = try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
        let existing = try await db.query("SELECT username FROM users WHERE lower(username) = lower(?)", [.text(username)])
        guard existing.isEmpty else { throw AccountError.usernameTaken }
        do {
            _ = try await db.query(
                "INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)",
                [.text(username), .text(hash), .integer(Self.now())]
            )
        } catch {
            throw AccountError.usernameTaken
        }
        return username
    }

    /// Checks a password; returns the account's canonical username.
    func verify(username: String, password: String) async throws -> String {
        let rows = try await db.query("SELECT username, password_hash FROM users WHERE lower(username) = lower(?)", [.text(username)])
        guard let row = rows.first, let hash = row["password_hash"]?.string,
            let canonical = row["username"]?.string
        else {
            // Spend the same time as a real check so usernames cannot be probed by timing.
            _ = try? await NIOThreadPool.singleton.runIfActive { [bcryptCost] in Bcrypt.hash(password, cost: bcryptCost) }
            throw AccountError.invalidCredentials
        }
        let ok = try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
        guard ok else { throw AccountError.invalidCredentials }
        return canonical
    }

    /// Whether the account may see every recording (`vcall-server user admin NAME`).
    func isAdmin(username: String) async throws -> Bool {
        let rows = try await db.query("SELECT admin FROM users WHERE lower(username) = lower(?)", [.text(username)])
        return (rows.first?["admin"]?.integer ?? 0) != 0
    }

    /// Sets or clears an account's admin flag; returns the canonical username, or nil when there is no
    /// such account.
    public func setAdmin(username: String, _ admin: Bool) async throws -> String? {
        let rows = try await db.query("SELECT username FROM users WHERE lower(username) = lower(?)", [.text(username)])
        guard let canonical = rows.first?["username"]?.string else { return nil }
        _ = try await db.query("UPDATE users SET admin = ? WHERE lower(username) = lower(?)", [.integer(admin ? 1 : 0), .text(canonical)])
        return canonical
    }

    /// Starts a session; returns the secret that goes into the cookie.
    func createSession(username: String) async throws -> String {
        let token = RandomToken.hex(byteCount: 32)
        let expires = Self.now() + Int(sessionLifetime.components.seconds)
        _ = try await db.query(
            "INSERT INTO sessions (token_hash, username, expires_at) VALUES (?, ?, ?)",
            [.text(TokenHash.hex(token)), .text(username), .integer(expires)]
        )
        return token
    }

    /// The user of a live session, or nil for an unknown or expired one.
    func session(_ token: String) async throws -> String? {
        let hash = TokenHash.hex(token)
        let rows = try await db.query("SELECT username, expires_at FROM sessions WHERE token_hash = ?", [.text(hash)])
        guard let row = rows.first, let username = row["username"]?.string,
            let expires = row["expires_at"]?.integer
        else { return nil }
        guard expires > Self.now() else {
            _ = try? await db.query("DELETE FROM sessions WHERE token_hash = ?", [.text(hash)])
            return nil
        }
        return username
    }

    func deleteSession(_ token: String) async throws {
        _ = try await db.query("DELETE FROM sessions WHERE token_hash = ?", [.text(TokenHash.hex(token))])
    }

    /// Creates an API token; the secret is returned once and stored only hashed.
    ///
    /// - Parameters:
    ///   - name: 1–64 characters naming the program that uses it; shown as its name when no user owns it.
    ///   - username: the owning account, nil for tokens made on the command line.
    ///   - lifetime: nil for a token that does not expire.
    public func createToken(name: String, username: String?, lifetime: Duration? = nil) async throws -> String {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard Self.isValidTokenName(trimmed) else { throw AccountError.invalidTokenName }
        let token = "vct_" + RandomToken.hex(byteCount: 32)
        let expires: SQLValue = lifetime.map { .integer(Self.now() + Int($0.components.seconds)) } ?? .null
        _ = try await db.query(
            "INSERT INTO api_tokens (token_hash, name, username, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            [.text(TokenHash.hex(token)), .text(trimmed), username.map { .text($0) } ?? .null, .integer(Self.now()), expires]
        )
        return token
    }

    /// 1–64 characters without control characters: a token's name is a display name in rooms.
    static func isValidTokenName(_ name: String) -> Bool {
        (1...64).contains(name.count) && !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
    }

    /// The identity behind an API token (an in-process one, or one in the database), or nil for an unknown
    /// or expired one.
    func identity(forToken token: String) async throws -> Identity? {
        let hash = TokenHash.hex(token)
        // Looked up by hash, as in the database, so the lookup's time says nothing about the token.
        if let name = inProcessTokenNames[hash] {
            return Identity(name: name, username: nil, credential: .apiToken)
        }
        let rows = try await db.query(
            "SELECT name, username, expires_at FROM api_tokens WHERE token_hash = ?",
            [.text(hash)]
        )
        guard let row = rows.first, let name = row["name"]?.string else { return nil }
        if let expires = row["expires_at"]?.integer, expires <= Self.now() { return nil }
        let username = row["username"]?.string
        return Identity(name: username ?? name, username: username, credential: .apiToken)
    }
}
