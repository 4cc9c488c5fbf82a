import Foundation
import HTTPTypes
import Hummingbird

/// Finds who sent a request: a session cookie, `Authorization: Bearer TOKEN`, or `?token=TOKEN`.
enum Authentication {
    static let sessionCookie = "vcall_session"

    struct Result {
        /// The authenticated identity, if any credentials were valid.
        var identity: Identity?
        /// Credentials were sent but none was valid (unknown, expired or revoked).
        var rejected: Bool
    }

    static func bearerToken(of request: Request) -> String? {
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                return String(parts[1]).trimmingCharacters(in: .whitespaces)
            }
        }
        if let token = request.uri.queryParameters.get("token"), !token.isEmpty {
            return token
        }
        return nil
    }

    static func sessionToken(of request: Request) -> String? {
        guard let value = request.cookies[sessionCookie]?.value, !value.isEmpty else { return nil }
        return value
    }

    static func identity(of request: Request, accounts: AccountStore) async -> Result {
        var rejected = false
        if let token = bearerToken(of: request) {
            if let identity = try? await accounts.identity(forToken: token) {
                return Result(identity: identity, rejected: false)
            }
            rejected = true
        }
        if let session = sessionToken(of: request) {
            if let username = try? await accounts.session(session) {
                return Result(identity: Identity(name: username, username: username, credential: .session), rejected: false)
            }
            rejected = true
        }
        return Result(identity: nil, rejected: rejected)
    }
}
