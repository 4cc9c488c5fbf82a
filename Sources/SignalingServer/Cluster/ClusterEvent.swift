import Foundation

/// A client as the other nodes see it: enough to list it in `online-users`, count it in its room, tell its
/// room it joined or left, and let it resume its id on another node.
struct ClusterMember: Codable, Sendable, Equatable {
    var id: String
    /// The node its socket is on.
    var node: String
    var name: String
    /// What its credentials proved: a resume is handed over only to the same identity.
    var identity: Identity?
    var roomId: String?
    /// Its room's capacity, so a node that has not seen the room yet creates it alike.
    var capacity: Int?
    var relay: Bool
    /// Listed in `online-users` (not while its socket is gone, nor a guest on a login-only server).
    var visible: Bool
    /// Milliseconds since 1970 when it connected: the order of `online-users` across nodes.
    var connectedAt: Int64

    /// The account, for a user's session or token.
    var username: String? { identity?.username }
}

/// What one node tells the others through the outbox table. Each node applies the others' events in the
/// outbox's order (see `ClusterBus`).
enum ClusterEvent: Codable, Sendable, Equatable {
    /// A client of the sending node appeared or changed (name, room, relay role, visibility), or a resume
    /// moved an id to the sending node.
    case member(ClusterMember)
    /// A client of `node` left for good.
    case gone(id: String, node: String)
    /// A server message (a complete JSON text frame) for the client `to`; `from` is the sender, told if it
    /// cannot be delivered.
    case frame(to: String, from: String?, text: String)
    /// A node started and asks the others for their clients.
    case hello(node: String)
    /// Every client of `node`, in answer to `hello`: replaces what the receiver knew of that node.
    case snapshot(node: String, members: [ClusterMember])

}

/// An event with where it goes: every other node, or one.
struct ClusterEnvelope: Sendable {
    var event: ClusterEvent
    /// nil: every other node.
    var targetNode: String?
    /// When it was queued (milliseconds since 1970): how long delivery took, and when to give up on it.
    var queuedAt: Int64
}

func nowMilliseconds() -> Int64 {
    Int64(Date().timeIntervalSince1970 * 1000)
}
