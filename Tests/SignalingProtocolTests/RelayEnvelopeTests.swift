import Foundation
import SignalingProtocol
import Testing
import WebRTCTypes

@Suite("Relay envelopes: offers, answers and candidates recognized without decoding their payload")
struct RelayEnvelopeTests {
    func recognize(_ text: String) -> (envelope: RelayEnvelope, payload: String)? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { raw in
            RelayEnvelope.recognize(raw).map { ($0, String(decoding: bytes[$0.payload], as: UTF8.self)) }
        }
    }

    static let relayable: [String] = [
        #"{"type":"offer","to":"b2","offer":{"type":"offer","sdp":"v=0\r\ns=x\r\n"}}"#,
        #"{"answer":{"sdp":"v=0\r\n\"q\"\\\/\t","type":"answer"},"type":"answer"}"#,
        #" { "to" : null , "type" : "ice-candidate" , "candidate" : { "candidate" : "candidate:1 1 udp 1 192.0.2.7 5 typ host" , "sdpMid" : "0" , "sdpMLineIndex" : 0 , "usernameFragment" : "Ab3d" } } "#,
        #"{"type":"ice-candidate","to":"b2","candidate":null}"#,
        #"{"type":"ice-candidate","candidate":{"candidate":"","sdpMid":null,"sdpMLineIndex":null}}"#,
        #"{"from":"forged","type":"offer","to":"b2","extra":[1,-2.5e3,{"x":[true,false,null]}],"offer":{"type":"rollback","sdp":""}}"#,
        #"{"type":"track-map","to":"a1","tracks":[{"mid":"0","participant":"a1","kind":"audio"},{"kind":"video","participant":"b2","mid":"3"}]}"#,
        #"{ "tracks" : [ ] , "to" : "a1" , "type" : "track-map" }"#,
        #"{"type":"track-map","to":"a1","tracks":[\#(entries(256))]}"#,
    ]

    static func entries(_ count: Int) -> String {
        (0..<count).map { #"{"mid":"\#($0)","participant":"a1","kind":"video"}"# }.joined(separator: ",")
    }

    @Test("what browsers and the gateway send is recognized, meaning what the full parser reads", arguments: relayable)
    func recognized(_ text: String) throws {
        let (envelope, payload) = try #require(recognize(text))
        let message = try ClientMessage.parse(Array(text.utf8))
        #expect(envelope.kind.rawValue == message.type)
        switch message {
        case .offer(let to, let description), .answer(let to, let description):
            #expect(envelope.to == to)
            #expect(try JSONDecoder().decode(RTCSessionDescriptionInit.self, from: Data(payload.utf8)) == description)
        case .iceCandidate(let to, let candidate):
            #expect(envelope.to == to)
            #expect(try JSONDecoder().decode(RTCIceCandidateInit?.self, from: Data(payload.utf8)) == candidate)
        case .trackMap(let to, let tracks):
            #expect(envelope.to == to)
            #expect(try JSONDecoder().decode([TrackMapEntry].self, from: Data(payload.utf8)) == tracks)
        default:
            Issue.record("parsed as \(message.type)")
        }
    }

    @Test("the payload is the value's bytes exactly as sent")
    func payloadBytes() throws {
        let (_, payload) = try #require(recognize(#"{"type":"offer","offer": {"sdp":"v=0\r\n", "type":"offer"} ,"to":"b"}"#))
        #expect(payload == #"{"sdp":"v=0\r\n", "type":"offer"}"#)
    }

    static let longPeer = String(repeating: "p", count: 65)

    static let forTheFullParser: [String] = [
        // Errors, which the full parser reports.
        "", "{", "null", "[]", #"{"type":"offer"}"#, #"{"type":"offer","offer":null}"#,
        #"{"type":"offer","offer":{"type":"bogus","sdp":""}}"#, #"{"type":"offer","offer":{"type":"offer"}}"#,
        #"{"type":"offer","to":"","offer":{"type":"offer","sdp":""}}"#, #"{"type":"offer","to":5,"offer":{"type":"offer","sdp":""}}"#,
        #"{"type":"offer","to":"\#(longPeer)","offer":{"type":"offer","sdp":""}}"#,
        #"{"type":"ice-candidate"}"#, #"{"type":"ice-candidate","candidate":{"candidate":5,"sdpMid":"0","sdpMLineIndex":0}}"#,
        #"{"type":"ice-candidate","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":"0"}}"#,
        #"{"type":"ice-candidate","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":1.5}}"#,
        #"{"type":"offer","offer":{"type":"offer","sdp":""}} x"#, #"{"type":"offer","x":[1,],"offer":{"type":"offer","sdp":""}}"#,
        #"{"type":"offer","x":01,"offer":{"type":"offer","sdp":""}}"#, #"{"type":"offer","x":"\q","offer":{"type":"offer","sdp":""}}"#,
        "{\"type\":\"offer\",\"offer\":{\"type\":\"offer\",\"sdp\":\"a\u{1}b\"}}",
        // Re-encoded by the full path, so the relayed form is the protocol's: null sdpMid/sdpMLineIndex written, extras dropped.
        #"{"type":"ice-candidate","candidate":{"candidate":"c"}}"#,
        #"{"type":"ice-candidate","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":null}}"#,
        #"{"type":"answer","answer":{"type":"answer","sdp":"","extra":1}}"#,
        // Ambiguous: the same field twice.
        #"{"type":"offer","offer":{"type":"offer","sdp":""},"offer":{"type":"bogus","sdp":""}}"#,
        #"{"type":"offer","offer":{"type":"bogus","type":"offer","sdp":""}}"#,
        #"{"type":"offer","type":"answer","offer":{"type":"offer","sdp":""}}"#,
        #"{"type":"offer","to":"a","to":"b","offer":{"type":"offer","sdp":""}}"#,
        // Escapes where routing is read, \u escapes and non-ASCII text anywhere.
        #"{"t\u0079pe":"offer","offer":{"type":"offer","sdp":""}}"#, #"{"type":"\u006ffer","offer":{"type":"offer","sdp":""}}"#,
        #"{"type":"offer","to":"b\u0032","offer":{"type":"offer","sdp":""}}"#, #"{"type":"offer","offer":{"type":"offer","sdp":"é"}}"#,
        // A track map the full parser refuses, or re-encodes (an entry's extra field dropped).
        #"{"type":"track-map","tracks":[]}"#, #"{"type":"track-map","to":null,"tracks":[]}"#, #"{"type":"track-map","to":"a1"}"#,
        #"{"type":"track-map","to":"a1","tracks":{}}"#, #"{"type":"track-map","to":"a1","tracks":[null]}"#,
        #"{"type":"track-map","to":"a1","tracks":[{"mid":"0","participant":"a1","kind":"screen"}]}"#,
        #"{"type":"track-map","to":"a1","tracks":[{"mid":"0","participant":"a1"}]}"#,
        #"{"type":"track-map","to":"a1","tracks":[{"mid":"","participant":"a1","kind":"audio"}]}"#,
        #"{"type":"track-map","to":"a1","tracks":[{"mid":"\#(String(repeating: "m", count: 33))","participant":"a1","kind":"audio"}]}"#,
        #"{"type":"track-map","to":"a1","tracks":[{"mid":"0","participant":"\#(longPeer)","kind":"audio"}]}"#,
        #"{"type":"track-map","to":"a1","tracks":[{"mid":0,"participant":"a1","kind":"audio"}]}"#,
        #"{"type":"track-map","to":"a1","tracks":[{"mid":"0","participant":"a1","kind":"audio","extra":1}]}"#,
        #"{"type":"track-map","to":"a1","tracks":[{"mid":"0","mid":"1","participant":"a1","kind":"audio"}]}"#,
        #"{"type":"track-map","to":"a1","tracks":[{"mid":"\u0030","participant":"a1","kind":"audio"}]}"#,
        #"{"type":"track-map","to":"a1","tracks":[],"tracks":[]}"#,
        #"{"type":"track-map","to":"a1","tracks":[\#(entries(257))]}"#,
        // Not relayed messages at all.
        #"{"type":"join-room","roomId":"standup"}"#, #"{"type":"media-state","audio":true,"video":true,"screen":false}"#,
        String(repeating: "[", count: 10_000),
    ]

    @Test("anything unsure goes to the full parser", arguments: forTheFullParser)
    func notRecognized(_ text: String) {
        #expect(recognize(text) == nil)
    }

    @Test("deep nesting is left to the full parser without exhausting the stack")
    func deepNesting() {
        let deep = #"{"type":"offer","x":"# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
            + #","offer":{"type":"offer","sdp":""}}"#
        #expect(recognize(deep) == nil)
    }

    @Test("a quote, backslash, control character or non-ASCII byte is found wherever it sits in a long string")
    func specialBytesAtEveryOffset() throws {
        func offer(_ sdp: String) -> String { #"{"type":"offer","offer":{"type":"offer","sdp":""# + sdp + #""}}"# }
        for offset in 0..<24 {
            let before = String(repeating: "a", count: offset), after = String(repeating: "b", count: 20)
            #expect(recognize(offer(before + "\u{1}" + after)) == nil)
            #expect(recognize(offer(before + "é" + after)) == nil)
            #expect(recognize(offer(before + "\"" + after)) == nil)
            let (_, payload) = try #require(recognize(offer(before + #"\"\\"# + after)))
            #expect(try JSONDecoder().decode(RTCSessionDescriptionInit.self, from: Data(payload.utf8)).sdp == before + #""\"# + after)
        }
    }
}
