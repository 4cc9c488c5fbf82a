import CGStreamer

/// A GLib value as Swift sees it: what properties, signal arguments and structure fields hold.
public enum Value: Sendable, CustomStringConvertible {
    case bool(Bool)
    case int(Int)
    case uint(UInt)
    case double(Double)
    case string(String?)
    /// An enumeration or flags value: its number and its nick (for example `max-bundle`).
    case enumeration(Int, nick: String)
    case object(GLibObject?)
    case caps(Caps?)
    case structure(Structure?)
    case promise(Promise)
    /// A boxed value of a type without a Swift counterpart here.
    case boxed(Boxed)
    /// A list of values (GstValueList or GstValueArray).
    case list([Value])
    /// A value this binding does not convert; its GType name.
    case unsupported(typeName: String)

    public var description: String {
        switch self {
        case .bool(let v): "\(v)"
        case .int(let v): "\(v)"
        case .uint(let v): "\(v)"
        case .double(let v): "\(v)"
        case .string(let v): v ?? "nil"
        case .enumeration(_, let nick): nick
        case .object(let v): v.map { "\($0)" } ?? "nil"
        case .caps(let v): v?.description ?? "nil"
        case .structure(let v): v?.description ?? "nil"
        case .promise: "GstPromise"
        case .boxed(let boxed): "<\(boxed.typeName)>"
        case .list(let values): "{ \(values.map(\.description).joined(separator: ", ")) }"
        case .unsupported(let typeName): "<\(typeName)>"
        }
    }

    public var boolValue: Bool? { if case .bool(let v) = self { v } else { nil } }
    public var stringValue: String? {
        switch self {
        case .string(let v): v
        case .enumeration(_, let nick): nick
        default: nil
        }
    }
    public var intValue: Int? {
        switch self {
        case .int(let v): v
        case .uint(let v): Int(exactly: v)
        case .enumeration(let v, _): v
        case .double(let v): Int(exactly: v)
        default: nil
        }
    }
    public var uintValue: UInt? {
        switch self {
        case .uint(let v): v
        case .int(let v): UInt(exactly: v)
        default: nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .double(let v): v
        case .int(let v): Double(v)
        case .uint(let v): Double(v)
        default: nil
        }
    }
    public var objectValue: GLibObject? { if case .object(let v) = self { v } else { nil } }
    public var structureValue: Structure? { if case .structure(let v) = self { v } else { nil } }
    public var capsValue: Caps? { if case .caps(let v) = self { v } else { nil } }
}

/// Swift types that convert to and from `Value`, so properties read and write as plain Swift values.
public protocol ValueConvertible {
    var value: Value { get }
    init?(value: Value)
}

extension Bool: ValueConvertible {
    public var value: Value { .bool(self) }
    public init?(value: Value) { guard let v = value.boolValue else { return nil }; self = v }
}
extension Int: ValueConvertible {
    public var value: Value { .int(self) }
    public init?(value: Value) { guard let v = value.intValue else { return nil }; self = v }
}
extension UInt: ValueConvertible {
    public var value: Value { .uint(self) }
    public init?(value: Value) { guard let v = value.uintValue else { return nil }; self = v }
}
extension Double: ValueConvertible {
    public var value: Value { .double(self) }
    public init?(value: Value) { guard let v = value.doubleValue else { return nil }; self = v }
}
extension String: ValueConvertible {
    public var value: Value { .string(self) }
    public init?(value: Value) { guard let v = value.stringValue else { return nil }; self = v }
}
extension Caps: ValueConvertible {
    public var value: Value { .caps(self) }
    public convenience init?(value: Value) {
        guard case .caps(let caps?) = value else { return nil }
        self.init(retaining: caps.pointer)
    }
}

// MARK: - GValue conversion (internal: C stays out of the public API)

