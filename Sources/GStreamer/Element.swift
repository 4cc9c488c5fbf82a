import CGStreamer

/// A GStreamer element.
///
/// ```swift
/// let encoder = try Element(factory: "vp8enc", name: "video-encoder")
/// try encoder.set("deadline", 1)
/// ```
public class Element: GLibObject, @unchecked Sendable {
    var element: UnsafeMutablePointer<GstElement> { pointer.assumingMemoryBound(to: GstElement.self) }

    /// Makes an element from a factory; throws `missingElement` if the plugin is not installed.
    public convenience init(factory: String, name: String? = nil) throws(GStreamerError) {
        try GStreamer.initialize()
        guard let made = gst_element_factory_make(factory, name) else { throw .missingElement(factory: factory) }
        self.init(adopting: UnsafeMutableRawPointer(made))
    }

    public var name: String { takeString(gst_object_get_name(pointer.assumingMemoryBound(to: GstObject.self))) ?? "" }

    /// The name of the factory that made this element, for example `webrtcbin`.
    public var factoryName: String? {
        guard let factory = gst_element_get_factory(element) else { return nil }
        return takeString(gst_object_get_name(UnsafeMutableRawPointer(factory).assumingMemoryBound(to: GstObject.self)))
    }

    /// The bin holding this element.
    public var parent: Element? {
        gst_object_get_parent(pointer.assumingMemoryBound(to: GstObject.self))
            .map { GLibObject.wrap(adopting: UnsafeMutableRawPointer($0)) as? Element } ?? nil
    }

    /// An element inside this one, when this one is a bin (webrtcbin's `rtpbin`, say), searched recursively.
    public func child(named name: String) -> Element? {
        guard vcall_is_bin(element) != 0 else { return nil }
        return gst_bin_get_by_name(UnsafeMutableRawPointer(element).assumingMemoryBound(to: GstBin.self), name)
            .map { GLibObject.wrap(adopting: UnsafeMutableRawPointer($0)) as? Element } ?? nil
    }

    // MARK: State

    /// Changes state. Throws with GStreamer's own error message if the change fails.
    @discardableResult
    public func setState(_ state: State) throws(GStreamerError) -> StateChangeResult {
        let tracker = bus.map { BusDispatcher.attached(to: $0.pointer) }
        let errorsBefore = tracker?.errorCount ?? 0
        switch gst_element_set_state(element, state.gst) {
        case GST_STATE_CHANGE_SUCCESS: return .success
        case GST_STATE_CHANGE_ASYNC: return .async
        case GST_STATE_CHANGE_NO_PREROLL: return .noPreroll
        default:
            throw .stateChange(element: name, target: state, cause: tracker?.firstError(after: errorsBefore))
        }
    }

    /// The current state, without waiting for a change in progress.
    public var currentState: State {
        var current = GST_STATE_VOID_PENDING, pending = GST_STATE_VOID_PENDING
        gst_element_get_state(element, &current, &pending, 0)
        return State(current)
    }

    /// The current state and any change in progress, waiting up to `timeoutNanoseconds` for it to finish.
    /// Blocks the calling thread: never call it from a GStreamer callback.
    public func state(waitingNanoseconds timeout: UInt64) -> (current: State, pending: State, failed: Bool) {
        var current = GST_STATE_VOID_PENDING, pending = GST_STATE_VOID_PENDING
        let result = gst_element_get_state(element, &current, &pending, GstClockTime(timeout))
        return (State(current), State(pending), result == GST_STATE_CHANGE_FAILURE)
    }

    /// Brings the element to its parent's state (needed for elements added to a running pipeline).
    public func syncStateWithParent() throws(GStreamerError) {
        let tracker = bus.map { BusDispatcher.attached(to: $0.pointer) }
        let errorsBefore = tracker?.errorCount ?? 0
        guard gst_element_sync_state_with_parent(element) != 0 else {
            throw .stateChange(element: name, target: parent?.currentState ?? .playing, cause: tracker?.firstError(after: errorsBefore))
        }
    }

    /// Locks the element's state so that its parent's state changes leave it alone.
    public func setLockedState(_ locked: Bool) { gst_element_set_locked_state(element, locked ? 1 : 0) }

    // MARK: Pads

    /// A pad that always exists, such as `sink` or `src`.
    public func staticPad(_ name: String) -> Pad? {
        gst_element_get_static_pad(element, name).map { GLibObject.wrap(adopting: UnsafeMutableRawPointer($0)) as! Pad }
    }

    /// Requests a pad from a template such as `src_%u` or `sink_%u` (or a concrete name like `sink_0`).
    public func requestPad(_ templateOrName: String, caps: Caps? = nil) throws(GStreamerError) -> Pad {
        let elementClass: UnsafeMutablePointer<GstElementClass> = vcall_element_class(element)
        var template = gst_element_class_get_pad_template(elementClass, templateOrName)
        var requestedName: String? = nil
        if template == nil {
            // A concrete name: find the request template it matches (for example sink_0 → sink_%u).
            template = requestTemplate(matching: templateOrName, in: elementClass)
            requestedName = templateOrName
        }
        guard let template else { throw .link("\(name) has no request pad template '\(templateOrName)'") }
        guard let pad = gst_element_request_pad(element, template, requestedName, caps?.pointer) else {
            throw .link("\(name) refused to make a request pad '\(templateOrName)'")
        }
        return GLibObject.wrap(adopting: UnsafeMutableRawPointer(pad)) as! Pad
    }

