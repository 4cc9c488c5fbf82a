import GStreamer
import Synchronization

/// Holds a peer's outgoing media back until its connection is up, then starts video on a keyframe.
///
/// Before DTLS completes, webrtcbin blocks the RTP it is given; the per-peer queue fills and drops its
/// oldest frames, so the first packets a new peer would get are stale delta frames, undecodable without
/// the keyframe the queue dropped. Dropping everything before the payloader until `connected` and then
/// asking the encoder for a keyframe (dropping delta frames until it comes) gives the peer a fresh
/// picture at once and makes the sent-frame counts mean frames that could be decoded.
final class SendGate: Sendable {
    private let isOpen = Atomic<Bool>(false)
    /// Video frames seen since the gate opened while still waiting for a keyframe.
    private let deltasWhileWaiting = Atomic<Int>(-1)
    /// The video payloaders' sink pads, until the gate opens and asks through them for a keyframe.
    private let videoPads = Mutex<[Pad]>([])
    private let askedAtOpen = Atomic<Bool>(false)

    /// Registers a video branch's payloader sink pad, through which the keyframe is asked for on opening.
    func addVideo(_ pad: Pad) {
        videoPads.withLock { $0.append(pad) }
    }

    func open() {
        guard !isOpen.exchange(true, ordering: .acquiringAndReleasing) else { return }
        deltasWhileWaiting.store(0, ordering: .releasing)
        // Asked now, not at the next frame: the far side waits a frame interval less for its first picture,
        // more when frames come late. (An upstream force-key-unit only queues a request in the encoder.)
        let pads = videoPads.withLock { pads in
            defer { pads.removeAll() }
            return pads
        }
        for pad in pads {
            if pad.pushEvent(.upstreamForceKeyUnit(allHeaders: true)) { askedAtOpen.store(true, ordering: .releasing) }
        }
    }

    /// Decides for one buffer entering a payloader; calls `requestKeyframe` (which asks the encoder
    /// upstream) when one is needed.
    func admit(_ buffer: BufferInfo?, kind: MediaKind, requestKeyframe: () -> Void) -> Bool {
        guard isOpen.load(ordering: .acquiring) else { return false }
        guard kind == .video, let buffer else { return true }
        let waited = deltasWhileWaiting.load(ordering: .acquiring)
        if waited < 0 { return true }
        if !buffer.isDeltaUnit {
            deltasWhileWaiting.store(-1, ordering: .releasing)
            return true
        }
        // Ask (unless opening did) and again every 15 frames in case the request was lost.
        let ask = waited == 0 ? !askedAtOpen.load(ordering: .acquiring) : waited % 15 == 0
        if ask { requestKeyframe() }
        deltasWhileWaiting.store(waited + 1, ordering: .releasing)
        return false
    }
}
