import Foundation
import Testing
@testable import WebRTC
import WebRTCTypes

@Suite("Wire formats")
struct WireFormatTests {
    @Test("RTCSessionDescriptionInit's JSON is RTCSessionDescriptionInit")
    func sessionDescriptionJSON() throws {
        let json = #"{"type":"offer","sdp":"v=0\r\n"}"#
        let decoded = try JSONDecoder().decode(RTCSessionDescriptionInit.self, from: Data(json.utf8))
        #expect(decoded == RTCSessionDescriptionInit(type: .offer, sdp: "v=0\r\n"))
        let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(decoded)) as? [String: String]
        #expect(encoded == ["type": "offer", "sdp": "v=0\r\n"])
        #expect(throws: DecodingError.self) {
            _ = try JSONDecoder().decode(RTCSessionDescriptionInit.self, from: Data(#"{"type":"bogus","sdp":""}"#.utf8))
        }
    }

    @Test("RTCIceCandidateInit's JSON is RTCIceCandidateInit, with nulls where the browser writes them")
    func candidateJSON() throws {
        let browser = #"{"candidate":"candidate:1 1 udp 2122260223 10.0.0.2 54321 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}"#
        let decoded = try JSONDecoder().decode(RTCIceCandidateInit.self, from: Data(browser.utf8))
        #expect(decoded.sdpMid == "0")
        #expect(decoded.sdpMLineIndex == 0)
        #expect(decoded.usernameFragment == "abcd")
        let midless = RTCIceCandidateInit(candidate: "candidate:2 1 udp 1 10.0.0.2 1 typ host", sdpMid: nil, sdpMLineIndex: 1)
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(midless)) as? [String: Any]
        #expect(object?["sdpMid"] is NSNull)
        #expect(object?["sdpMLineIndex"] as? Int == 1)
        #expect(object?.keys.contains("usernameFragment") == false)
        // The end-of-candidates form some browsers send.
        let empty = try JSONDecoder().decode(RTCIceCandidateInit.self, from: Data(#"{"candidate":"","sdpMid":"0","sdpMLineIndex":0}"#.utf8))
        #expect(empty.candidate.isEmpty)
    }

    @Test("RTCIceServer URLs become webrtcbin's URLs with credentials")
    func iceServers() throws {
        let json = #"[{"urls":"stun:stun.example.org:3478"},{"urls":["turn:turn.example.org:3478?transport=udp"],"username":"bob","credential":"p@ss word"}]"#
        let servers = try JSONDecoder().decode([RTCIceServer].self, from: Data(json.utf8))
        #expect(servers[0].webrtcbinURLs.map(\.url) == ["stun://stun.example.org:3478"])
        #expect(servers[1].webrtcbinURLs.first?.isTURN == true)
        #expect(servers[1].webrtcbinURLs.first?.url == "turn://bob:p%40ss%20word@turn.example.org:3478?transport=udp")
    }

    @Test("an SDP summary finds m-lines, mids, payload types, directions, SSRCs and NACK feedback")
    func sdpSummary() {
        let sdp = [
            "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9", "a=mid:0", "a=sendrecv", "a=rtpmap:111 opus/48000/2", "a=rtpmap:9 G722/8000",
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102", "a=mid:1", "a=recvonly", "a=rtpmap:96 VP8/90000", "a=rtpmap:97 rtx/90000",
            "a=rtpmap:102 H264/90000", "a=rtcp-fb:96 nack", "a=rtcp-fb:96 nack pli", "a=rtcp-fb:102 nack pli",
            "a=ssrc-group:FID 317772607 143411699", "a=ssrc:317772607 cname:a@b", "a=ssrc:143411699 cname:a@b", "",
        ].joined(separator: "\r\n")
        let summary = SDPSummary(sdp)
        #expect(summary.media.map(\.kind) == ["audio", "video"])
        #expect(summary.mids == ["0", "1"])
        #expect(summary.firstPayloadType(kind: "audio", encodingName: "OPUS")?.payloadType == 111)
        #expect(summary.firstPayloadType(kind: "video", encodingName: "vp8")?.payloadType == 96)
        #expect(summary.firstPayloadType(kind: "video", encodingName: "VP9") == nil)
        #expect(summary.media[1].direction == "recvonly")
        #expect(summary.media[1].ssrcs == [317772607, 143411699])
        #expect(summary.media[1].nackPayloadTypes == [96], "only generic NACK counts, not nack pli")
        #expect(summary.media[0].ssrcs.isEmpty && summary.media[0].nackPayloadTypes.isEmpty)
        #expect(summary.retransmissionsBySSRC == [317772607: true, 143411699: true])
    }
}
