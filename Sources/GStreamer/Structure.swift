import CGStreamer

/// A named collection of typed fields: message bodies, caps entries, promise replies, stats.
///
/// Owns its own copy; immutable once made, hence `@unchecked Sendable`.
public final class Structure: @unchecked Sendable, CustomStringConvertible {
    package let pointer: UnsafeMutablePointer<GstStructure>

    /// Copies a structure someone else owns.
    package init(copying structure: UnsafePointer<GstStructure>) {
        pointer = gst_structure_copy(structure)
    }

    /// Adopts a structure the caller owned.
    package init(adopting structure: UnsafeMutablePointer<GstStructure>) {
        pointer = structure
    }

    /// Parses a structure from text, for example `application/x-vcall, step=(int)3`.
    public convenience init(_ text: String) throws(GStreamerError) {
        try GStreamer.initialize()
        guard let structure = gst_structure_from_string(text, nil) else { throw .parse("'\(text)' is not a valid structure") }
        self.init(adopting: structure)
    }

    /// An empty structure named `name`.
    public convenience init(name: String) throws(GStreamerError) {
        try GStreamer.initialize()
        self.init(adopting: gst_structure_new_empty(name))
    }

    deinit { gst_structure_free(pointer) }

    public var name: String { String(cString: gst_structure_get_name(pointer)) }
    public var description: String { takeString(gst_structure_to_string(pointer)) ?? name }

    public var fieldNames: [String] {
        (0..<gst_structure_n_fields(pointer)).compactMap { index in
            gst_structure_nth_field_name(pointer, guint(index)).map { String(cString: $0) }
        }
    }

    public func has(_ field: String) -> Bool { gst_structure_has_field(pointer, field) != 0 }

    /// The value of `field`, converted to Swift.
    public subscript(field: String) -> Value? {
        guard let gvalue = gst_structure_get_value(pointer, field) else { return nil }
        return Value(reading: gvalue)
    }

    /// All fields, in order.
    public var fields: [(name: String, value: Value)] {
        fieldNames.compactMap { name in self[name].map { (name, $0) } }
    }

    /// The message of a `GError` held in `field` (webrtcbin replies with one on failure).
    public func errorMessage(_ field: String = "error") -> String? {
        guard let gvalue = gst_structure_get_value(pointer, field),
              vcall_value_holds(gvalue, g_error_get_type()) != 0,
              let boxed = g_value_get_boxed(gvalue) else { return nil }
        let error = boxed.assumingMemoryBound(to: GError.self)
        return error.pointee.message.map { String(cString: $0) }
    }

    /// Sets a field from a Swift value (a new structure is not shared, so this is safe before handing it on).
    public func set(_ field: String, _ value: Value) throws(GStreamerError) {
        let type: GType = switch value {
        case .bool: vcall_type_boolean()
        case .int: vcall_type_int()
        case .uint: vcall_type_uint()
        case .double: vcall_type_double()
        case .string: vcall_type_string()
        case .caps: vcall_type_caps()
        case .structure: vcall_type_structure()
        default: vcall_type_invalid()
        }
        guard type != vcall_type_invalid() else { throw .invalidArgument("cannot store \(value) in structure field \(field)") }
        try withGValue { gvalue throws(GStreamerError) in
            try value.write(into: gvalue, as: type, context: "structure field \(field)")
            gst_structure_set_value(pointer, field, gvalue)
        }
    }
}