    private func requestTemplate(matching name: String, in elementClass: UnsafeMutablePointer<GstElementClass>) -> UnsafeMutablePointer<GstPadTemplate>? {
        var node = gst_element_class_get_pad_template_list(elementClass)
        while let current = node {
            let template = current.pointee.data.assumingMemoryBound(to: GstPadTemplate.self)
            if template.pointee.presence == GST_PAD_REQUEST {
                let pattern = String(cString: template.pointee.name_template)
                let prefix = pattern.prefix { $0 != "%" }
                if pattern.contains("%"), name.hasPrefix(prefix), name.count > prefix.count { return template }
            }
            node = current.pointee.next
        }
        return nil
    }

    /// Gives back a pad from `requestPad`.
    public func releaseRequestPad(_ pad: Pad) { gst_element_release_request_pad(element, pad.pad) }

    /// Adds a pad (typically a ghost pad on a bin).
    public func addPad(_ pad: Pad) throws(GStreamerError) {
        guard gst_element_add_pad(element, pad.pad) != 0 else { throw .link("cannot add pad \(pad.name) to \(name)") }
    }

    /// Removes a pad added with `addPad`.
    public func removePad(_ pad: Pad) throws(GStreamerError) {
        guard gst_element_remove_pad(element, pad.pad) != 0 else { throw .link("cannot remove pad \(pad.name) from \(name)") }
    }

    /// All of the element's pads.
    public var pads: [Pad] {
        var result: [Pad] = []
        let iterator = gst_element_iterate_pads(element)
        defer { gst_iterator_free(iterator) }
        forEachObject(in: iterator) { result.append(GLibObject.wrap(retaining: $0) as! Pad) }
        return result
    }

    /// Links this element to `downstream`, choosing compatible pads, optionally through a caps filter.
    public func link(_ downstream: Element, filter: Caps? = nil) throws(GStreamerError) {
        let linked = if let filter {
            gst_element_link_filtered(element, downstream.element, filter.pointer)
        } else {
            gst_element_link(element, downstream.element)
        }
        guard linked != 0 else { throw .link("cannot link \(name) to \(downstream.name): their pads have no caps in common") }
    }

    /// Unlinks all pads between this element and `downstream`.
    public func unlink(_ downstream: Element) { gst_element_unlink(element, downstream.element) }

    // MARK: Events and threads

    /// Sends an event to the element (for example `.endOfStream` to a pipeline to finalize files).
    @discardableResult
    public func sendEvent(_ event: Event) -> Bool { gst_element_send_event(element, event.make()) != 0 }

    /// Runs `body` on a GStreamer thread pool thread: the way for a streaming callback to change state
    /// without blocking or deadlocking the streaming thread it runs on.
    public func callAsync(_ body: @escaping @Sendable (Element) -> Void) {
        let box = Unmanaged.passRetained(AsyncCallBox(body)).toOpaque()
        gst_element_call_async(element, runAsyncCall, box, releaseAsyncCall)
    }

    /// The bus of the pipeline holding this element (nil before it is in a pipeline).
    ///
    /// Not `gst_element_get_bus` of the element itself: inside a bin that is the bin's private child bus,
    /// whose sync handler forwards the children's messages up. A sync handler of ours installed there
    /// (`BusDispatcher`, by a state change's error tracking or an observer) replaced GStreamer's and
    /// swallowed every later message of that bin's children: errors never reached the pipeline's bus.
    public var bus: Bus? {
        var top: Element = self
        while let parent = top.parent { top = parent }
        return gst_element_get_bus(top.element).map { Bus(adopting: $0) }
    }

    /// The pipeline's running time, in nanoseconds, or nil when not running.
    public var currentRunningTime: UInt64? {
        let time = gst_element_get_current_running_time(element)
        return time == vcall_clock_time_none() ? nil : UInt64(time)
    }
}

private final class AsyncCallBox {
    let body: @Sendable (Element) -> Void
    init(_ body: @escaping @Sendable (Element) -> Void) { self.body = body }
}

private let runAsyncCall: GstElementCallAsyncFunc = { element, data in
    guard let element, let data else { return }
    let box = Unmanaged<AsyncCallBox>.fromOpaque(data).takeUnretainedValue()
    box.body(GLibObject.wrap(retaining: UnsafeMutableRawPointer(element)) as! Element)
}

private let releaseAsyncCall: GDestroyNotify = { data in
    guard let data else { return }
    Unmanaged<AsyncCallBox>.fromOpaque(data).release()
}

/// Calls `body` with each object of a GstIterator, restarting if the collection changes underneath.
func forEachObject(in iterator: UnsafeMutablePointer<GstIterator>?, _ body: (UnsafeMutableRawPointer) -> Void) {
    guard let iterator else { return }
    var collected: [UnsafeMutableRawPointer] = []
    withGValue { item in
        var done = false
        while !done {
            switch gst_iterator_next(iterator, item) {
            case GST_ITERATOR_OK:
                if let object = g_value_get_object(item) {
                    g_object_ref(object)
                    collected.append(object)
                }
                g_value_reset(item)
            case GST_ITERATOR_RESYNC:
                collected.forEach { g_object_unref($0) }
                collected.removeAll()
                gst_iterator_resync(iterator)
            default:
                done = true
            }
        }
    }
    for object in collected {
        body(object)
        g_object_unref(object)
    }
}
