/// Audio or video.
public enum MediaKind: String, Sendable, Codable {
    case audio, video
}

/// The codecs a `WebRTCPeer` sends and decodes, with the GStreamer elements for each.
public enum Codec: String, Sendable, CaseIterable {
    case vp8 = "VP8"
    case vp9 = "VP9"
    case opus = "OPUS"

    public var kind: MediaKind { self == .opus ? .audio : .video }
    public var encodingName: String { rawValue }
    public var clockRate: Int { self == .opus ? 48000 : 90000 }
    var payloader: String { "rtp\(rawValue.lowercased())pay" }
    var depayloader: String { "rtp\(rawValue.lowercased())depay" }
    var decoder: String { "\(rawValue.lowercased())dec" }

    /// Chromium's usual payload types, used when this side makes the offer.
    public var defaultPayloadType: Int {
        switch self {
        case .vp8: 96
        case .vp9: 98
        case .opus: 111
        }
    }

    /// RTP caps for this codec at `payloadType`, as webrtcbin matches them against an offer.
    func rtpCaps(payloadType: Int) -> String {
        var caps = "application/x-rtp,media=\(kind.rawValue),encoding-name=\(encodingName),payload=\(payloadType),clock-rate=\(clockRate)"
        if self == .opus { caps += ",encoding-params=(string)2" }
        return caps
    }

    /// The codec for an RTP encoding name (case-insensitive), if vcall handles it.
    public init?(encodingName: String) {
        self.init(rawValue: encodingName.uppercased())
    }
}
