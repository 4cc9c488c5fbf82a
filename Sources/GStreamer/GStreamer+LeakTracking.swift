import CGStreamer
import Foundation

extension GStreamer {
    /// Turns on GStreamer's `leaks` tracer so an `ObjectCensus` can count GstObjects and GstMiniObjects
    /// made and destroyed. Must be called before `initialize()`; costs a little on every object made.
    public static func enableLeakTracking() {
        let current = ProcessInfo.processInfo.environment["GST_TRACERS"] ?? ""
        if !current.split(separator: ";").contains(where: { $0.hasPrefix("leaks") }) {
            setenv("GST_TRACERS", current.isEmpty ? "leaks" : current + ";leaks", 1)
        }
    }

    /// This process's resident set size in bytes (Linux), for memory checks.
    public static func residentSetSize() -> Int? {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// Counts the GStreamer objects made since the census began that are still alive, with the `leaks`
/// tracer's activity checkpoints.
///
/// Why checkpoints and not the tracer's `get-live-objects`: that list holds references the tracer never
/// took (GStreamer 1.22 "takes ownership" of each live object), so freeing it unrefs objects it does not
/// own, and an object another thread is finalizing at that moment is unreffed twice. Checkpoints carry
/// only type names and addresses and touch no object.
public final class ObjectCensus {
    private let tracer: GLibObject
    /// Per address: objects made there minus objects destroyed there, and the type last made there.
    private var balance: [String: (count: Int, typeName: String)] = [:]
    public private(set) var created = 0
    public private(set) var destroyed = 0

    /// Starts counting; nil if the leaks tracer is not active (see `GStreamer.enableLeakTracking`).
    public init?() {
        guard let tracers = gst_tracing_get_active_tracers() else { return nil }
        defer { g_list_free_full(tracers, { gst_object_unref($0) }) }
        var found: GLibObject?
        var node: UnsafeMutablePointer<GList>? = tracers
        while let current = node, found == nil {
            if let tracer = current.pointee.data, String(cString: vcall_object_type_name(tracer)) == "GstLeaksTracer" {
                found = GLibObject.wrap(retaining: tracer)
            }
            node = current.pointee.next
        }
        guard let found else { return nil }
        do { _ = try found.emit("activity-start-tracking") } catch { return nil }
        tracer = found
    }

    deinit { _ = try? tracer.emit("activity-stop-tracking") }

    /// Takes a checkpoint (which also keeps the tracer's own tables small) and returns how many objects
    /// made since the census began are alive now.
    @discardableResult
    public func update() -> Int {
        if let checkpoint = (try? tracer.emit("activity-get-checkpoint"))?.structureValue {
            for (field, delta) in [("objects-created-list", 1), ("objects-removed-list", -1)] {
                guard case .list(let entries)? = checkpoint[field] else { continue }
                for case .structure(let entry?) in entries {
                    guard let address = entry["address"]?.stringValue else { continue }
                    let typeName = entry["type-name"]?.stringValue ?? "?"
                    let previous = balance[address] ?? (0, typeName)
                    let count = previous.count + delta
                    balance[address] = count == 0 ? nil : (count, delta > 0 ? typeName : previous.typeName)
                    if delta > 0 { created += 1 } else { destroyed += 1 }
                }
            }
        }
        return created - destroyed
    }

    /// Objects made since the census began and alive at the last `update()`.
    public var alive: Int { created - destroyed }

    /// Type names of the objects alive at the last `update()` that were made during the census.
    public var aliveTypeNames: [String] {
        balance.values.filter { $0.count > 0 }.flatMap { Array(repeating: $0.typeName, count: $0.count) }.sorted()
    }

    /// Updates until at most `target` objects made during the census are alive, or `timeout` passes;
    /// returns the count. GStreamer lets some objects go on its own threads (a task's last reference to
    /// its pad, a thread pool's), so a count taken the instant after teardown can include objects about to be freed.
    public func settle(toAtMost target: Int = 0, timeout: Duration = .seconds(2)) async -> Int {
        let deadline = ContinuousClock.now + timeout
        while update() > target, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return alive
    }
}
