import NIOCore
import Testing

@testable import SignalingServer

@Suite("Building blocks")
struct BuildingBlockTests {
    @Test("SHA-256 matches the FIPS 180-4 test vectors")
    func sha256() {
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        )
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
}
