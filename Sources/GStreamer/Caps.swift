import CGStreamer

/// Media capabilities, for example `video/x-raw,width=640,height=480`.
///
/// Holds one reference; treated as immutable once made, hence `@unchecked Sendable`.
public final class Caps: @unchecked Sendable, CustomStringConvertible, Equatable {
    package let pointer: UnsafeMutablePointer<GstCaps>

    /// Wraps caps, taking a reference of its own.
    package init(retaining pointer: UnsafeMutablePointer<GstCaps>) {
        self.pointer = vcall_caps_ref(pointer)
    }

    /// Wraps caps, adopting the caller's reference.
    package init(adopting pointer: UnsafeMutablePointer<GstCaps>) {
        self.pointer = pointer
    }

    /// Parses caps from text.
    public convenience init(_ text: String) throws(GStreamerError) {
        try GStreamer.initialize()
        guard let caps = gst_caps_from_string(text) else { throw .parse("'\(text)' is not valid caps") }
        self.init(adopting: caps)
    }

    deinit { vcall_caps_unref(pointer) }

    public var description: String { takeString(gst_caps_to_string(pointer)) ?? "" }
    public var isFixed: Bool { gst_caps_is_fixed(pointer) != 0 }
    public var isAny: Bool { gst_caps_is_any(pointer) != 0 }
    public var isEmpty: Bool { gst_caps_is_empty(pointer) != 0 }
    public var count: Int { Int(gst_caps_get_size(pointer)) }

    /// The structure at `index`, copied.
    public func structure(at index: Int) -> Structure? {
        guard index >= 0, index < count, let structure = gst_caps_get_structure(pointer, guint(index)) else { return nil }
        return Structure(copying: structure)
    }

    public func canIntersect(with other: Caps) -> Bool { gst_caps_can_intersect(pointer, other.pointer) != 0 }

    public static func == (lhs: Caps, rhs: Caps) -> Bool { gst_caps_is_equal(lhs.pointer, rhs.pointer) != 0 }
}
