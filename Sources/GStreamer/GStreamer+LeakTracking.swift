import CGStreamer
import Foundation

extension GStreamer {
    /// Turns on GStreamer's `leaks` tracer so `liveObjectCount()` can count every live GstObject and
    /// GstMiniObject. Must be called before `initialize()`; costs a little on every object made.
    public static func enableLeakTracking() {
        let current = ProcessInfo.processInfo.environment["GST_TRACERS"] ?? ""
        if !current.split(separator: ";").contains(where: { $0.hasPrefix("leaks") }) {
            setenv("GST_TRACERS", current.isEmpty ? "leaks" : current + ";leaks", 1)
        }
    }

    /// The number of GStreamer objects alive now, from the `leaks` tracer; nil if it is not active.
    public static func liveObjectCount() -> Int? {
        guard let tracers = gst_tracing_get_active_tracers() else { return nil }
        defer { g_list_free_full(tracers, { gst_object_unref($0) }) }
        var node: UnsafeMutablePointer<GList>? = tracers
        while let current = node {
            if let tracer = current.pointee.data, String(cString: vcall_object_type_name(tracer)) == "GstLeaksTracer" {
                let wrapped = GLibObject.wrap(retaining: tracer)
                guard let report = (try? wrapped.emit("get-live-objects"))?.structureValue,
                      case .list(let objects)? = report["live-objects-list"] else { return nil }
                return objects.count
            }
            node = current.pointee.next
        }
        return nil
    }

    /// This process's resident set size in bytes (Linux), for memory checks.
    public static func residentSetSize() -> Int? {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
