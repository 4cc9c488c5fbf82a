import CGStreamer

/// A connected signal handler; pass it to `disconnect` to remove it.
public struct SignalConnection: Sendable, Hashable {
    package let id: UInt
}

/// Holds a signal's Swift closure; released by GLib when the closure is finalized
/// (on disconnect, or when the object dies).
private final class SignalHandlerBox {
    let handler: @Sendable ([Value]) -> Value?
    init(_ handler: @escaping @Sendable ([Value]) -> Value?) { self.handler = handler }
}

/// Marshals any signal: converts the C arguments to `Value`s, calls Swift, writes back a return value.
private let marshalSignal: GClosureMarshal = { closure, returnValue, parameterCount, parameters, _, _ in
    guard let closure, let data = vcall_closure_data(closure) else { return }
    let box = Unmanaged<SignalHandlerBox>.fromOpaque(data).takeUnretainedValue()
    var arguments: [Value] = []
    if let parameters, parameterCount > 1 {
        arguments.reserveCapacity(Int(parameterCount) - 1)
        // Parameter 0 is the instance that emitted the signal.
        for index in 1..<Int(parameterCount) { arguments.append(Value(reading: parameters + index)) }
    }
    let result = box.handler(arguments)
    guard let returnValue, let result else { return }
    let type = vcall_value_type(returnValue)
    guard type != vcall_type_invalid(), type != vcall_type_none() else { return }
    withGValue { converted in
        do {
            try result.write(into: converted, as: type, context: "signal return value")
            g_value_copy(converted, returnValue)
        } catch {
            // A wrong return type from Swift leaves GLib's default in place.
        }
    }
}

private let releaseSignalHandler: GClosureNotify = { data, _ in
    guard let data else { return }
    Unmanaged<SignalHandlerBox>.fromOpaque(data).release()
}

extension GLibObject {
    /// Connects a closure to a signal (with an optional detail, as in `notify::connection-state`).
    ///
    /// The closure gets the signal's arguments after the instance and runs on the thread that emits
    /// the signal, often a streaming thread: it must not block. It returns the signal's return value,
    /// or nil for signals without one. GLib releases the closure on `disconnect` or when the object dies.
    ///
    /// ```swift
    /// let connection = try webrtc.connect("on-ice-candidate") { arguments in
    ///     let mline = arguments[0].intValue, candidate = arguments[1].stringValue
    ///     return nil
    /// }
    /// ```
    @discardableResult
    public func connect(_ signal: String, after: Bool = false,
                        _ handler: @escaping @Sendable ([Value]) -> Value?) throws(GStreamerError) -> SignalConnection {
        var signalID: guint = 0
        var detail: GQuark = 0
        guard g_signal_parse_name(signal, vcall_object_type(pointer), &signalID, &detail, 1) != 0 else {
            throw .signal("\(typeName) has no signal '\(signal)'")
        }
        let box = Unmanaged.passRetained(SignalHandlerBox(handler)).toOpaque()
        let closure = g_closure_new_simple(guint(MemoryLayout<GClosure>.size), box)!
        g_closure_add_finalize_notifier(closure, box, releaseSignalHandler)
        g_closure_set_marshal(closure, marshalSignal)
        let id = g_signal_connect_closure_by_id(pointer, signalID, detail, closure, after ? 1 : 0)
        return SignalConnection(id: UInt(id))
    }

    /// Disconnects a handler; its closure is released. Disconnecting twice does nothing.
    public func disconnect(_ connection: SignalConnection) {
        guard g_signal_handler_is_connected(pointer, gulong(connection.id)) != 0 else { return }
        g_signal_handler_disconnect(pointer, gulong(connection.id))
    }

    /// Emits a signal (typically an action signal such as webrtcbin's `create-offer`) and returns its
    /// return value. Arguments are converted to the signal's declared parameter types.
    ///
    /// ```swift
    /// try webrtc.emit("add-ice-candidate", .uint(0), .string("candidate:1 1 UDP ..."))
    /// ```
    @discardableResult
    public func emit(_ signal: String, _ arguments: Value...) throws(GStreamerError) -> Value? {
        try emit(signal, arguments: arguments)
    }

    @discardableResult
    public func emit(_ signal: String, arguments: [Value]) throws(GStreamerError) -> Value? {
        var signalID: guint = 0
        var detail: GQuark = 0
        guard g_signal_parse_name(signal, vcall_object_type(pointer), &signalID, &detail, 0) != 0 else {
            throw .signal("\(typeName) has no signal '\(signal)'")
        }
        var query = GSignalQuery()
        g_signal_query(signalID, &query)
        guard Int(query.n_params) == arguments.count else {
            throw .signal("signal '\(signal)' of \(typeName) takes \(query.n_params) arguments, not \(arguments.count)")
        }
        let staticScope = GType(1) // G_SIGNAL_TYPE_STATIC_SCOPE marks a parameter type; it is not part of the type
        let parameters = UnsafeMutablePointer<GValue>.allocate(capacity: arguments.count + 1)
        parameters.initialize(repeating: GValue(), count: arguments.count + 1)
        defer {
            for index in 0...arguments.count where vcall_value_type(parameters + index) != vcall_type_invalid() {
                g_value_unset(parameters + index)
            }
            parameters.deallocate()
        }
        g_value_init(parameters, vcall_object_type(pointer))
        g_value_set_object(parameters, pointer)
        for (index, argument) in arguments.enumerated() {
            let type = query.param_types[index] & ~staticScope
            try argument.write(into: parameters + index + 1, as: type, context: "argument \(index + 1) of signal '\(signal)'")
        }
        let returnType = query.return_type & ~staticScope
        if returnType == vcall_type_none() {
            g_signal_emitv(parameters, signalID, detail, nil)
            return nil
        }
        return withGValue { returnValue in
            g_value_init(returnValue, returnType)
            g_signal_emitv(parameters, signalID, detail, returnValue)
            return Value(reading: returnValue)
        }
    }
}
