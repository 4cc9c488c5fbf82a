import GStreamer

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
    /// The GStreamer element that packs this codec into RTP (`rtpvp8pay`, `rtpopuspay`).
    public var payloaderName: String { "rtp\(rawValue.lowercased())pay" }
    /// The element that unpacks it from RTP (`rtpvp8depay`, `rtpopusdepay`).
    public var depayloaderName: String { "rtp\(rawValue.lowercased())depay" }
    /// The decoder (`vp8dec`, `opusdec`).
    public var decoderName: String { "\(rawValue.lowercased())dec" }

    /// The depayloader for received RTP of this codec, set up as every consumer needs it. Video waits for
    /// a keyframe and asks for one when it lacks one (after a loss, too): `rtpvp8depay` only puts the
    /// picture size in its caps on a keyframe, and decoders and muxers need it. Its requests travel
    /// upstream to the `ReceivedTrack`, which throttles them.
    public func makeDepayloader(name: String? = nil) throws(GStreamerError) -> Element {
        let depayloader = try Element(factory: depayloaderName, name: name)
        if kind == .video {
            try depayloader.set("wait-for-keyframe", true)
            try depayloader.set("request-keyframe", true)
        }
        return depayloader
    }

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
