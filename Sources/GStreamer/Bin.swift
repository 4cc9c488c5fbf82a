import Foundation
import CGStreamer

/// An element holding other elements.
///
/// ```swift
/// let branch = try Bin(launch: "queue ! vp8dec ! fakesink", ghostUnlinkedPads: true)
/// try pipeline.add(branch)
/// ```
public class Bin: Element, @unchecked Sendable {
    var bin: UnsafeMutablePointer<GstBin> { pointer.assumingMemoryBound(to: GstBin.self) }

    /// An empty bin.
    public convenience init(name: String? = nil) throws(GStreamerError) {
        try GStreamer.initialize()
        self.init(adopting: UnsafeMutableRawPointer(gst_bin_new(name)))
    }

    /// A bin from a launch description; with `ghostUnlinkedPads`, its unlinked pads become the bin's pads.
    public convenience init(launch description: String, ghostUnlinkedPads: Bool = true, name: String? = nil) throws(GStreamerError) {
        try GStreamer.initialize()
        var error: UnsafeMutablePointer<GError>?
        let made = gst_parse_bin_from_description(description, ghostUnlinkedPads ? 1 : 0, &error)
        if let message = takeErrorMessage(error) {
            if let made { gst_object_unref(made) }
            throw .parse(message)
        }
        guard let made else { throw .parse("'\(description)' made no bin") }
        self.init(adopting: UnsafeMutableRawPointer(made))
        if let name { gst_object_set_name(pointer.assumingMemoryBound(to: GstObject.self), name) }
    }

    /// Adds elements; the bin takes its own reference to each.
    public func add(_ elements: Element...) throws(GStreamerError) {
        for element in elements {
            guard gst_bin_add(bin, element.element) != 0 else {
                throw .invalidArgument("cannot add \(element.name) to \(name): it already has a parent or the name is taken")
            }
        }
    }

    /// Adds a linear chain of elements written as a launch description (`a ! b ! c`), links them in order,
    /// and returns them. Unlike `Bin(launch:)` the elements land directly in this bin, so other elements
    /// here can link to them without ghost pads. Caps in the chain (`video/x-raw,width=320`) become capsfilters.
    @discardableResult
    public func addChain(_ description: String) throws(GStreamerError) -> [Element] {
        try GStreamer.initialize()
        var elements: [Element] = []
        for segment in description.split(separator: "!").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }) {
            guard !segment.isEmpty else { throw .parse("empty element in '\(description)'") }
            // A bare caps string stands for a capsfilter, as in gst-launch.
            let firstWord = segment.prefix { $0 != " " && $0 != "," }
            let launch = firstWord.contains("/") ? "capsfilter caps=\"\(segment)\"" : segment
            var error: UnsafeMutablePointer<GError>?
            let made = gst_parse_launch(launch, &error)
            if let message = takeErrorMessage(error) {
                if let made { gst_object_unref(made) }
                throw .parse("\(message) (in '\(segment)')")
            }
            guard let made else { throw .parse("'\(segment)' made no element") }
            let element = Element(adopting: UnsafeMutableRawPointer(made))
            try add(element)
            if let previous = elements.last { try previous.link(element) }
            elements.append(element)
        }
        return elements
    }

    /// Removes an element; set it to NULL state first if it is running.
    public func remove(_ element: Element) throws(GStreamerError) {
        guard gst_bin_remove(bin, element.element) != 0 else {
            throw .invalidArgument("\(element.name) is not in \(name)")
        }
    }

    /// The element named `name`, searching nested bins too.
    public func element(named name: String) -> Element? {
        gst_bin_get_by_name(bin, name).map { GLibObject.wrap(adopting: UnsafeMutableRawPointer($0)) as! Element }
    }

    /// The direct children.
    public var children: [Element] {
        var result: [Element] = []
        let iterator = gst_bin_iterate_elements(bin)
        defer { gst_iterator_free(iterator) }
        forEachObject(in: iterator) { result.append(GLibObject.wrap(retaining: $0) as! Element) }
        return result
    }

    /// Every element inside, recursively.
    public var allElements: [Element] {
        var result: [Element] = []
        let iterator = gst_bin_iterate_recurse(bin)
        defer { gst_iterator_free(iterator) }
        forEachObject(in: iterator) { result.append(GLibObject.wrap(retaining: $0) as! Element) }
        return result
    }

    /// Writes the bin's graph as Graphviz text (for `--log-level debug` diagnostics).
    public func graph() -> String {
        takeString(gst_debug_bin_to_dot_data(bin, GST_DEBUG_GRAPH_SHOW_ALL)) ?? ""
    }
}

/// A top-level bin with a clock and a bus.
///
/// ```swift
/// let pipeline = try Pipeline(launch: "videotestsrc num-buffers=30 ! vp8enc ! fakesink")
/// try pipeline.setState(.playing)
/// for await message in pipeline.messages() { if case .endOfStream = message { break } }
/// try pipeline.setState(.null)
/// ```
public final class Pipeline: Bin, @unchecked Sendable {
    /// An empty pipeline.
    public convenience init(name: String? = nil) throws(GStreamerError) {
        try GStreamer.initialize()
        self.init(adopting: UnsafeMutableRawPointer(gst_pipeline_new(name)))
        attachBus()
    }

    /// A pipeline from a launch description (`gst-launch-1.0` syntax).
    public convenience init(launch description: String, name: String? = nil) throws(GStreamerError) {
        try GStreamer.initialize()
        var error: UnsafeMutablePointer<GError>?
        let made = gst_parse_launch(description, &error)
        if let message = takeErrorMessage(error) {
            if let made { gst_object_unref(made) }
            throw .parse(message)
        }
        guard let made else { throw .parse("'\(description)' made no pipeline") }
        let raw = UnsafeMutableRawPointer(made)
        if vcall_is_a(raw, vcall_type_pipeline()) != 0 {
            self.init(adopting: raw)
        } else {
            // A description of a single element yields that element: put it in a pipeline.
            self.init(adopting: UnsafeMutableRawPointer(gst_pipeline_new(nil)))
            gst_bin_add(bin, made)
        }
        if let name { gst_object_set_name(pointer.assumingMemoryBound(to: GstObject.self), name) }
        attachBus()
    }

    private func attachBus() {
        if let bus = gst_pipeline_get_bus(pointer.assumingMemoryBound(to: GstPipeline.self)) {
            _ = BusDispatcher.attached(to: bus)
            gst_object_unref(bus)
        }
    }

    /// The pipeline's bus messages, from now on (see `Bus.messages()`).
    public func messages() -> AsyncStream<BusMessage> { bus!.messages() }

    deinit {
        // The last owner going away must not leave streaming threads running on a freed pipeline.
        if referenceCount == 1 { gst_element_set_state(element, GST_STATE_NULL) }
    }
}
