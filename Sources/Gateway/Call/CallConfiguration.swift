import Foundation
import SignalingProtocol
import WebRTC
import WebRTCTypes

public struct CallConfiguration: Sendable {
    public var room: String
    /// The server's WebSocket, e.g. `ws://127.0.0.1:8080/ws`.
    public var serverURL: URL
    public var name: String?
    public var token: String?
    /// STUN/TURN servers in addition to those the server announces in `welcome`.
    public var iceServers: [RTCIceServer] = []
    /// How long an existing member waits for a newcomer's offer before offering itself (as the web app).
    public var firstOfferTimeout: Duration = .seconds(5)
    /// The receive jitter buffer.
    public var latencyMilliseconds = 200
    /// The local UDP ports every peer's ICE may bind (`--udp-ports`); nil: any.
    public var udpPorts: ClosedRange<UInt16>?
    public var reconnectBackoff = SignalingClient.Backoff()
    /// Which certificates a `wss://` server may present (`--ca FILE`).
    public var serverTrust: SignalingClient.ServerTrust = .systemRoots
    /// Which members to connect with, by display name (nil: everyone). For programs that share a room
    /// with members they must not call, such as a benchmark's many senders that should reach only the
    /// recorder; both sides must leave each other out, as neither then offers.
    public var connectsTo: (@Sendable (_ name: String) -> Bool)?
    /// Join as the room's relay (`--relay`): every member connects only to this gateway, which forwards
    /// each member's tracks to all the others without decoding them. Needs an API token (`token`).
    public var relay = false

    public init(room: String, serverURL: URL, name: String? = nil, token: String? = nil) {
        self.room = room
        self.serverURL = serverURL
        self.name = name
        self.token = token
    }
}

/// What happens in a call, for the session that records and the status display.
public enum CallEvent: Sendable {
    case joined(selfID: String, participants: [PeerInfo])
    case participantJoined(id: String, name: String)
    case participantLeft(id: String, name: String)
    case connectionState(participant: String, PeerConnectionState)
    /// Media from a participant: attach a consumer to it (a recorder) or leave it (its data is dropped).
    case remoteTrack(participant: String, name: String, track: ReceivedTrack)
    /// A participant said which of their media are on (`media-state`).
    case mediaState(participant: String, MediaState)
    /// A member pressed the record button (`recording-request`).
    case recordingRequested(by: String, name: String, RecordingAction)
    case offerSent(to: String)
    case signalingLost(reason: String)
    /// Signaling stopped for good (the server's certificate is not trusted): the user must change something.
    case signalingFailed(reason: String)
    /// Something the user should see: a full room, a refused token, a failed negotiation.
    case problem(String)
}

/// A snapshot of a call for the status display.
public struct CallStatus: Sendable {
    public struct Member: Sendable {
        public let id: String
        public let name: String
        public let connectionState: PeerConnectionState
        public let bitrateIn: Double
        public let bitrateOut: Double
    }
    public let room: String
    public let selfID: String?
    public let signalingConnected: Bool
    /// The server has confirmed membership of `room` on the current connection.
    public let inRoom: Bool
    public let members: [Member]
    public let offersSent: Int
}
