/// The machine-readable code of an `error` message.
///
/// Every error keeps the WebSocket open; the client may fix its message and send it again.
///
/// ```swift
/// let error = ServerMessage.error(code: .notInRoom, message: "join a room first")
/// ```
public enum ErrorCode: String, Codable, Sendable, CaseIterable {
    /// The frame is not valid JSON (or not UTF-8 text).
    case badJSON = "bad-json"
    /// The frame is a JSON object whose `type` is not a client message type.
    case unknownType = "unknown-type"
    /// A field is missing, has the wrong type or an invalid value.
    case invalidMessage = "invalid-message"
    /// The message needs the sender to be in a room first.
    case notInRoom = "not-in-room"
    /// `to` names no member of the sender's room (or, for calls, no online user).
    case unknownPeer = "unknown-peer"
    /// The message is larger than the server's limit.
    case tooLarge = "too-large"
    /// The connection sent more messages than its rate limit allows; the message was dropped.
    case rateLimited = "rate-limited"
    /// The action needs a logged-in session or an API token, or the credentials given are invalid.
    case unauthorized = "unauthorized"
    /// `join-room` with `role: "relay"` for a room that already has another relay; nothing changed.
    case relayTaken = "relay-taken"
    /// A message for a member on another server node could not be passed on (the nodes' database was
    /// unreachable for seconds); send it again.
    case undeliverable = "undeliverable"
    /// The server cannot take connections now (its database is unreachable); the socket is closed after this
    /// error. Reconnect in a few seconds, or to another node.
    case unavailable = "unavailable"
    /// `recording-request` without `to` on a server with no recording workers (they need PostgreSQL), or a stop
    /// when the room has no recording job; nothing changed.
    case noRecorder = "no-recorder"
}

/// A protocol error: a code and a sentence that says what happened and what to do.
public struct SignalingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// The `error` message that reports this error to a client.
    public var serverMessage: ServerMessage { .error(code: code, message: message) }
}
