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

/// A run of events as one outbox row's text: `F<n>:<to><n>:<from><n>:<frame text>` for a frame (its text as
/// it is, not escaped again) and `E<n>:<JSON>` for any other event, each `<n>` the byte count of what follows
/// the colon. One row per batch keeps PostgreSQL's work per message small (a row per message made the
/// ordered insert the cross-node bottleneck).
enum ClusterBatch {
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    static func pack(_ events: [ClusterEvent]) throws -> String {
        let encoder = JSONEncoder()
        var text = ""
        func field(_ value: String) {
            text += String(value.utf8.count)
            text += ":"
            text += value
        }
        for event in events {
            if case .frame(let to, let from, let frame) = event {
                text += "F"
                field(to)
                field(from ?? "")
                field(frame)
            } else {
                text += "E"
                field(String(decoding: try encoder.encode(event), as: UTF8.self))
            }
        }
        return text
    }

    static func unpack(_ text: String) throws -> [ClusterEvent] {
        let decoder = JSONDecoder()
        var bytes = Array(text.utf8)[...]
        func field() throws -> String {
            guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")),
                  let count = Int(String(decoding: bytes[bytes.startIndex..<colon], as: UTF8.self)), count >= 0,
                  colon + 1 + count <= bytes.endIndex
            else { throw Malformed(description: "a field's length is missing or runs past the end") }
            let value = String(decoding: bytes[(colon + 1)..<(colon + 1 + count)], as: UTF8.self)
            bytes = bytes[(colon + 1 + count)...]
            return value
        }
        var events: [ClusterEvent] = []
        while let tag = bytes.first {
            bytes = bytes.dropFirst()
            switch tag {
            case UInt8(ascii: "F"):
                let to = try field()
                let from = try field()
                events.append(.frame(to: to, from: from.isEmpty ? nil : from, text: try field()))
            case UInt8(ascii: "E"):
                events.append(try decoder.decode(ClusterEvent.self, from: Data(try field().utf8)))
            default:
                throw Malformed(description: "unknown event tag \(tag)")
            }
        }
        return events
    }
}
