import Foundation
import CGStreamer
import Synchronization

/// An error or warning an element posted: who, GStreamer's text, and what kind of failure it is as a value.
public struct BusError: Sendable, Equatable, CustomStringConvertible {
    /// GLib's error domains that GStreamer's elements report in.
    public enum Domain: Sendable, Equatable {
        case core, library, resource, stream
        case other(String)
    }

    /// The name of the element that posted it.
    public let source: String
    /// GStreamer's message, for people.
    public let message: String
    /// GStreamer's debug text (file, function, often the path or device at fault).
    public let debug: String?
    public let domain: Domain
    /// The code within `domain` (`GstResourceError`, `GstStreamError`, …).
    public let code: Int32

    public init(source: String, message: String, debug: String? = nil, domain: Domain, code: Int32) {
        self.source = source
        self.message = message
        self.debug = debug
        self.domain = domain
        self.code = code
    }

    /// A write failed because the disk (or quota) is full: `GST_RESOURCE_ERROR_NO_SPACE_LEFT`.
    public var isNoSpaceLeft: Bool { domain == .resource && code == Int32(GST_RESOURCE_ERROR_NO_SPACE_LEFT.rawValue) }

    /// Caps could not be agreed on (`GST_STREAM_ERROR_FORMAT`, or a not-negotiated flow).
    public var isFormatMismatch: Bool { domain == .stream && code == Int32(GST_STREAM_ERROR_FORMAT.rawValue) }

    /// The message, the element, and the last line of the debug text (which usually names the culprit).
    public var description: String {
        let detail = debug?.split(separator: "\n").last.map { ": \($0.trimmingCharacters(in: .whitespaces))" } ?? ""
        return "\(message) (from \(source))\(detail)"
    }

    init(source: String, error: UnsafeMutablePointer<GError>?, debug: String?) {
        let domain: Domain
        if let error {
            let quark = error.pointee.domain
            domain = quark == gst_core_error_quark() ? .core
                : quark == gst_library_error_quark() ? .library
                : quark == gst_resource_error_quark() ? .resource
                : quark == gst_stream_error_quark() ? .stream
                : .other(String(cString: g_quark_to_string(quark)))
        } else {
            domain = .other("none")
        }
        self.init(source: source, message: error?.pointee.message.map { String(cString: $0) } ?? "unknown",
                  debug: debug, domain: domain, code: error?.pointee.code ?? 0)
    }
}

/// A message a pipeline posted on its bus.
public enum BusMessage: Sendable {
    case error(BusError)
    case warning(BusError)
    case endOfStream(source: String)
    case stateChanged(source: String, old: State, new: State, pending: State)
    /// A message an element posted with a structure (for example `GstForceKeyUnit` or level readings).
    case element(source: String, structure: Structure)
    /// A message the application posted (see `Bus.post`).
    case application(source: String, structure: Structure)
    /// Any other message: its type name.
    case other(type: String, source: String)

    init(_ message: UnsafeMutablePointer<GstMessage>) {
        let source = vcall_message_source(message)
            .flatMap { takeString(gst_object_get_name($0)) } ?? "?"
        switch vcall_message_type(message) {
        case GST_MESSAGE_ERROR, GST_MESSAGE_WARNING:
            var error: UnsafeMutablePointer<GError>?
            var debug: UnsafeMutablePointer<gchar>?
            let isError = vcall_message_type(message) == GST_MESSAGE_ERROR
            if isError { gst_message_parse_error(message, &error, &debug) } else { gst_message_parse_warning(message, &error, &debug) }
            let failure = BusError(source: source, error: error, debug: takeString(debug))
            if let error { g_error_free(error) }
            self = isError ? .error(failure) : .warning(failure)
        case GST_MESSAGE_EOS:
            self = .endOfStream(source: source)
        case GST_MESSAGE_STATE_CHANGED:
            var old = GST_STATE_VOID_PENDING, new = GST_STATE_VOID_PENDING, pending = GST_STATE_VOID_PENDING
            gst_message_parse_state_changed(message, &old, &new, &pending)
            self = .stateChanged(source: source, old: State(old), new: State(new), pending: State(pending))
        case GST_MESSAGE_ELEMENT, GST_MESSAGE_APPLICATION:
            if let structure = gst_message_get_structure(message) {
                let copy = Structure(copying: structure)
                self = vcall_message_type(message) == GST_MESSAGE_ELEMENT
                    ? .element(source: source, structure: copy) : .application(source: source, structure: copy)
            } else {
                self = .other(type: "element", source: source)
            }
        default:
            self = .other(type: String(cString: gst_message_type_get_name(vcall_message_type(message))), source: source)
        }
    }
}

/// A pipeline's bus, read as an async sequence of messages.
///
/// Messages are delivered by a sync handler on the thread that posts them, which only hands each
/// message to the subscribed streams and never blocks; no thread polls the bus.
/// `@unchecked Sendable`: GstBus is thread-safe and the subscriber list sits behind a Mutex.
public final class Bus: @unchecked Sendable {
    package let pointer: UnsafeMutablePointer<GstBus>

    package init(adopting pointer: UnsafeMutablePointer<GstBus>) { self.pointer = pointer }

    deinit { gst_object_unref(pointer) }

    /// Messages posted from now on, until the bus's pipeline is gone or the consumer stops iterating.
    /// Each call makes a new, independent stream: several tasks may each watch the same bus.
    public func messages(bufferingNewest limit: Int = 10_000) -> AsyncStream<BusMessage> {
        let dispatcher = BusDispatcher.attached(to: pointer)
        let (stream, continuation) = AsyncStream.makeStream(of: BusMessage.self, bufferingPolicy: .bufferingNewest(limit))
        dispatcher.subscribe(continuation)
        return stream
    }

