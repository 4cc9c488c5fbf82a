/// What went wrong in a call, said so that a user knows what to do next.
public enum GatewayError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A media source could not be used (no camera, no display, a bad pipeline file); the call keeps its current source.
    case source(String)
    /// A recording could not be started, written or finalized.
    case recording(String)
    /// The signaling server refused or dropped us.
    case signaling(String)
    /// A command or flag that does not make sense.
    case usage(String)

    public var description: String {
        switch self {
        case .source(let text), .recording(let text), .signaling(let text), .usage(let text): text
        }
    }
}
