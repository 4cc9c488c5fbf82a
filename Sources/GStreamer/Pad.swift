import CGStreamer

/// Which way data flows through a pad.
public enum PadDirection: Sendable {
    case unknown, source, sink
}

/// The sticky events a pad keeps for its stream (re-sent to a new peer on linking).
public enum StickyEventType: Sendable {
    case streamStart, caps, segment

    var gst: GstEventType {
        switch self {
        case .streamStart: GST_EVENT_STREAM_START
        case .caps: GST_EVENT_CAPS
        case .segment: GST_EVENT_SEGMENT
        }
    }
}

/// A pad: an element's connection point for data.
public class Pad: GLibObject, @unchecked Sendable {
    var pad: UnsafeMutablePointer<GstPad> { pointer.assumingMemoryBound(to: GstPad.self) }

    public var name: String { takeString(gst_object_get_name(pointer.assumingMemoryBound(to: GstObject.self))) ?? "" }

    public var direction: PadDirection {
        switch gst_pad_get_direction(pad) {
        case GST_PAD_SRC: .source
        case GST_PAD_SINK: .sink
        default: .unknown
        }
    }

    /// The element this pad belongs to.
    public var parentElement: Element? {
        gst_pad_get_parent_element(pad).map { Element(adopting: UnsafeMutableRawPointer($0)) }
    }

    /// The pad this one is linked to.
    public var peer: Pad? {
        gst_pad_get_peer(pad).map { GLibObject.wrap(adopting: UnsafeMutableRawPointer($0)) as! Pad }
    }

    public var isLinked: Bool { gst_pad_is_linked(pad) != 0 }

    /// The caps currently flowing through the pad, once negotiated.
    public var currentCaps: Caps? { gst_pad_get_current_caps(pad).map { Caps(adopting: $0) } }

    /// The caps this pad and its peer could agree on.
    public var allowedCaps: Caps? { gst_pad_get_allowed_caps(pad).map { Caps(adopting: $0) } }

    /// The caps this pad can handle.
    public func queryCaps(filter: Caps? = nil) -> Caps { Caps(adopting: gst_pad_query_caps(pad, filter?.pointer)) }

    /// Links this source pad to a sink pad.
    public func link(_ sink: Pad) throws(GStreamerError) {
        let result = gst_pad_link(pad, sink.pad)
        guard result == GST_PAD_LINK_OK else {
            let reason = String(cString: gst_pad_link_get_name(result))
            throw .padLink(reason: PadLinkFailure(result), message: "cannot link \(fullName) to \(sink.fullName): \(reason)")
        }
    }

    /// Unlinks this source pad from a sink pad.
    public func unlink(_ sink: Pad) throws(GStreamerError) {
        guard gst_pad_unlink(pad, sink.pad) != 0 else {
            throw .link("\(fullName) is not linked to \(sink.fullName)")
        }
    }

    /// "element:pad", for messages.
    public var fullName: String { "\(parentElement?.name ?? "?"):\(name)" }

    /// Sends an event from this pad (upstream from a sink pad, downstream from a source pad).
    @discardableResult
    public func sendEvent(_ event: Event) -> Bool { gst_pad_send_event(pad, event.make()) != 0 }

    /// Pushes an event to this pad's peer.
    @discardableResult
    public func pushEvent(_ event: Event) -> Bool { gst_pad_push_event(pad, event.make()) != 0 }

    /// Whether the pad holds a sticky event of `type`: for a sink pad, whether one has arrived since the
    /// pad was last activated or flushed (a source swapped in can then leave its own out).
    public func hasStickyEvent(_ type: StickyEventType) -> Bool {
        guard let event = gst_pad_get_sticky_event(pad, type.gst, 0) else { return false }
        vcall_event_unref(event)
        return true
    }

    /// A timestamp of data on this pad (a buffer's pts) as running time, through the pad's current time
    /// segment: the clock every element of a pipeline shares. nil before a time segment, or outside it.
    public func runningTime(of timestamp: UInt64) -> UInt64? {
        guard let event = gst_pad_get_sticky_event(pad, GST_EVENT_SEGMENT, 0) else { return nil }
        defer { gst_mini_object_unref(vcall_mini_object(event)) }
        var segment: UnsafePointer<GstSegment>?
        gst_event_parse_segment(event, &segment)
        guard let segment, segment.pointee.format == GST_FORMAT_TIME else { return nil }
        let running = UInt64(gst_segment_to_running_time(segment, GST_FORMAT_TIME, guint64(timestamp)))
        return running == vcall_clock_time_none() ? nil : running
    }

    public var isActive: Bool { gst_pad_is_active(pad) != 0 }
    public var isBlocked: Bool { gst_pad_is_blocked(pad) != 0 }
}

/// A pad of a bin that stands for a pad of an element inside it.
public final class GhostPad: Pad, @unchecked Sendable {
    /// A ghost pad for `target`, to be added to the bin holding the target's element.
    public convenience init(name: String, target: Pad) throws(GStreamerError) {
        guard let ghost = gst_ghost_pad_new(name, target.pad) else {
            throw .link("cannot make ghost pad \(name) for \(target.fullName)")
        }
        self.init(adopting: UnsafeMutableRawPointer(ghost))
    }

    /// A ghost pad without a target yet.
    public convenience init(name: String, direction: PadDirection) throws(GStreamerError) {
        let gstDirection = direction == .sink ? GST_PAD_SINK : GST_PAD_SRC
        guard let ghost = gst_ghost_pad_new_no_target(name, gstDirection) else { throw .link("cannot make ghost pad \(name)") }
        self.init(adopting: UnsafeMutableRawPointer(ghost))
    }

    public var target: Pad? {
        gst_ghost_pad_get_target(pointer.assumingMemoryBound(to: GstGhostPad.self))
            .map { GLibObject.wrap(adopting: UnsafeMutableRawPointer($0)) as! Pad }
    }

    public func setTarget(_ target: Pad?) throws(GStreamerError) {
        guard gst_ghost_pad_set_target(pointer.assumingMemoryBound(to: GstGhostPad.self), target?.pad) != 0 else {
            throw .link("cannot retarget ghost pad \(name)")
        }
    }
}
