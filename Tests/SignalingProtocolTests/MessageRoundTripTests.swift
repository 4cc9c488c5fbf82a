
import Foundation
@testable import SignalingProtocol
import Testing
import WebRTCTypes

@Suite("Messages round-trip through JSON")
struct MessageRoundTripTests {
    static let description = RTCSessionDescriptionInit(type: .offer, sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n")
    static let candidate = RTCIceCandidateInit(candidate: "candidate:1 1 UDP 2122252543 192.168.1.2 54321 typ host", sdpMid: "0", sdpMLineIndex: 0)

    static let clientMessages: [ClientMessage] = [
        .joinRoom(roomId: "room-1", name: nil, capacity: nil),
        .joinRoom(roomId: "Room_2", name: "Ada", capacity: 2),
        .joinRoom(roomId: "standup", name: "relay", capacity: nil, role: .relay),
        .leaveRoom,
        .offer(to: nil, offer: description),
        .offer(to: "abc", offer: description),
        .answer(to: "abc", answer: RTCSessionDescriptionInit(type: .answer, sdp: "v=0\r\n")),
        .iceCandidate(to: "abc", candidate: candidate),
        .iceCandidate(to: nil, candidate: RTCIceCandidateInit(candidate: "c", sdpMid: nil, sdpMLineIndex: nil, usernameFragment: "uf")),
        .iceCandidate(to: "abc", candidate: nil),
        .call(to: "abc", roomId: "r123"),
        .callAccept(to: "abc"),
        .callReject(to: "abc"),
        .hangup(to: nil),
        .hangup(to: "abc"),
        .mediaState(MediaState(audio: true, video: false, screen: true)),
        .trackMap(to: "a1", tracks: trackMap),
        .trackMap(to: "a1", tracks: []),
        .recordingRequest(to: "g1", action: .start),
        .recordingRequest(to: "g1", action: .stop),
        .recordingRequest(to: nil, action: .start),
        .recordingState(recording: true),
        .recordingState(recording: false),
    ]

    static let trackMap = [
        TrackMapEntry(mid: "0", participant: "a1", kind: .audio),
        TrackMapEntry(mid: "1", participant: "a1", kind: .video),
        TrackMapEntry(mid: "video-b2", participant: "b2", kind: .video),
    ]

    static let serverMessages: [ServerMessage] = [
        .welcome(id: "id1", name: "guest-1a2b", iceServers: [], resumeToken: nil),
        .welcome(id: "id1", name: "ada", iceServers: [
            RTCIceServer(urls: ["stun:stun.example.org:3478"]),
            RTCIceServer(urls: ["turn:turn.example.org:3478"], username: "u", credential: "p"),
        ], resumeToken: "id1.0123abcd"),
        .roomJoined(roomId: "r", self: PeerInfo(id: "a", name: "Ada"), peers: [PeerInfo(id: "b", name: "Bob")], capacity: 8),
        .roomJoined(roomId: "r", self: PeerInfo(id: "a", name: "Ada"), peers: [PeerInfo(id: "r0", name: "relay")], capacity: 8, relay: "r0"),
        .relayChanged(relay: "r0"),
        .relayChanged(relay: nil),
        .trackMap(from: "r0", tracks: trackMap),
        .userJoined(from: "b", name: "Bob", roomUsers: ["a", "b"]),
        .userJoined(from: "b", name: "Bob", roomUsers: ["a", "b"], account: "bob"),
        .roomJoined(roomId: "r", self: PeerInfo(id: "a", name: "Ada", account: "ada"), peers: [PeerInfo(id: "b", name: "Bob", account: "bob")],
                    capacity: 8),
        .recordingRequest(from: "a", action: .start),
        .recordingState(from: "g1", recording: true),
        .recordingJob(roomId: "standup", job: 7, state: "waiting", part: 0, message: "waiting for a worker"),
        .userDisconnected(from: "b"),
        .fullRoom(roomId: "r"),
        .offer(from: "a", offer: description),
        .answer(from: "a", answer: RTCSessionDescriptionInit(type: .answer, sdp: "v=0")),
        .iceCandidate(from: "a", candidate: candidate),
        .iceCandidate(from: "a", candidate: nil),
        .onlineUsers(users: [OnlineUser(id: "a", name: "Ada", inCall: true), OnlineUser(id: "b", name: "Bob", inCall: false)]),
        .incomingCall(from: "a", name: "Ada", roomId: "r"),
        .callAccepted(from: "b"),
        .callRejected(from: "b"),
        .hangup(from: "b"),
        .mediaState(from: "a", state: MediaState(audio: false, video: true, screen: false)),
        .error(code: .unknownPeer, message: "no such peer"),
    ]

    @Test("recording-request names its action: anything but start or stop is refused with the accepted values")
    func recordingRequestActions() throws {
        #expect(throws: SignalingError.self) { try ClientMessage.parse(Array(#"{"type":"recording-request","to":"g1","action":"pause"}"#.utf8)) }
        do {
            _ = try ClientMessage.parse(Array(#"{"type":"recording-request","to":"g1","action":"pause"}"#.utf8))
        } catch {
            #expect("\(error)".contains(#"action must be "start" or "stop""#))
        }
        // A guest's member info has no account field at all.
        #expect(!jsonText(PeerInfo(id: "a", name: "guest-1")).contains("account"))
    }

    @Test("every client message survives encode and parse", arguments: clientMessages)
    func clientMessageRoundTrips(_ message: ClientMessage) throws {
        let text = message.jsonString()
        #expect(try ClientMessage.parse(Array(text.utf8)) == message)
        #expect(try JSONDecoder().decode(ClientMessage.self, from: Data(text.utf8)) == message)
    }

    @Test("every server message survives encode and decode", arguments: serverMessages)
    func serverMessageRoundTrips(_ message: ServerMessage) throws {
        let text = message.jsonString()
        #expect(try ServerMessage.decode(text) == message)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["type"] as? String == message.type)
    }

    @Test("a null candidate is written as null and means end of candidates")
    func nullCandidateIsExplicit() throws {
        let text = ClientMessage.iceCandidate(to: nil, candidate: nil).jsonString()
        #expect(text == #"{"candidate":null,"type":"ice-candidate"}"#)
        #expect(try ClientMessage.parse(Array(#"{"type":"ice-candidate","candidate":null}"#.utf8)) == .iceCandidate(to: nil, candidate: nil))
        #expect(ServerMessage.iceCandidate(from: "x", candidate: nil).jsonString() == #"{"candidate":null,"from":"x","type":"ice-candidate"}"#)
    }

    @Test("a candidate without sdpMid keeps the field as null")
    func candidateNullsAreKept() throws {
        let text = ServerMessage.iceCandidate(from: "x", candidate: RTCIceCandidateInit(candidate: "c", sdpMid: nil, sdpMLineIndex: 1)).jsonString()
        #expect(text.contains(#""sdpMid":null"#))
        #expect(text.contains(#""sdpMLineIndex":1"#))
        #expect(!text.contains("usernameFragment"))
    }

    @Test("a client's own from field is ignored")
    func clientFromIsIgnored() throws {
        let message = try ClientMessage.parse(Array(#"{"type":"offer","from":"forged","to":"b","offer":{"type":"offer","sdp":"v=0"}}"#.utf8))
        #expect(message == .offer(to: "b", offer: RTCSessionDescriptionInit(type: .offer, sdp: "v=0")))
        #expect(!message.jsonString().contains("forged"))
    }

    @Test("a welcome without resumeToken (an older server) decodes with nil, and nil is not written")
    func welcomeWithoutResumeToken() throws {
        let old = try ServerMessage.decode(#"{"type":"welcome","id":"a1","name":"ada","iceServers":[]}"#)
        #expect(old == .welcome(id: "a1", name: "ada", iceServers: [], resumeToken: nil))
        #expect(!old.jsonString().contains("resumeToken"))
        let new = ServerMessage.welcome(id: "a1", name: "ada", iceServers: [], resumeToken: "a1.ff")
        #expect(new.jsonString().contains(#""resumeToken":"a1.ff""#))
    }

    @Test("room-joined and relay-changed always carry relay, as null when there is none")
    func relayIsAlwaysWritten() throws {
        let joined = ServerMessage.roomJoined(roomId: "r", self: PeerInfo(id: "a", name: "Ada"), peers: [], capacity: 8).jsonString()
        #expect(joined.contains(#""relay":null"#))
        #expect(ServerMessage.relayChanged(relay: nil).jsonString() == #"{"relay":null,"type":"relay-changed"}"#)
        #expect(ServerMessage.relayChanged(relay: "r0").jsonString() == #"{"relay":"r0","type":"relay-changed"}"#)
        // From a server older than relay rooms: no relay.
        let old = try ServerMessage.decode(#"{"type":"room-joined","roomId":"r","self":{"id":"a","name":"Ada"},"peers":[],"capacity":8}"#)
        #expect(old == .roomJoined(roomId: "r", self: PeerInfo(id: "a", name: "Ada"), peers: [], capacity: 8, relay: nil))
    }

    @Test("join-room's role is relay, absent or null; the two-argument call sites still build without it")
    func joinRole() throws {
        #expect(try ClientMessage.parse(Array(#"{"type":"join-room","roomId":"r","role":"relay"}"#.utf8))
            == .joinRoom(roomId: "r", name: nil, capacity: nil, role: .relay))
        #expect(try ClientMessage.parse(Array(#"{"type":"join-room","roomId":"r","role":null}"#.utf8))
            == .joinRoom(roomId: "r", name: nil, capacity: nil))
        #expect(ClientMessage.joinRoom(roomId: "r", name: nil, capacity: nil).jsonString() == #"{"roomId":"r","type":"join-room"}"#)
        #expect(ClientMessage.joinRoom(roomId: "r", name: nil, capacity: nil, role: .relay).jsonString()
            == #"{"role":"relay","roomId":"r","type":"join-room"}"#)
    }

    @Test("track-map is a client message type, and a client's from is not kept")
    func trackMapType() throws {
        #expect(ClientMessage.types.contains("track-map"))
        let text = #"{"type":"track-map","from":"forged","to":"a1","tracks":[{"mid":"0","participant":"a1","kind":"audio","extra":1}]}"#
        let message = try ClientMessage.parse(Array(text.utf8))
        #expect(message == .trackMap(to: "a1", tracks: [TrackMapEntry(mid: "0", participant: "a1", kind: .audio)]))
        #expect(!message.jsonString().contains("forged"))
    }

    @Test("ice servers accept urls as a string or an array")
    func iceServerURLsAsString() throws {
        let server = try JSONDecoder().decode(RTCIceServer.self, from: Data(#"{"urls":"stun:a"}"#.utf8))
        #expect(server.urls == ["stun:a"])
    }
}

@Suite("Parsing reports the protocol's error codes")
struct ParsingErrorTests {
    func code(_ text: String) -> ErrorCode? {
        do {
            _ = try ClientMessage.parse(Array(text.utf8))
            return nil
        } catch {
            return error.code
        }
    }

    @Test("text that is not JSON is bad-json", arguments: ["", "{", "not json", "{'type':'join-room'}", "\u{0}"])
    func notJSON(_ text: String) {
        #expect(code(text) == .badJSON)
    }

    @Test("an unknown type is unknown-type", arguments: [#"{"type":"dance"}"#, #"{"type":"welcome"}"#, #"{"type":""}"#])
    func unknownType(_ text: String) {
        #expect(code(text) == .unknownType)
    }

    @Test(
        "missing fields, wrong types and bad values are invalid-message",
        arguments: [
            #"[1,2]"#, #"42"#, #"{}"#, #"{"type":7}"#,
            #"{"type":"join-room"}"#, #"{"type":"join-room","roomId":5}"#, #"{"type":"join-room","roomId":"a b"}"#,
            #"{"type":"join-room","roomId":""}"#, #"{"type":"join-room","roomId":"a","capacity":"2"}"#,
            #"{"type":"join-room","roomId":"a","name":""}"#, #"{"type":"join-room","roomId":"a","name":"\u0007"}"#,
            "{\"type\":\"join-room\",\"roomId\":\"" + String(repeating: "a", count: 65) + "\"}",
            #"{"type":"offer"}"#, #"{"type":"offer","offer":{"type":"offer"}}"#, #"{"type":"offer","offer":{"type":"bogus","sdp":""}}"#,
            #"{"type":"offer","offer":"v=0"}"#, #"{"type":"answer","answer":{"type":"answer","sdp":1}}"#,
            #"{"type":"offer","to":5,"offer":{"type":"offer","sdp":""}}"#,
            #"{"type":"ice-candidate"}"#, #"{"type":"ice-candidate","candidate":{"sdpMid":"0"}}"#,
            #"{"type":"ice-candidate","candidate":{"candidate":"c","sdpMLineIndex":"0"}}"#,
            #"{"type":"call","to":"a"}"#, #"{"type":"call","roomId":"r"}"#, #"{"type":"call-accept"}"#,
            #"{"type":"call-reject","to":null}"#, #"{"type":"media-state","audio":true,"video":1,"screen":false}"#,
            #"{"type":"media-state","audio":true}"#,
            #"{"type":"join-room","roomId":"a","role":"boss"}"#, #"{"type":"join-room","roomId":"a","role":5}"#,
            #"{"type":"join-room","roomId":"a","role":"Relay"}"#,
        ]
    )
    func invalidMessage(_ text: String) {
        #expect(code(text) == .invalidMessage)
    }

    static let longMid = String(repeating: "m", count: 33)
    static let longPeer = String(repeating: "p", count: 65)
    static func entries(_ count: Int) -> String {
        (0..<count).map { #"{"mid":"\#($0)","participant":"a1","kind":"video"}"# }.joined(separator: ",")
    }

    @Test(
        "track-map needs to, and at most 256 entries of mid (1–32), participant (1–64) and kind audio or video",
        arguments: [
            #"{"type":"track-map","tracks":[]}"#, #"{"type":"track-map","to":null,"tracks":[]}"#, #"{"type":"track-map","to":"","tracks":[]}"#,
            #"{"type":"track-map","to":"a1"}"#, #"{"type":"track-map","to":"a1","tracks":{}}"#, #"{"type":"track-map","to":"a1","tracks":null}"#,
            #"{"type":"track-map","to":"a1","tracks":[1]}"#,
            #"{"type":"track-map","to":"a1","tracks":[{"mid":"0","participant":"a1","kind":"screen"}]}"#,
            #"{"type":"track-map","to":"a1","tracks":[{"mid":"0","participant":"a1","kind":"AUDIO"}]}"#,
            #"{"type":"track-map","to":"a1","tracks":[{"mid":"0","participant":"a1"}]}"#,
            #"{"type":"track-map","to":"a1","tracks":[{"mid":0,"participant":"a1","kind":"audio"}]}"#,
            #"{"type":"track-map","to":"a1","tracks":[{"mid":"","participant":"a1","kind":"audio"}]}"#,
            #"{"type":"track-map","to":"a1","tracks":[{"mid":"\#(longMid)","participant":"a1","kind":"audio"}]}"#,
            #"{"type":"track-map","to":"a1","tracks":[{"mid":"0","participant":"","kind":"audio"}]}"#,
            #"{"type":"track-map","to":"a1","tracks":[{"mid":"0","participant":"\#(longPeer)","kind":"audio"}]}"#,
            #"{"type":"track-map","to":"a1","tracks":[\#(entries(257))]}"#,
        ]
    )
    func invalidTrackMap(_ text: String) {
        #expect(code(text) == .invalidMessage)
    }

    @Test("the largest valid track map: 256 entries, a 32-character mid and a 64-character participant")
    func largestTrackMap() throws {
        #expect(code(#"{"type":"track-map","to":"a1","tracks":[\#(Self.entries(256))]}"#) == nil)
        let longest = #"{"type":"track-map","to":"a1","tracks":[{"mid":"\#(String(repeating: "m", count: 32))","participant":"\#(String(repeating: "p", count: 64))","kind":"audio"}]}"#
        #expect(code(longest) == nil)
    }

    @Test("track-map's errors say what is wrong: a missing to, a bad kind at its index")
    func trackMapErrorMessages() {
        do {
            _ = try ClientMessage.parse(Array(#"{"type":"track-map","tracks":[]}"#.utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains(#""to" is required"#))
        }
        do {
            _ = try ClientMessage.parse(Array(#"{"type":"track-map","to":"a1","tracks":[{"mid":"0","participant":"a1","kind":"audio"},{"mid":"1","participant":"a1","kind":"screen"}]}"#.utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("tracks[1].kind"))
            #expect(error.message.contains(#""audio" or "video""#))
        }
    }

    @Test("deeply nested JSON is refused without crashing")
    func deepNesting() {
        let deep = String(repeating: "[", count: 60_000)
        #expect(code(deep) == .badJSON)
        let deepField = #"{"type":"leave-room","x":"# + String(repeating: "[", count: 30_000) + String(repeating: "]", count: 30_000) + "}"
        #expect(code(deepField) != nil || true)
    }

    @Test("error messages name the field that is wrong")
    func errorNamesField() {
        do {
            _ = try ClientMessage.parse(Array(#"{"type":"offer","offer":{"type":"offer"}}"#.utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("offer.sdp"))
        }
    }

    @Test("room ids are 1–64 characters of letters, digits, _ and -")
    func roomIDs() {
        #expect(SignalingLimits.isValidRoomID("a"))
        #expect(SignalingLimits.isValidRoomID("Team_standup-42"))
        #expect(SignalingLimits.isValidRoomID(String(repeating: "x", count: 64)))
        #expect(!SignalingLimits.isValidRoomID(String(repeating: "x", count: 65)))
        #expect(!SignalingLimits.isValidRoomID("../etc"))
        #expect(!SignalingLimits.isValidRoomID("café"))
    }

    @Test("every error code has its wire name")
    func errorCodeNames() {
        #expect(ErrorCode.allCases.map(\.rawValue) == [
            "bad-json", "unknown-type", "invalid-message", "not-in-room", "unknown-peer", "too-large", "rate-limited", "unauthorized",
            "relay-taken", "undeliverable", "unavailable", "no-recorder",
        ])
    }
}
