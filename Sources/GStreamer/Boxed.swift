import CGStreamer

/// A GLib boxed value of a type this binding has no Swift type for (for example a
/// `GstWebRTCSessionDescription`). Owns its own copy; immutable, hence `@unchecked Sendable`.
public final class Boxed: @unchecked Sendable {
    package let pointer: UnsafeMutableRawPointer
    package let type: GType

    /// Copies a boxed value someone else owns.
    package init(copying pointer: UnsafeRawPointer, type: GType) {
        self.pointer = g_boxed_copy(type, pointer)
        self.type = type
    }

    /// Adopts a boxed value the caller owned.
    package init(adopting pointer: UnsafeMutableRawPointer, type: GType) {
        self.pointer = pointer
        self.type = type
    }

    deinit { g_boxed_free(type, pointer) }

    /// The GType name, for example `GstWebRTCSessionDescription`.
    public var typeName: String { String(cString: g_type_name(type)) }
}
