import CGStreamer

/// Events an application sends into a pipeline.
public enum Event: Sendable {
    /// End of stream: lets muxers finalize their files.
    case endOfStream
    /// Asks upstream encoders for a keyframe (sent upstream, for example from a payloader's sink pad).
    case upstreamForceKeyUnit(allHeaders: Bool)
    /// Tells downstream elements that caps may change and asks them to renegotiate.
    case reconfigure

    /// A new event reference, owned by the caller.
    func make() -> UnsafeMutablePointer<GstEvent> {
        switch self {
        case .endOfStream: gst_event_new_eos()
        case .upstreamForceKeyUnit(let allHeaders):
            gst_video_event_new_upstream_force_key_unit(vcall_clock_time_none(), allHeaders ? 1 : 0, 0)
        case .reconfigure: gst_event_new_reconfigure()
        }
    }
}

/// What a pad probe saw of an event.
public struct EventInfo: Sendable {
    public let typeName: String
    public let isEndOfStream: Bool
    public let isFlush: Bool
    /// For a caps event, the new caps.
    public let caps: Caps?
    /// Whether this is a force-key-unit request (upstream or downstream).
    public let isForceKeyUnit: Bool
    /// For stream-start, caps and segment events, which of those it is.
    public let stickyType: StickyEventType?

    init(_ event: UnsafeMutablePointer<GstEvent>) {
        let type = vcall_event_type(event)
        typeName = String(cString: gst_event_type_get_name(type))
        isEndOfStream = type == GST_EVENT_EOS
        isFlush = type == GST_EVENT_FLUSH_START || type == GST_EVENT_FLUSH_STOP
        if type == GST_EVENT_CAPS {
            var caps: UnsafeMutablePointer<GstCaps>?
            gst_event_parse_caps(event, &caps)
            self.caps = caps.map { Caps(retaining: $0) }
        } else {
            caps = nil
        }
        isForceKeyUnit = gst_video_event_is_force_key_unit(event) != 0
        stickyType = switch type {
        case GST_EVENT_STREAM_START: .streamStart
        case GST_EVENT_CAPS: .caps
        case GST_EVENT_SEGMENT: .segment
        default: nil
        }
    }
}
