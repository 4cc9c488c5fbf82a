import CGStreamer

/// An element's state.
public enum State: Int, Sendable, CustomStringConvertible {
    case voidPending = 0, null, ready, paused, playing

    init(_ state: GstState) { self = State(rawValue: Int(state.rawValue)) ?? .voidPending }
    var gst: GstState { GstState(rawValue: UInt32(rawValue)) }

    public var description: String {
        switch self {
        case .voidPending: "VOID_PENDING"
        case .null: "NULL"
        case .ready: "READY"
        case .paused: "PAUSED"
        case .playing: "PLAYING"
        }
    }
}

/// How a state change went when it did not fail.
public enum StateChangeResult: Sendable {
    case success
    /// The change goes on in the background (for example a live source waiting to preroll).
    case async
    /// Succeeded, but the element cannot preroll (live sources).
    case noPreroll
}
