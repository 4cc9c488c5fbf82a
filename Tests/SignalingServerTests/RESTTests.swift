
import Foundation
import HTTPTypes
import Hummingbird
import SignalingProtocol
@testable import SignalingServer
import Testing
import WebRTCTypes

extension ServerTests {
    @Suite("REST API, metrics and the web app's files", .timeLimit(.minutes(1)))
    struct RESTTests {
        @Test("GET /api/rooms lists active rooms with capacity and members")
        func rooms() async throws {
            try await TestServer.run { server in
                let empty = try await server.request(.get, "/api/rooms")
                #expect(empty.status == .ok)
                #expect(empty.text == #"{"rooms":[]}"#)
                let a = try await server.connect()
                _ = try await a.join("listed", name: "Ada", capacity: 4)
                let listed = try await server.request(.get, "/api/rooms")
                let rooms = try #require(listed.json?["rooms"] as? [[String: Any]])
                #expect(rooms.count == 1)
                #expect(rooms[0]["roomId"] as? String == "listed")
                #expect(rooms[0]["capacity"] as? Int == 4)
                let members = try #require(rooms[0]["members"] as? [[String: Any]])
                #expect(members.first?["id"] as? String == a.id)
                #expect(members.first?["name"] as? String == "Ada")
                await a.close()
            }
        }

        @Test("healthz answers ok and metrics count connections, relays and errors by code")
        func healthAndMetrics() async throws {
            try await TestServer.run { server in
                #expect(try await server.request(.get, "/healthz").status == .ok)
            let unknown = try await server.request(.get, "/api/nothing-here")
            #expect(unknown.status == .notFound)
            #expect((unknown.json?["error"] as? [String: Any])?["code"] as? String == "not-found")
                let a = try await server.connect()
                let b = try await server.connect()
                _ = try await a.join("m")
                _ = try await b.join("m")
                try await a.send(.offer(to: nil, offer: RTCSessionDescriptionInit(type: .offer, sdp: "x")))
                _ = try await b.next("offer")
                try await a.sendRaw("nope")
                _ = try await a.nextError()
                let metrics = try await server.request(.get, "/metrics")
                #expect(metrics.status == .ok)
                #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
                #expect(metrics.text.contains("vcall_connections 2"))
                #expect(metrics.text.contains("vcall_rooms 1"))
                #expect(metrics.text.contains("vcall_messages_relayed_total 1"))
                #expect(metrics.text.contains(#"vcall_errors_total{code="bad-json"} 1"#))
                await a.close()
                await b.close()
            }
        }

        @Test("the web app is served: / is index.html, /r/<id> is room.html, JS as text/javascript")
        func staticFiles() async throws {
            let root = try TemporaryDirectory()
            defer { root.remove() }
            try "<h1>home</h1>".write(toFile: root.path + "/index.html", atomically: true, encoding: .utf8)
            try "<h1>room</h1>".write(toFile: root.path + "/room.html", atomically: true, encoding: .utf8)
            try FileManager.default.createDirectory(atPath: root.path + "/js", withIntermediateDirectories: true)
            try "export const x = 1;".write(toFile: root.path + "/js/app.js", atomically: true, encoding: .utf8)
            try "body{}".write(toFile: root.path + "/app.css", atomically: true, encoding: .utf8)
            try await TestServer.run({ $0.webRoot = root.path }) { server in
                let home = try await server.request(.get, "/")
                #expect(home.text == "<h1>home</h1>")
                #expect(home.headers[.contentType] == "text/html; charset=utf-8")
                #expect(try await server.request(.get, "/r/abc-123").text == "<h1>room</h1>")
                let js = try await server.request(.get, "/js/app.js")
                #expect(js.headers[.contentType] == "text/javascript; charset=utf-8")
                #expect(try await server.request(.get, "/app.css").headers[.contentType] == "text/css; charset=utf-8")
                #expect(try await server.request(.get, "/missing.js").status == .notFound)
                #expect(try await server.request(.get, "/../../etc/passwd").status == .notFound)
                #expect(try await server.request(.get, "/%2e%2e/%2e%2e/etc/passwd").status == .notFound)
            }
        }

        @Test("the bundled web app folder ships with the package")
        func bundledRoot() throws {
            let root = try #require(StaticFileMiddleware<BasicRequestContext>.bundledRoot())
            #expect(FileManager.default.fileExists(atPath: root.path))
        }

        @Test("path mapping: /, /r/<id>, files by path, nothing hidden or under /api")
        func pathMapping() {
            typealias M = StaticFileMiddleware<BasicRequestContext>
            #expect(M.relativePath(for: "/") == "index.html")
            #expect(M.relativePath(for: "/r/x1") == "room.html")
            #expect(M.relativePath(for: "/js/app.js") == "js/app.js")
            #expect(M.relativePath(for: "/.env") == nil)
            #expect(M.relativePath(for: "/a/../b") == nil)
            #expect(M.relativePath(for: "/api/me") == nil)
        }
    }
}