extension Value {
    /// Reads a GValue (borrowed; not unset).
    init(reading gvalue: UnsafePointer<GValue>) {
        let type = vcall_value_type(gvalue)
        let fundamental = vcall_type_fundamental(type)
        switch fundamental {
        case vcall_type_boolean(): self = .bool(g_value_get_boolean(gvalue) != 0)
        case vcall_type_int(): self = .int(Int(g_value_get_int(gvalue)))
        case vcall_type_uint(): self = .uint(UInt(g_value_get_uint(gvalue)))
        case vcall_type_long(): self = .int(Int(g_value_get_long(gvalue)))
        case vcall_type_ulong(): self = .uint(UInt(g_value_get_ulong(gvalue)))
        case vcall_type_int64(): self = .int(Int(g_value_get_int64(gvalue)))
        case vcall_type_uint64(): self = .uint(UInt(g_value_get_uint64(gvalue)))
        case vcall_type_float(): self = .double(Double(g_value_get_float(gvalue)))
        case vcall_type_double(): self = .double(g_value_get_double(gvalue))
        case vcall_type_string(): self = .string(g_value_get_string(gvalue).map { String(cString: $0) })
        case vcall_type_enum():
            let number = g_value_get_enum(gvalue)
            let enumClass = g_type_class_ref(type).assumingMemoryBound(to: GEnumClass.self)
            defer { g_type_class_unref(enumClass) }
            let nick = g_enum_get_value(enumClass, number).map { String(cString: $0.pointee.value_nick) } ?? "\(number)"
            self = .enumeration(Int(number), nick: nick)
        case vcall_type_flags():
            let number = g_value_get_flags(gvalue)
            self = .enumeration(Int(number), nick: takeString(g_flags_to_string(type, number)) ?? "\(number)")
        case vcall_type_object():
            self = .object(g_value_get_object(gvalue).map { GLibObject.wrap(retaining: $0) })
        default:
            if type == vcall_type_caps() {
                self = .caps(gst_value_get_caps(gvalue).map { Caps(retaining: UnsafeMutablePointer(mutating: $0)) })
            } else if type == vcall_type_structure() {
                self = .structure(gst_value_get_structure(gvalue).map { Structure(copying: $0) })
            } else if type == vcall_type_value_list() || type == vcall_type_value_array() {
                let count = type == vcall_type_value_list() ? gst_value_list_get_size(gvalue) : gst_value_array_get_size(gvalue)
                self = .list((0..<count).compactMap { index in
                    let element = type == vcall_type_value_list()
                        ? gst_value_list_get_value(gvalue, index) : gst_value_array_get_value(gvalue, index)
                    return element.map { Value(reading: $0) }
                })
            } else if type == vcall_type_promise() {
                if let boxed = g_value_get_boxed(gvalue) {
                    self = .promise(Promise(retaining: boxed.assumingMemoryBound(to: GstPromise.self)))
                } else {
                    self = .unsupported(typeName: "GstPromise")
                }
            } else if fundamental == vcall_type_boxed(), let boxed = g_value_get_boxed(gvalue) {
                self = .boxed(Boxed(copying: boxed, type: type))
            } else {
                self = .unsupported(typeName: String(cString: g_type_name(type)))
            }
        }
    }

