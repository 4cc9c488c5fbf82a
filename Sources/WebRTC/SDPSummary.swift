/// What the peer needs to know of an SDP: per m-line its kind, mid, payload types by codec, the SSRCs
/// it announces, whether it takes NACK feedback and its ICE username fragment.
/// Parsed in Swift because only these few lines matter and the text form is stable (RFC 8866).
struct SDPSummary: Sendable, Equatable {
    struct Media: Sendable, Equatable {
        var kind: String
        var mid: String?
        /// Payload types in the order the m-line lists them (preference order).
        var payloadTypes: [Int]
        /// Encoding name (upper-cased) and clock rate by payload type, from `a=rtpmap`.
        var encodings: [Int: (name: String, clockRate: Int)]
        var direction: String
        /// The SSRCs its `a=ssrc` lines announce (the media stream's and its RTX stream's).
        var ssrcs: Set<UInt32> = []
        /// Payload types with generic NACK feedback (`a=rtcp-fb:96 nack`, not `nack pli`).
        var nackPayloadTypes: Set<Int> = []
        /// `a=ice-ufrag` of this m-line, or of the session when the m-line has none.
        var iceUsernameFragment: String?

        static func == (lhs: Media, rhs: Media) -> Bool {
            lhs.kind == rhs.kind && lhs.mid == rhs.mid && lhs.payloadTypes == rhs.payloadTypes && lhs.direction == rhs.direction
        }

        /// The first payload type (in preference order) with this encoding name.
        func payloadType(for encodingName: String) -> Int? {
            payloadTypes.first { encodings[$0]?.name == encodingName.uppercased() }
        }
    }

    var media: [Media] = []

    init(_ sdp: String) {
        var sessionUsernameFragment: String?
        for rawLine in sdp.split(whereSeparator: \.isNewline) {
            let line = Substring(rawLine)
            if line.hasPrefix("m=") {
                let parts = line.dropFirst(2).split(separator: " ")
                media.append(Media(kind: parts.first.map(String.init) ?? "",
                                   mid: nil,
                                   payloadTypes: parts.dropFirst(3).compactMap { Int($0) },
                                   encodings: [:],
                                   direction: "sendrecv",
                                   iceUsernameFragment: sessionUsernameFragment))
            } else if media.isEmpty, line.hasPrefix("a=ice-ufrag:") {
                sessionUsernameFragment = String(line.dropFirst(12))
            } else if !media.isEmpty, line.hasPrefix("a=") {
                let attribute = line.dropFirst(2)
                let index = media.count - 1
                if attribute.hasPrefix("mid:") {
                    media[index].mid = String(attribute.dropFirst(4))
                } else if attribute.hasPrefix("ice-ufrag:") {
                    media[index].iceUsernameFragment = String(attribute.dropFirst(10))
                } else if attribute.hasPrefix("rtpmap:") {
                    // a=rtpmap:96 VP8/90000
                    let fields = attribute.dropFirst(7).split(separator: " ", maxSplits: 1)
                    if fields.count == 2, let payloadType = Int(fields[0]) {
                        let codec = fields[1].split(separator: "/")
                        media[index].encodings[payloadType] = (codec.first.map { $0.uppercased() } ?? "",
                                                                codec.count > 1 ? Int(codec[1]) ?? 0 : 0)
                    }
                } else if attribute.hasPrefix("ssrc:") {
                    // a=ssrc:317772607 cname:user@host
                    if let ssrc = attribute.dropFirst(5).split(separator: " ").first.flatMap({ UInt32($0) }) {
                        media[index].ssrcs.insert(ssrc)
                    }
                } else if attribute.hasPrefix("rtcp-fb:") {
                    // a=rtcp-fb:96 nack (generic NACK); "a=rtcp-fb:96 nack pli" is a keyframe request instead.
                    let fields = attribute.dropFirst(8).split(separator: " ")
                    if fields.count == 2, fields[1] == "nack" {
                        if fields[0] == "*" {
                            media[index].nackPayloadTypes.formUnion(media[index].payloadTypes)
                        } else if let payloadType = Int(fields[0]) {
                            media[index].nackPayloadTypes.insert(payloadType)
                        }
                    }
                } else if ["sendrecv", "sendonly", "recvonly", "inactive"].contains(String(attribute)) {
                    media[index].direction = String(attribute)
                }
            }
        }
    }

    /// The index of the first m-line of `kind` that offers `encodingName`, and that payload type.
    func firstPayloadType(kind: String, encodingName: String) -> (mline: Int, payloadType: Int)? {
        for (index, entry) in media.enumerated() where entry.kind == kind {
            if let payloadType = entry.payloadType(for: encodingName) { return (index, payloadType) }
        }
        return nil
    }

    var mids: [String?] { media.map(\.mid) }

    /// Each m-line's ICE username fragment, by index.
    var usernameFragments: [String?] { media.map(\.iceUsernameFragment) }

    /// Whether a receiving jitterbuffer should ask for retransmissions, by the SSRCs this (remote)
    /// description announces: yes for video whose m-line negotiated generic NACK (every video transceiver
    /// here sets `do-nack`), no for audio (no transceiver asks for NACK there).
    var retransmissionsBySSRC: [UInt32: Bool] {
        var result: [UInt32: Bool] = [:]
        for entry in media {
            let retransmit = entry.kind == MediaKind.video.rawValue && !entry.nackPayloadTypes.isEmpty
            for ssrc in entry.ssrcs { result[ssrc] = retransmit }
        }
        return result
    }
}
