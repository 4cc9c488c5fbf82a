import Foundation
import Logging
import NIOCore
import SQLiteNIO
import Testing

@testable import SignalingServer

@Suite("Building blocks")
struct BuildingBlockTests {
    @Test("tokens are stored as the hex SHA-256 of the token (FIPS 180-4 test vectors), the format existing databases hold")
    func tokenHashVectors() {
        #expect(TokenHash.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(TokenHash.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            TokenHash.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        )
    }

    @Test("the database holds API tokens and sessions only as their SHA-256")
    func storedHashes() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let store = try await TestDatabase.accounts(dataDirectory: folder.path)
        let token = try await store.createToken(name: "gateway", username: nil)
        let session = try await store.createSession(username: "ada")
        let tokenRows = try await store.db.query("SELECT token_hash FROM api_tokens")
        let sessionRows = try await store.db.query("SELECT token_hash FROM sessions")
        await store.close()
        #expect(tokenRows.compactMap { $0["token_hash"]?.string } == [TokenHash.hex(token)])
        #expect(sessionRows.compactMap { $0["token_hash"]?.string } == [TokenHash.hex(session)])
        #expect(TokenHash.hex(token).count == 64)
    }

    @Test("a resume token is the id and its HMAC-SHA256 (RFC 4231 test case 2); tampering is refused")
    func resumeTokenVector() {
        let tokens = ResumeTokens(secret: Array("Jefe".utf8))
        let token = tokens.token(for: "what do ya want for nothing?")
        #expect(token == "what do ya want for nothing?.5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(tokens.id(from: token) == "what do ya want for nothing?")
        #expect(tokens.id(from: token.uppercased()) == nil)
        #expect(tokens.id(from: "what do ya want for nothing!.5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") == nil)
        #expect(tokens.id(from: "x.5bdcc146") == nil)
        #expect(tokens.id(from: "") == nil)
        #expect(ResumeTokens(secret: Array("Jeff".utf8)).id(from: token) == nil)
    }

    @Test("the resume secret is made once, private, and read back on the next start")
    func resumeSecretFile() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let logger = Logger(label: "vcall-test")
        let first = try ResumeTokens.load(dataDirectory: folder.path, logger: logger)
        let second = try ResumeTokens.load(dataDirectory: folder.path, logger: logger)
        #expect(first.token(for: "a1") == second.token(for: "a1"))
        let path = folder.path + "/" + ResumeTokens.fileName
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        // A damaged file is replaced by a new secret (old tokens stop working, the server still starts).
        try "not hex".write(toFile: path, atomically: true, encoding: .utf8)
        let third = try ResumeTokens.load(dataDirectory: folder.path, logger: logger)
        #expect(third.id(from: first.token(for: "a1")) == nil)
        #expect(try ResumeTokens.load(dataDirectory: folder.path, logger: logger).token(for: "a1") == third.token(for: "a1"))
    }

    @Test("random tokens are hex of the asked length and differ")
    func randomTokens() {
        let a = RandomToken.hex(byteCount: 32)
        let b = RandomToken.hex(byteCount: 32)
        let allHex = a.allSatisfy { $0.isHexDigit }
        #expect(a.count == 64)
        #expect(allHex)
        #expect(a != b)
    }

    @Test("the rate limiter allows a burst, then refills over time")
    func rateLimiter() {
        let start = NIODeadline.now()
        var limiter = RateLimiter(perSecond: 10, burst: 3, now: start)
        var allowed: [Bool] = []
        for _ in 0..<4 { allowed.append(limiter.allow(now: start)) }
        #expect(allowed == [true, true, true, false])
        let refilled = limiter.allow(now: start + .milliseconds(150))
        let empty = limiter.allow(now: start + .milliseconds(160))
        #expect(refilled)
        #expect(!empty)
        let warnings = [
            limiter.shouldWarn(now: start), limiter.shouldWarn(now: start + .milliseconds(500)),
            limiter.shouldWarn(now: start + .milliseconds(1100)),
        ]
        #expect(warnings == [true, false, true])
    }

    @Test("the socket's frame limit stays above the message limit")
    func frameLimitAboveMessageLimit() {
        var configuration = VCallServerConfiguration()
        #expect(configuration.webSocketMaxFrameSize > configuration.maxMessageBytes)
        #expect(configuration.webSocketMaxFrameSize > 16 * 1024)
        configuration.maxMessageBytes = 4 << 20
        #expect(configuration.webSocketMaxFrameSize > configuration.maxMessageBytes)
    }

    @Test("presence is coalesced over 50 ms up to 100 users, then longer with more users, at most 250 ms")
    func presenceInterval() {
        #expect(SignalingHub.presenceInterval(visibleUsers: 0) == .milliseconds(50))
        #expect(SignalingHub.presenceInterval(visibleUsers: 100) == .milliseconds(50))
        #expect(SignalingHub.presenceInterval(visibleUsers: 300) == .milliseconds(150))
        #expect(SignalingHub.presenceInterval(visibleUsers: 500) == .milliseconds(250))
        #expect(SignalingHub.presenceInterval(visibleUsers: 5_000) == .milliseconds(250))
    }
}
