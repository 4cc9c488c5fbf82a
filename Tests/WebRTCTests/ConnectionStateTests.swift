import Synchronization
import Testing
@testable import WebRTC

/// The connection state a `WebRTCPeer` reports: webrtcbin's, except that set SRTP keys mean `connected` even when
/// webrtcbin's own state stays `connecting` (seen now and then on a loaded 2-core machine, while media flowed).
@Suite("Connection state")
struct ConnectionStateTests {
    /// Feeds webrtcbin's states (or "keys" for dtlssrtpenc's on-key-set) and returns the states reported.
    private func reported(_ inputs: [String]) -> [String] {
        let shared = PeerSharedState()
        let events = Mutex<[String]>([])
        for input in inputs {
            if input == "keys" {
                _ = shared.markSRTPKeysSet(reporting: { events.withLock { $0.append("connected") } })
            } else {
                _ = shared.changeState("connection-state", to: input, reporting: { events.withLock { $0.append(input) } })
            }
        }
        return events.withLock { $0 }
    }

    @Test("webrtcbin's own states are reported once each; keys set after `connected` change nothing")
    func ordinary() {
        #expect(reported(["new", "connecting", "connected", "connected", "keys"]) == ["new", "connecting", "connected"])
        #expect(reported(["connecting", "keys", "connected"]) == ["connecting", "connected"])
    }

    @Test("set SRTP keys report `connected` when webrtcbin's state stays `connecting`")
    func stuckConnecting() {
        #expect(reported(["new", "connecting", "keys", "connecting"]) == ["new", "connecting", "connected"])
    }

    @Test("a failure after the keys is reported, and so is connecting again after it")
    func failureAfterKeys() {
        #expect(reported(["connecting", "keys", "failed", "connecting", "connected"])
            == ["connecting", "connected", "failed", "connecting", "connected"])
    }
}
