import CGStreamer

/// A GObject that this wrapper holds exactly one reference to.
///
/// A floating reference (fresh from a factory) is sunk on wrap; `deinit` drops the reference.
/// `@unchecked Sendable`: GObject reference counting and property access are thread-safe.
public class GLibObject: @unchecked Sendable, Hashable, CustomStringConvertible {
    /// The wrapped instance; only code of this package may touch it.
    package let pointer: UnsafeMutableRawPointer

    /// Wraps `pointer`, taking one reference of its own, so the caller keeps theirs. A floating reference
    /// is left floating: it belongs to whoever made the object (GStreamer's tracers stay floating, for one).
    package init(retaining pointer: UnsafeMutableRawPointer) {
        self.pointer = pointer
        g_object_ref(pointer)
    }

    /// Wraps `pointer`, adopting a reference the caller owned (transfer full); a floating one is sunk.
    package init(adopting pointer: UnsafeMutableRawPointer) {
        self.pointer = pointer
        if g_object_is_floating(pointer) != 0 { g_object_ref_sink(pointer) }
    }

    deinit { g_object_unref(pointer) }

    /// The GType name, for example `GstWebRTCBin`.
    public var typeName: String { String(cString: vcall_object_type_name(pointer)) }

    public var description: String { "\(typeName)@\(pointer)" }

    public static func == (lhs: GLibObject, rhs: GLibObject) -> Bool { lhs.pointer == rhs.pointer }
    public func hash(into hasher: inout Hasher) { hasher.combine(pointer) }

    /// The instance's current reference count (for tests of ownership).
    public var referenceCount: Int { Int(vcall_object_refcount(pointer)) }

    /// Wraps an instance in the most specific Swift class for its GType, taking a reference of its own.
    package static func wrap(retaining pointer: UnsafeMutableRawPointer) -> GLibObject {
        wrapperClass(for: pointer).init(retainingInstance: pointer)
    }

    /// Wraps an instance in the most specific Swift class, adopting the caller's reference.
    package static func wrap(adopting pointer: UnsafeMutableRawPointer) -> GLibObject {
        wrapperClass(for: pointer).init(adoptingInstance: pointer)
    }

    required package convenience init(retainingInstance pointer: UnsafeMutableRawPointer) {
        self.init(retaining: pointer)
    }

    required package convenience init(adoptingInstance pointer: UnsafeMutableRawPointer) {
        self.init(adopting: pointer)
    }

    private static func wrapperClass(for pointer: UnsafeMutableRawPointer) -> GLibObject.Type {
        if vcall_is_a(pointer, vcall_type_pipeline()) != 0 { return Pipeline.self }
        if vcall_is_a(pointer, vcall_type_bin()) != 0 { return Bin.self }
        if vcall_is_a(pointer, vcall_type_element()) != 0 { return Element.self }
        if vcall_is_a(pointer, gst_ghost_pad_get_type()) != 0 { return GhostPad.self }
        if vcall_is_a(pointer, vcall_type_pad()) != 0 { return Pad.self }
        return GLibObject.self
    }

    /// Whether the instance is of the GType named `typeName` or a subtype of it.
    public func isA(_ typeName: String) -> Bool {
        let type = g_type_from_name(typeName)
        return type != 0 && vcall_is_a(pointer, type) != 0
    }
}
