import CGStreamer

extension GLibObject {
    /// Sets a property by name from a Swift value: enums take their nick as a String, caps their text.
    ///
    /// ```swift
    /// try source.set("is-live", true)
    /// try webrtc.set("bundle-policy", "max-bundle")
    /// ```
    public func set(_ property: String, _ value: some ValueConvertible) throws(GStreamerError) {
        try set(property, value: value.value)
    }

    /// Sets a property by name from a `Value`.
    public func set(_ property: String, value: Value) throws(GStreamerError) {
        let spec = try propertySpec(property, writable: true)
        try withGValue { gvalue throws(GStreamerError) in
            try value.write(into: gvalue, as: vcall_param_value_type(spec), context: "property '\(property)' of \(typeName)")
            g_object_set_property(gobject, property, gvalue)
        }
    }

    /// Reads a property by name as a `Value`.
    public func get(_ property: String) throws(GStreamerError) -> Value {
        let spec = try propertySpec(property, writable: false)
        return withGValue { gvalue in
            g_value_init(gvalue, vcall_param_value_type(spec))
            g_object_get_property(gobject, property, gvalue)
            return Value(reading: gvalue)
        }
    }

    /// Reads a property by name as a Swift type.
    ///
    /// ```swift
    /// let state: String = try webrtc.get("connection-state", as: String.self)   // "connected"
    /// ```
    public func get<T: ValueConvertible>(_ property: String, as type: T.Type) throws(GStreamerError) -> T {
        let value = try get(property)
        guard let converted = T(value: value) else {
            throw .property("property '\(property)' of \(typeName) holds \(value), not a \(T.self)")
        }
        return converted
    }

    /// Whether the object has a property of that name.
    public func hasProperty(_ property: String) -> Bool { vcall_find_property(pointer, property) != nil }

    private func propertySpec(_ property: String, writable: Bool) throws(GStreamerError) -> UnsafeMutablePointer<GParamSpec> {
        guard let spec = vcall_find_property(pointer, property) else {
            throw .property("\(typeName) has no property '\(property)'")
        }
        if writable && vcall_param_is_writable(spec) == 0 { throw .property("property '\(property)' of \(typeName) is read-only") }
        if !writable && vcall_param_is_readable(spec) == 0 { throw .property("property '\(property)' of \(typeName) is write-only") }
        return spec
    }
}

extension GLibObject {
    var gobject: UnsafeMutablePointer<GObject> { pointer.assumingMemoryBound(to: GObject.self) }
}
