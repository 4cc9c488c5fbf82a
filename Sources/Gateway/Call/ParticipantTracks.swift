import Synchronization
import WebRTC

/// One remote participant's received tracks, and who wants to hear of the next ones.
///
/// Each `ReceivedTrack` owns its media (it holds, fans out and throttles keyframe requests); this only
/// groups a participant's tracks so that a consumer that follows a person rather than a track (a
/// recorder started with `record start`, which also takes a track that arrives later) can `subscribe`.
///
/// ```swift
/// let tracks = ParticipantTracks(participantID: "u-42", displayName: "Alice")
/// tracks.add(track)                                  // from CallEvent.remoteTrack
/// let (id, existing) = tracks.subscribe { track in … }
/// tracks.unsubscribe(id)
/// ```
public final class ParticipantTracks: Sendable {
    public let participantID: String
    public let displayName: String

    private struct State {
        var tracks: [ReceivedTrack] = []
        var listeners: [Int: @Sendable (ReceivedTrack) -> Void] = [:]
        var nextListener = 0
    }
    private let state = Mutex(State())

    public init(participantID: String, displayName: String) {
        self.participantID = participantID
        self.displayName = displayName
    }

    /// The tracks added so far.
    public var tracks: [ReceivedTrack] { state.withLock { $0.tracks } }

    /// Adds a track and tells the subscribers about it.
    public func add(_ track: ReceivedTrack) {
        let listeners = state.withLock { state in
            state.tracks.append(track)
            return Array(state.listeners.values)
        }
        for listener in listeners { listener(track) }
    }

    /// Calls `listener` with every track added from now on; returns the tracks already there.
    public func subscribe(_ listener: @escaping @Sendable (ReceivedTrack) -> Void) -> (id: Int, existing: [ReceivedTrack]) {
        state.withLock { state in
            defer { state.nextListener += 1 }
            state.listeners[state.nextListener] = listener
            return (state.nextListener, state.tracks)
        }
    }

    public func unsubscribe(_ id: Int) { _ = state.withLock { $0.listeners.removeValue(forKey: id) } }
}
