import GStreamer
import Synchronization

/// Holds a peer's outgoing media back until its connection is up.
///
/// Before DTLS completes, webrtcbin blocks the RTP it is given; the per-peer queue fills and drops its
/// oldest frames, so the first packets a new peer would get are stale delta frames, undecodable without
/// the keyframe the queue dropped. Dropping everything before the payloaders until `connected`, and then
/// starting each video track on a keyframe (its `KeyframeWait`), gives the peer a fresh picture at once
/// and makes the sent-frame counts mean frames that could be decoded.
final class SendGate: Sendable {
    private let isOpen = Atomic<Bool>(false)
    /// The video tracks' payloader sink pads and waits, until the gate opens and asks through them.
    private let videoTracks = Mutex<[(pad: Pad, wait: KeyframeWait)]>([])

    /// Registers a video track: when the gate opens, it asks for the track's keyframe at once.
    func addVideo(_ pad: Pad, wait: KeyframeWait) {
        guard !isOpen.load(ordering: .acquiring) else { return }
        videoTracks.withLock { $0.append((pad, wait)) }
    }

    func open() {
        guard !isOpen.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // Asked now, not at the next frame: the far side waits a frame interval less for its first picture,
        // more when frames come late. (An upstream force-key-unit only queues a request in the encoder.)
        let tracks = videoTracks.withLock { tracks in
            defer { tracks.removeAll() }
            return tracks
        }
        for (pad, wait) in tracks where pad.pushEvent(.upstreamForceKeyUnit(allHeaders: true)) {
            wait.markAsked()
        }
    }

    /// Decides for one buffer entering a payloader; video passes only from a keyframe on (`wait`), which
    /// calls `requestKeyframe` (asking upstream) when one is needed.
    func admit(_ buffer: BufferInfo?, kind: MediaKind, wait: KeyframeWait, requestKeyframe: () -> Void) -> Bool {
        guard isOpen.load(ordering: .acquiring) else { return false }
        guard kind == .video, let buffer else { return true }
        return wait.admit(isDeltaUnit: buffer.isDeltaUnit, requestKeyframe: requestKeyframe)
    }
}

/// A video track's start: delta frames are dropped until a keyframe passes, asking upstream for one at
/// the first delta frame (unless already asked) and every 15th after it, in case a request was lost.
/// `restart()` starts over, for a track that changes source.
final class KeyframeWait: Sendable {
    /// Delta frames dropped while waiting; -1 once a keyframe passed.
    private let waited = Atomic<Int>(0)
    private let asked = Atomic<Bool>(false)

    func markAsked() { asked.store(true, ordering: .releasing) }

    func restart() {
        asked.store(false, ordering: .releasing)
        waited.store(0, ordering: .releasing)
    }

    func admit(isDeltaUnit: Bool, requestKeyframe: () -> Void) -> Bool {
        let count = waited.load(ordering: .acquiring)
        if count < 0 { return true }
        if !isDeltaUnit {
            waited.store(-1, ordering: .releasing)
            return true
        }
        let ask = count == 0 ? !asked.load(ordering: .acquiring) : count % 15 == 0
        if ask { requestKeyframe() }
        waited.store(count + 1, ordering: .releasing)
        return false
    }
}
