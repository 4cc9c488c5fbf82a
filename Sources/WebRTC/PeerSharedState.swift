import Synchronization

/// What a `WebRTCPeer` shares with its signal handlers on GStreamer's threads: the local m-line ids and
/// ICE username fragments, the last state reported per property, the remote streams' retransmission
/// settings, the frame counters and the send gate. `Sendable` through its Mutex; handlers only take it briefly.
final class PeerSharedState: Sendable {
    private struct Inner {
        var localMids: [String?] = []
        var localUsernameFragments: [String?] = []
        var states: [String: String] = [:]
        var remoteRetransmissions: [UInt32: Bool] = [:]
        var srtpKeysSet = false
        /// The tracks the far side sends, closed with the peer.
        var receivedTracks: [ReceivedTrack] = []
    }
    private let inner = Mutex(Inner())
    let counters = TrafficCounters()
    let sendGate = SendGate()

    /// The m-lines of the local description just applied: their mids and ICE username fragments.
    func setLocalDescription(_ summary: SDPSummary) {
        inner.withLock {
            $0.localMids = summary.mids
            $0.localUsernameFragments = summary.usernameFragments
        }
    }

    /// The mid and ICE username fragment of the local m-line at `index`, for a candidate gathered on it.
    func localMLine(at index: Int) -> (mid: String?, usernameFragment: String?) {
        inner.withLock { inner in
            (index < inner.localMids.count ? inner.localMids[index] : nil,
             index < inner.localUsernameFragments.count ? inner.localUsernameFragments[index] : nil)
        }
    }

    /// Whether the jitterbuffer of a remote SSRC asks for retransmissions, by the latest remote description.
    func setRemoteRetransmissions(_ retransmissions: [UInt32: Bool]) { inner.withLock { $0.remoteRetransmissions = retransmissions } }

    /// nil for an SSRC the remote description does not announce.
    func retransmission(forRemoteSSRC ssrc: UInt32) -> Bool? { inner.withLock { $0.remoteRetransmissions[ssrc] } }

    /// Records a state; false if it is the value already reported, or a connection state of `new` or `connecting`
    /// from webrtcbin after the SRTP keys made it `connected`.
    /// `report` runs under the lock, so events leave in the order the states were recorded.
    func changeState(_ property: String, to value: String, reporting report: () -> Void = {}) -> Bool {
        inner.withLock { inner in
            guard inner.states[property] != value else { return false }
            if property == "connection-state", inner.srtpKeysSet, inner.states[property] == "connected",
               value == "new" || value == "connecting" {
                return false
            }
            inner.states[property] = value
            report()
            return true
        }
    }

    /// The SRTP keys are set, so the transport is connected: true if that makes the connection state `connected`
    /// (webrtcbin had not said so yet).
    func markSRTPKeysSet(reporting report: () -> Void) -> Bool {
        inner.withLock { inner in
            inner.srtpKeysSet = true
            switch inner.states["connection-state"] {
            case nil, "new", "connecting":
                inner.states["connection-state"] = "connected"
                report()
                return true
            default:
                return false
            }
        }
    }

    func state(_ property: String) -> String? { inner.withLock { $0.states[property] } }

    func addReceivedTrack(_ track: ReceivedTrack) { inner.withLock { $0.receivedTracks.append(track) } }

    /// The received tracks, forgotten here: the peer is closing them.
    func takeReceivedTracks() -> [ReceivedTrack] {
        inner.withLock { inner in
            defer { inner.receivedTracks.removeAll() }
            return inner.receivedTracks
        }
    }
}