    /// Writes this value into an unset `GValue`, converting it to `type` (for example a nick to an enum).
    func write(into gvalue: UnsafeMutablePointer<GValue>, as type: GType, context: @autoclosure () -> String) throws(GStreamerError) {
        let fundamental = vcall_type_fundamental(type)
        g_value_init(gvalue, type)
        func mismatch() -> GStreamerError {
            g_value_unset(gvalue)
            return .property("\(context()): cannot use \(self) as \(String(cString: g_type_name(type)))")
        }
        switch (fundamental, self) {
        case (vcall_type_boolean(), .bool(let v)): g_value_set_boolean(gvalue, v ? 1 : 0)
        case (vcall_type_int(), _):
            guard let v = intValue, let narrow = Int32(exactly: v) else { throw mismatch() }
            g_value_set_int(gvalue, narrow)
        case (vcall_type_uint(), _):
            guard let v = intValue, let narrow = UInt32(exactly: v) else { throw mismatch() }
            g_value_set_uint(gvalue, narrow)
        case (vcall_type_long(), _):
            guard let v = intValue else { throw mismatch() }
            g_value_set_long(gvalue, v)
        case (vcall_type_ulong(), _):
            guard let v = uintValue else { throw mismatch() }
            g_value_set_ulong(gvalue, v)
        case (vcall_type_int64(), _):
            guard let v = intValue else { throw mismatch() }
            g_value_set_int64(gvalue, gint64(v))
        case (vcall_type_uint64(), _):
            guard let v = uintValue else { throw mismatch() }
            g_value_set_uint64(gvalue, guint64(v))
        case (vcall_type_float(), _):
            guard let v = doubleValue else { throw mismatch() }
            g_value_set_float(gvalue, Float(v))
        case (vcall_type_double(), _):
            guard let v = doubleValue else { throw mismatch() }
            g_value_set_double(gvalue, v)
        case (vcall_type_string(), .string(let v)): g_value_set_string(gvalue, v)
        case (vcall_type_enum(), .enumeration(let number, _)), (vcall_type_enum(), .int(let number)):
            g_value_set_enum(gvalue, Int32(truncatingIfNeeded: number))
        case (vcall_type_enum(), .string(let nick?)):
            let enumClass = g_type_class_ref(type).assumingMemoryBound(to: GEnumClass.self)
            defer { g_type_class_unref(enumClass) }
            guard let entry = g_enum_get_value_by_nick(enumClass, nick) ?? g_enum_get_value_by_name(enumClass, nick) else {
                let known = (0..<Int(enumClass.pointee.n_values)).map { String(cString: enumClass.pointee.values[$0].value_nick) }
                g_value_unset(gvalue)
                throw .property("\(context()): '\(nick)' is not one of \(known.joined(separator: ", "))")
            }
            g_value_set_enum(gvalue, entry.pointee.value)
        case (vcall_type_flags(), .enumeration(let number, _)), (vcall_type_flags(), .int(let number)):
            g_value_set_flags(gvalue, UInt32(truncatingIfNeeded: number))
        case (vcall_type_flags(), .string(let text?)):
            // GStreamer's deserializer understands "a+b" and nicks for flags.
            g_value_unset(gvalue)
            g_value_init(gvalue, type)
            guard gst_value_deserialize(gvalue, text) != 0 else { throw mismatch() }
        case (vcall_type_object(), .object(let object)): g_value_set_object(gvalue, object?.pointer)
        default:
            if type == vcall_type_caps() {
                switch self {
                case .caps(let caps): gst_value_set_caps(gvalue, caps?.pointer)
                case .string(let text?):
                    guard let caps = gst_caps_from_string(text) else { throw mismatch() }
                    gst_value_set_caps(gvalue, caps)
                    vcall_caps_unref(caps)
                default: throw mismatch()
                }
            } else if type == vcall_type_structure() {
                switch self {
                case .structure(let structure): gst_value_set_structure(gvalue, structure?.pointer)
                case .string(let text?):
                    guard let structure = gst_structure_from_string(text, nil) else { throw mismatch() }
                    gst_value_set_structure(gvalue, structure)
                    gst_structure_free(structure)
                default: throw mismatch()
                }
            } else if type == vcall_type_promise(), case .promise(let promise) = self {
                g_value_set_boxed(gvalue, promise.pointer)
            } else if case .boxed(let boxed) = self, g_type_is_a(boxed.type, type) != 0 {
                g_value_set_boxed(gvalue, boxed.pointer)
            } else if case .string(let text?) = self {
                // Anything GStreamer can parse from text (fractions, ranges, ...).
                guard gst_value_deserialize(gvalue, text) != 0 else { throw mismatch() }
            } else {
                throw mismatch()
            }
        }
    }
}

/// Runs `body` with a zeroed GValue and unsets it afterwards.
func withGValue<R, E: Error>(_ body: (UnsafeMutablePointer<GValue>) throws(E) -> R) throws(E) -> R {
    let gvalue = UnsafeMutablePointer<GValue>.allocate(capacity: 1)
    gvalue.initialize(to: GValue())
    defer {
        if vcall_value_type(gvalue) != vcall_type_invalid() { g_value_unset(gvalue) }
        gvalue.deallocate()
    }
    return try body(gvalue)
}
