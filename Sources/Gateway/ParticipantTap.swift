import GStreamer
import Synchronization
import WebRTC

/// One remote participant's received tracks, each fed into a tee of its own, so that any number of
/// consumers (recorders, decoders, relays) can attach and detach during one call.
///
/// Why tees: a `RemoteTrack` pad can be linked once, and the `record start` / `record stop` commands
/// start and stop recordings repeatedly while the call goes on. So every remote track is linked at once
/// to `tee allow-not-linked=true` (which drops its data while nothing is attached), and a
/// `ParticipantRecorder` attaches a branch to a tee source pad and later detaches it, without touching
/// the webrtcbin side. A new track stays held (`RemoteTrack.holdLimit`) until the first consumer attaches,
/// so a recording that starts with the call begins with the sender's first keyframe.
///
/// ```swift
/// let tap = ParticipantTap(pipeline: peer.pipeline, participantID: "u-42", displayName: "Alice")
/// for await event in peer.events {
///     if case .remoteTrack(let track) = event { try tap.add(track) }
/// }
/// ```
public final class ParticipantTap: Sendable {
    public let pipeline: Pipeline
    public let participantID: String
    public let displayName: String

    private struct State {
        var tracks: [TeedTrack] = []
        var listeners: [Int: @Sendable (TeedTrack) -> Void] = [:]
        var nextListener = 0
        var removed = false
    }
    private let state = Mutex(State())
    private static let counter = Atomic<Int>(0)

    public init(pipeline: Pipeline, participantID: String, displayName: String) {
        self.pipeline = pipeline
        self.participantID = participantID
        self.displayName = displayName
    }

    /// The tracks added so far.
    public var tracks: [TeedTrack] { state.withLock { $0.tracks } }

    /// Links `track` into a new tee (added to the pipeline and started), lets its media through and tells
    /// the attached consumers (recorders) about it.
    @discardableResult
    public func add(_ track: RemoteTrack) throws -> TeedTrack {
        let number = Self.counter.add(1, ordering: .relaxed).newValue
        let tee = try Element(factory: "tee", name: "vcall-tap\(number)-\(track.kind.rawValue)-tee")
        try tee.set("allow-not-linked", true)
        try pipeline.add(tee)
        try tee.syncStateWithParent()
        guard let sink = tee.staticPad("sink") else { throw GatewayError.recording("the tee for \(track) has no sink pad") }
        // Still held: the first consumer to attach releases it, so a recorder started with the call gets
        // the track's first packets (the sender's first keyframe) instead of what is left after setup.
        try track.link(to: sink, releasing: false)
        let teed = TeedTrack(track: track, tee: tee)
        let listeners = try state.withLock { state -> [@Sendable (TeedTrack) -> Void] in
            guard !state.removed else { throw GatewayError.recording("\(participantID)'s media tap was removed; make a new one") }
            state.tracks.append(teed)
            return Array(state.listeners.values)
        }
        for listener in listeners { listener(teed) }
        return teed
    }

    /// Calls `listener` with every track added from now on; returns the tracks already there.
    func subscribe(_ listener: @escaping @Sendable (TeedTrack) -> Void) -> (id: Int, existing: [TeedTrack]) {
        state.withLock { state in
            defer { state.nextListener += 1 }
            state.listeners[state.nextListener] = listener
            return (state.nextListener, state.tracks)
        }
    }

    func unsubscribe(_ id: Int) { _ = state.withLock { $0.listeners.removeValue(forKey: id) } }

    /// Removes the tees (when the participant has left and its recorders have stopped).
    public func remove() {
        let tracks = state.withLock { state in
            defer { state.tracks.removeAll(); state.removed = true }
            return state.tracks
        }
        for track in tracks {
            if let sink = track.tee.staticPad("sink"), let peer = sink.peer { try? peer.unlink(sink) }
            _ = try? track.tee.setState(.null)
            try? pipeline.remove(track.tee)
        }
    }
}

/// A remote track and the tee it feeds.
public struct TeedTrack: Sendable, CustomStringConvertible {
    public let track: RemoteTrack
    /// `tee allow-not-linked=true`; request a `src_%u` pad to consume the track's RTP.
    public let tee: Element

    public var kind: MediaKind { track.kind }
    public var encodingName: String { track.encodingName }
    public var description: String { "\(track) via \(tee.name)" }
}