    /// Calls `observer` with every message, synchronously on the thread that posts it and before any
    /// `messages()` stream sees it, until `removeSyncObserver`. For reacting before the poster goes on:
    /// an element posts its error and only then returns a flow error upstream, so an observer can raise a
    /// flag that a pad probe reads in time. The observer must not block, take long or change state.
    ///
    /// ```swift
    /// let failed = Atomic(false)
    /// let token = pipeline.bus!.addSyncObserver { message in
    ///     if case .error(let failure) = message, failure.source == "recorder-sink" { failed.store(true, ordering: .relaxed) }
    /// }
    /// pipeline.bus!.removeSyncObserver(token)
    /// ```
    @discardableResult
    public func addSyncObserver(_ observer: @escaping @Sendable (BusMessage) -> Void) -> BusObserverToken {
        BusDispatcher.attached(to: pointer).addObserver(observer)
    }

    /// Removes an observer added with `addSyncObserver`; it is not called again once this returns.
    public func removeSyncObserver(_ token: BusObserverToken) {
        BusDispatcher.attached(to: pointer).removeObserver(token)
    }

    /// Posts an application message (for example from a streaming callback, to be handled in Swift).
    public func post(application structure: Structure, from element: Element) {
        let message = gst_message_new_application(element.pointer.assumingMemoryBound(to: GstObject.self),
                                                  gst_structure_copy(structure.pointer))
        gst_bus_post(pointer, message)
    }
}

/// Identifies a synchronous bus observer; pass it to `Bus.removeSyncObserver`.
public struct BusObserverToken: Sendable, Hashable {
    let id: Int
}

/// The Swift side of a bus's sync handler: fans messages out to subscribers and remembers the last error
/// (so a failed state change can report GStreamer's own reason). One per GstBus, kept in its qdata.
final class BusDispatcher: Sendable {
    private struct Subscribers {
        var nextID = 0
        var continuations: [Int: AsyncStream<BusMessage>.Continuation] = [:]
        var observers: [Int: @Sendable (BusMessage) -> Void] = [:]
        /// The latest errors (a few), oldest first, and how many there have been in all.
        var recentErrors: [BusError] = []
        var errorCount = 0
    }
    private let state = Mutex(Subscribers())
    private static let attachLock = Mutex(())
    private static let quark = g_quark_from_static_string("vcall-bus-dispatcher")

    /// The dispatcher of `bus`, installing the sync handler the first time.
    static func attached(to bus: UnsafeMutablePointer<GstBus>) -> BusDispatcher {
        attachLock.withLock { _ in
            if let existing = g_object_get_qdata(UnsafeMutableRawPointer(bus).assumingMemoryBound(to: GObject.self), quark) {
                return Unmanaged<BusDispatcher>.fromOpaque(existing).takeUnretainedValue()
            }
            let dispatcher = BusDispatcher()
            let opaque = Unmanaged.passRetained(dispatcher).toOpaque()
            // The handler's destroy-notify owns the retain; the qdata only points at it.
            g_object_set_qdata(UnsafeMutableRawPointer(bus).assumingMemoryBound(to: GObject.self), quark, opaque)
            gst_bus_set_sync_handler(bus, busSyncHandler, opaque, releaseDispatcher)
            return dispatcher
        }
    }

    func subscribe(_ continuation: AsyncStream<BusMessage>.Continuation) {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            state.continuations[state.nextID] = continuation
            return state.nextID
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.continuations.removeValue(forKey: id) }
        }
    }

    func addObserver(_ observer: @escaping @Sendable (BusMessage) -> Void) -> BusObserverToken {
        state.withLock { state in
            defer { state.nextID += 1 }
            state.observers[state.nextID] = observer
            return BusObserverToken(id: state.nextID)
        }
    }

    func removeObserver(_ token: BusObserverToken) {
        _ = state.withLock { $0.observers.removeValue(forKey: token.id) }
    }

    var errorCount: Int { state.withLock { $0.errorCount } }

    /// The first error posted after `count` errors had been seen: the cause, not its echoes.
    func firstError(after count: Int) -> BusError? {
        state.withLock { state in
            let new = state.errorCount - count
            guard new > 0 else { return nil }
            return state.recentErrors[max(0, state.recentErrors.count - new)]
        }
    }

    func dispatch(_ message: UnsafeMutablePointer<GstMessage>) {
        let isError = vcall_message_type(message) == GST_MESSAGE_ERROR
        let (continuations, observers) = state.withLock { (Array($0.continuations.values), Array($0.observers.values)) }
        guard isError || !continuations.isEmpty || !observers.isEmpty else { return }
        let converted = BusMessage(message)
        for observer in observers { observer(converted) }
        if case .error(let failure) = converted {
            state.withLock {
                $0.recentErrors.append(failure)
                if $0.recentErrors.count > 16 { $0.recentErrors.removeFirst() }
                $0.errorCount += 1
            }
        }
        for continuation in continuations { continuation.yield(converted) }
    }

    deinit {
        for continuation in state.withLock({ Array($0.continuations.values) }) { continuation.finish() }
    }
}

private let busSyncHandler: GstBusSyncHandler = { _, message, data in
    guard let message, let data else { return GST_BUS_PASS }
    Unmanaged<BusDispatcher>.fromOpaque(data).takeUnretainedValue().dispatch(message)
    // Dropped: nobody pops this bus, so passing messages on would only queue them forever.
    // A sync handler that drops a message owns it and must unref it.
    vcall_message_unref(message)
    return GST_BUS_DROP
}

private let releaseDispatcher: GDestroyNotify = { data in
    guard let data else { return }
    Unmanaged<BusDispatcher>.fromOpaque(data).release()
}
