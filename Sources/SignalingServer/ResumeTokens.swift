import Crypto
import Foundation
import Logging
import SignalingProtocol

/// Signs peer ids so a client that lost its socket can reconnect as the same id (`/ws?resume=TOKEN`).
///
/// A token is `ID.MAC`, MAC being the lowercase hex HMAC-SHA256 of the id under the server's secret.
/// Nothing is stored per token: any id this server (or an earlier run with the same secret) handed out
/// can be resumed. The secret lives in `resume-secret` in the data folder (mode 0600), or with PostgreSQL in
/// the `settings` table that every node reads, so tokens survive a restart; delete it to invalidate every token.
///
/// ```swift
/// let tokens = try ResumeTokens.load(dataDirectory: "./vcall-data", logger: logger)
/// let token = tokens.token(for: "3fa2…")        // "3fa2….9c1e…"
/// tokens.id(from: token)                        // "3fa2…"
/// ```
struct ResumeTokens: Sendable {
    static let fileName = "resume-secret"
    private let key: SymmetricKey

    init(secret: [UInt8]) {
        key = SymmetricKey(data: secret)
    }

    /// The token that resumes `id`.
    func token(for id: String) -> String {
        id + "." + HMAC<SHA256>.authenticationCode(for: Data(id.utf8), using: key).hexString
    }

    /// The id a token resumes, or nil when it is malformed or was not signed with this secret.
    func id(from token: String) -> String? {
        guard token.utf8.count <= 256, let dot = token.lastIndex(of: ".") else { return nil }
        let id = String(token[..<dot])
        guard (1...SignalingLimits.maxPeerIDLength).contains(id.utf8.count),
              let mac = Self.bytes(hex: token[token.index(after: dot)...]), mac.count == SHA256.byteCount
        else { return nil }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(id.utf8), using: key) ? id : nil
    }

    private static func bytes(hex: Substring) -> [UInt8]? {
        let utf8 = Array(hex.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        for i in stride(from: 0, to: utf8.count, by: 2) {
            guard let high = nibble(utf8[i]), let low = nibble(utf8[i + 1]) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }

    /// Reads the secret from the database's `settings`, the first node to start storing a new one: every node
    /// of one database signs with the same secret, so a client can resume on any of them.
    static func load(database: any SQLExecutor) async throws -> ResumeTokens {
        try await database.query(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            [.text(fileName), .text(RandomToken.bytes(32).hexString)]
        )
        let rows = try await database.query("SELECT value FROM settings WHERE key = ?", [.text(fileName)])
        guard let text = rows.first?["value"]?.string, let secret = bytes(hex: Substring(text)), secret.count >= 32 else {
            throw DatabaseError("the resume secret in the database's settings table is not 64 hex digits: delete its row (key '\(fileName)') and restart; clients then cannot resume their earlier ids")
        }
        return ResumeTokens(secret: secret)
    }

    /// Reads the secret from `DATA_DIR/resume-secret`, creating it (32 random bytes as hex, mode 0600) when missing
    /// or unreadable.
    static func load(dataDirectory: String, logger: Logger) throws -> ResumeTokens {
        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent(fileName).path
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            if let secret = bytes(hex: Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))), secret.count >= 32 {
                return ResumeTokens(secret: secret)
            }
            logger.warning("\(path) does not hold a valid secret: making a new one (clients cannot resume their earlier ids)")
        }
        let secret = RandomToken.bytes(32)
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        // Written to a private temporary file, then renamed: the secret is never readable by others.
        let temporary = path + ".tmp-\(RandomToken.hex(byteCount: 4))"
        guard FileManager.default.createFile(
            atPath: temporary, contents: Data((secret.hexString + "\n").utf8), attributes: [.posixPermissions: 0o600]
        ) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary])
        }
        do {
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: temporary, toPath: path)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        return ResumeTokens(secret: secret)
    }
}
