import Foundation
import HTTPTypes
import SignalingProtocol
import Testing

@testable import SignalingServer

extension ServerTests {
    @Suite("Accounts, sessions and API tokens", .timeLimit(.minutes(1)))
    struct AuthTests {
        static let credentials = #"{"username":"ada","password":"correct horse"}"#

        @Test("register logs in, me answers the user, logout ends the session")
        func registerLoginLogout() async throws {
            try await TestServer.run { server in
                let registered = try await server.request(.post, "/api/register", json: Self.credentials)
                #expect(registered.status == .created)
                #expect(registered.json?["username"] as? String == "ada")
                let setCookie = try #require(registered.headers[values: .setCookie].first)
                #expect(setCookie.contains("HttpOnly"))
                #expect(setCookie.contains("SameSite=Lax"))
                let cookie = try #require(registered.sessionCookie)

                let me = try await server.request(.get, "/api/me", headers: [.cookie: cookie])
                #expect(me.status == .ok)
                #expect(me.json?["username"] as? String == "ada")

                let login = try await server.request(.post, "/api/login", json: Self.credentials)
                #expect(login.status == .ok)
                #expect(login.sessionCookie != nil)

                #expect(try await server.request(.post, "/api/logout", headers: [.cookie: cookie]).status == .noContent)
                #expect(try await server.request(.get, "/api/me", headers: [.cookie: cookie]).status == .unauthorized)
                #expect(try await server.request(.get, "/api/me").status == .unauthorized)
            }
        }

        @Test("wrong passwords, taken names and malformed bodies get JSON errors with proper statuses")
        func accountErrors() async throws {
            try await TestServer.run { server in
                try await server.request(.post, "/api/register", json: Self.credentials)
                let taken = try await server.request(.post, "/api/register", json: Self.credentials)
                #expect(taken.status == .conflict)
                #expect((taken.json?["error"] as? [String: Any])?["code"] as? String == "username-taken")
                let wrong = try await server.request(.post, "/api/login", json: #"{"username":"ada","password":"wrong password"}"#)
                #expect(wrong.status == .unauthorized)
                #expect((wrong.json?["error"] as? [String: Any])?["code"] as? String == "invalid-credentials")
                let nobody = try await server.request(.post, "/api/login", json: #"{"username":"nobody","password":"whatever1"}"#)
                #expect(nobody.status == .unauthorized)
                let short = try await server.request(.post, "/api/register", json: #"{"username":"bob","password":"short"}"#)
                #expect(short.status == .badRequest)
                let malformed = try await server.request(.post, "/api/login", json: "{")
                #expect(malformed.status == .badRequest)
                #expect((malformed.json?["error"] as? [String: Any])?["message"] as? String != nil)
                #expect(try await server.request(.post, "/api/tokens", json: #"{"name":"x"}"#).status == .unauthorized)
            }
        }

        @Test("a session cookie authenticates the WebSocket and survives a server restart on the same database")
        func sessionSurvivesRestart() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let cookie = try await TestServer.run(dataDirectory: directory.path) { server in
                let response = try await server.request(.post, "/api/register", json: Self.credentials)
                return try #require(response.sessionCookie)
            }
            try await TestServer.run(dataDirectory: directory.path, { $0.requireLogin = true }) { server in
                let me = try await server.request(.get, "/api/me", headers: [.cookie: cookie])
                #expect(me.status == .ok)
                #expect(me.json?["username"] as? String == "ada")
                let peer = try await server.connect(headers: [.cookie: cookie])
                #expect(peer.name == "ada")
                _ = try await peer.join("members-only")
                await peer.close()
            }
        }

        @Test("API tokens work as a Bearer header or ?token=, and a wrong token is unauthorized")
        func apiTokens() async throws {
            try await TestServer.run({ $0.requireLogin = true }) { server in
                let cookie = try #require(try await server.request(.post, "/api/register", json: Self.credentials).sessionCookie)
                let created = try await server.request(.post, "/api/tokens", json: #"{"name":"my-gateway"}"#, headers: [.cookie: cookie])
                #expect(created.status == .created)
                let token = try #require(created.json?["token"] as? String)
                #expect(created.json?["name"] as? String == "my-gateway")

                let bearer = try await server.connect(headers: [.authorization: "Bearer \(token)"])
                #expect(bearer.name == "ada")
                _ = try await bearer.join("tokens")

                let query = try await server.connect(query: "?token=\(token)")
                _ = try await query.join("tokens")

                #expect(try await server.request(.get, "/api/me", headers: [.authorization: "Bearer \(token)"]).status == .ok)

                let wrong = try await server.connect(headers: [.authorization: "Bearer vct_not-a-real-token"])
                #expect(try await wrong.nextError().code == .unauthorized)
                try await wrong.send(.joinRoom(roomId: "tokens", name: nil, capacity: nil))
                #expect(try await wrong.nextError().code == .unauthorized)

                let wrongQuery = try await server.connect(query: "?token=bogus")
                #expect(try await wrongQuery.nextError().code == .unauthorized)
                for peer in [bearer, query, wrong, wrongQuery] { await peer.close() }
            }
        }

        @Test("a command-line token (no user) joins under its own name; an expired token is refused")
        func commandLineToken() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let store = try await TestDatabase.accounts(dataDirectory: directory.path)
            let token = try await store.createToken(name: "gateway", username: nil)
            let expired = try await store.createToken(name: "old", username: nil, lifetime: .seconds(-10))
            await store.close()
            try await TestServer.run(dataDirectory: directory.path, { $0.requireLogin = true }) { server in
                let gateway = try await server.connect(headers: [.authorization: "Bearer \(token)"])
                #expect(gateway.name == "gateway")
                _ = try await gateway.join("recorded")
                let old = try await server.connect(headers: [.authorization: "Bearer \(expired)"])
                #expect(try await old.nextError().code == .unauthorized)
                await gateway.close()
                await old.close()
            }
        }

        @Test("with login required, guests neither see nor appear in online-users")
        func guestsHiddenWhenLoginRequired() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let store = try await TestDatabase.accounts(dataDirectory: directory.path)
            let token = try await store.createToken(name: "member", username: nil)
            await store.close()
            try await TestServer.run(dataDirectory: directory.path, { $0.requireLogin = true }) { server in
                let member = try await server.connect(query: "?token=\(token)")
                let guest = try await server.connect()
                let users = try await member.onlineUsers { _ in true }
                #expect(users.map(\.id) == [member.id])
                #expect(try await guest.received("online-users").isEmpty)
                await member.close()
                await guest.close()
            }
        }
    }
}
