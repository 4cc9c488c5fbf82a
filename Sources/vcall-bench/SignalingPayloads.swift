import Foundation

// The signaling benchmark's messages: browser-like SDPs and candidates with a latency marker inside.

enum PayloadKind: Sendable { case offer, answer, candidate }

/// The JSON a client sends, split around the marker: `head + "xb=SENDER.SEQ.NANOS" + tail`.
/// SDPs look like a browser's (audio + video, the usual codecs), grown with codec blocks to the asked size.
struct Payloads: Sendable {
    let offerSDP: (head: String, tail: String)
    let answerSDP: (head: String, tail: String)
    let candidate: (head: String, tail: String)

    init(offerBytes: Int, answerBytes: Int) {
        offerSDP = Self.sdp(role: "offer", bytes: offerBytes)
        answerSDP = Self.sdp(role: "answer", bytes: answerBytes)
        candidate = ("candidate:", " 1 udp 2122260223 192.168.1.23 54321 typ host generation 0 network-cost 10")
    }

    /// The message as a client sends it to `peer`, with the marker in place.
    func message(_ kind: PayloadKind, to peer: String) -> (head: [UInt8], tail: [UInt8]) {
        switch kind {
        case .offer, .answer:
            let type = kind == .offer ? "offer" : "answer"
            let sdp = kind == .offer ? offerSDP : answerSDP
            return (Array(#"{"type":"\#(type)","to":"\#(peer)","\#(type)":{"type":"\#(type)","sdp":""#.utf8) + Array(sdp.head.utf8),
                    Array(sdp.tail.utf8) + Array(#""}}"#.utf8))
        case .candidate:
            return (Array(#"{"type":"ice-candidate","to":"\#(peer)","candidate":{"candidate":""#.utf8) + Array(candidate.head.utf8),
                    Array(candidate.tail.utf8) + Array(#"","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"Ab3d"}}"#.utf8))
        }
    }

    /// A message's size on the wire (before framing), with a typical marker and a 24-character peer id.
    func sampleBytes(_ kind: PayloadKind) -> Int {
        let parts = message(kind, to: String(repeating: "0", count: 24))
        return parts.head.count + "xb=123.4567.123456789012".utf8.count + parts.tail.count
    }

    /// An SDP as JSON-escaped text, split at the session name (`s=`), which holds the marker.
    static func sdp(role: String, bytes: Int) -> (head: String, tail: String) {
        let fingerprint = (0..<32).map { String(format: "%02X", ($0 * 37 + 11) & 0xFF) }.joined(separator: ":")
        let setup = role == "offer" ? "actpass" : "active"
        let audio = [
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
            "a=ice-ufrag:Ab3d", "a=ice-pwd:q4XZ0Jm1oWqYyS3lB2aVbKxR", "a=ice-options:trickle",
            "a=fingerprint:sha-256 \(fingerprint)", "a=setup:\(setup)", "a=mid:0",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", "a=sendrecv",
            "a=msid:6bd4c1f0-3c1e-4c55-9d4b-2a1f0e2d7c11 0f9e4b2a-8a3d-4f61-b1c7-5e2d9a8c3b44", "a=rtcp-mux",
            "a=rtpmap:111 opus/48000/2", "a=rtcp-fb:111 transport-cc", "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111", "a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000", "a=rtpmap:13 CN/8000", "a=rtpmap:110 telephone-event/48000", "a=rtpmap:126 telephone-event/8000",
            "a=ssrc:1746254911 cname:Xr4wZ0q2H8pYbT1d", "a=ssrc:1746254911 msid:6bd4c1f0-3c1e-4c55-9d4b-2a1f0e2d7c11 0f9e4b2a-8a3d-4f61-b1c7-5e2d9a8c3b44",
        ]
        var video = [
            "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0", "a=ice-ufrag:Ab3d", "a=ice-pwd:q4XZ0Jm1oWqYyS3lB2aVbKxR",
            "a=ice-options:trickle", "a=fingerprint:sha-256 \(fingerprint)", "a=setup:\(setup)", "a=mid:1",
            "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset", "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "a=extmap:13 urn:3gpp:video-orientation", "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay", "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=sendrecv", "a=msid:6bd4c1f0-3c1e-4c55-9d4b-2a1f0e2d7c11 3c2b1a09-7d6e-4f5a-8b9c-0d1e2f3a4b5c", "a=rtcp-mux", "a=rtcp-rsize",
        ]
        var codecs: [(String, String?)] = [("VP8/90000", nil), ("VP9/90000", "profile-id=0"), ("VP9/90000", "profile-id=2"),
                                            ("AV1/90000", "level-idx=5;profile=0;tier=0")]
        for (index, profile) in ["42001f", "42e01f", "4d001f", "64001f", "f4001f", "42001f", "42e01f", "4d001f", "64001f", "42001f"].enumerated() {
            codecs.append(("H264/90000", "level-asymmetry-allowed=1;packetization-mode=\(index % 2);profile-level-id=\(profile)"))
        }
        let session = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=xb=123.4567.123456789012", "t=0 0", "a=group:BUNDLE 0 1",
                       "a=extmap-allow-mixed", "a=msid-semantic: WMS 6bd4c1f0-3c1e-4c55-9d4b-2a1f0e2d7c11"]
        func size(_ lines: [String]) -> Int { lines.reduce(0) { $0 + $1.utf8.count + 2 } }
        let ssrcs = ["a=ssrc-group:FID 3319141187 2734812345", "a=ssrc:3319141187 cname:Xr4wZ0q2H8pYbT1d", "a=ssrc:2734812345 cname:Xr4wZ0q2H8pYbT1d"]
        var payloadTypes: [Int] = []
        var codecLines: [String] = []
        var pt = 96
        // Codec blocks (with their rtx) while they fit, as a browser lists them.
        for (name, fmtp) in codecs {
            var block = ["a=rtpmap:\(pt) \(name)", "a=rtcp-fb:\(pt) goog-remb", "a=rtcp-fb:\(pt) transport-cc", "a=rtcp-fb:\(pt) ccm fir",
                         "a=rtcp-fb:\(pt) nack", "a=rtcp-fb:\(pt) nack pli"]
            if let fmtp { block.append("a=fmtp:\(pt) \(fmtp)") }
            block += ["a=rtpmap:\(pt + 1) rtx/90000", "a=fmtp:\(pt + 1) apt=\(pt)"]
            let mLine = "m=video 9 UDP/TLS/RTP/SAVPF " + (payloadTypes + [pt, pt + 1]).map(String.init).joined(separator: " ")
            if size(session + audio + [mLine] + video + codecLines + block + ssrcs) > bytes { break }
            codecLines += block
            payloadTypes += [pt, pt + 1]
            pt += 2
        }
        video.insert("m=video 9 UDP/TLS/RTP/SAVPF " + payloadTypes.map(String.init).joined(separator: " "), at: 0)
        video += codecLines + ssrcs
        // The rest with ssrc attributes, as a simulcast sender's SDP has.
        var ssrc = 100
        while size(session + audio + video) + 45 <= bytes {
            video.append("a=ssrc:27348\(ssrc) cname:Xr4wZ0q2H8pYbT1d")
            ssrc += 1
        }
        let head = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1"].map { $0 + "\\r\\n" }.joined() + "s="
        let rest = ["t=0 0", "a=group:BUNDLE 0 1", "a=extmap-allow-mixed", "a=msid-semantic: WMS 6bd4c1f0-3c1e-4c55-9d4b-2a1f0e2d7c11"] + audio + video
        let tail = "\\r\\n" + rest.map { $0 + "\\r\\n" }.joined()
        return (head, tail)
    }
}
