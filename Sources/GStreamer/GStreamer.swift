import CGStreamer
import Synchronization

/// Process-wide GStreamer set-up.
///
/// ```swift
/// try GStreamer.initialize()
/// let pipeline = try Pipeline(launch: "videotestsrc num-buffers=10 ! fakesink")
/// ```
public enum GStreamer {
    private static let initialization = Mutex<Result<Void, GStreamerError>?>(nil)

    /// Initializes GStreamer once per process; later calls return the first call's outcome.
    public static func initialize() throws(GStreamerError) {
        let result = initialization.withLock { state -> Result<Void, GStreamerError> in
            if let state { return state }
            var error: UnsafeMutablePointer<GError>?
            let outcome: Result<Void, GStreamerError>
            if gst_init_check(nil, nil, &error) != 0 {
                outcome = .success(())
            } else {
                outcome = .failure(.initialization(takeErrorMessage(error) ?? "gst_init failed"))
            }
            state = outcome
            return outcome
        }
        try result.get()
    }

    /// GStreamer's version as "major.minor.micro".
    public static var version: String {
        var major: UInt32 = 0, minor: UInt32 = 0, micro: UInt32 = 0, nano: UInt32 = 0
        gst_version(&major, &minor, &micro, &nano)
        return "\(major).\(minor).\(micro)"
    }

    /// Whether an element factory is installed (for example `vp8enc` or `ximagesrc`).
    public static func hasElement(_ factory: String) -> Bool {
        guard let found = gst_element_factory_find(factory) else { return false }
        gst_object_unref(UnsafeMutableRawPointer(found))
        return true
    }

    /// Nanoseconds on GStreamer's monotonic system clock.
    public static var monotonicNanoseconds: UInt64 { UInt64(g_get_monotonic_time()) * 1000 }
}

/// Errors from GStreamer, carrying GStreamer's own message where it gave one.
public enum GStreamerError: Error, Equatable, CustomStringConvertible, Sendable {
    case initialization(String)
    case missingElement(factory: String)
    case parse(String)
    case property(String)
    case signal(String)
    case stateChange(element: String, target: State, message: String)
    case link(String)
    case promise(String)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .initialization(let message): "GStreamer could not start: \(message)"
        case .missingElement(let factory):
            "GStreamer element '\(factory)' is not installed: run scripts/setup (it installs gstreamer1.0-plugins-base, -good, -bad and gstreamer1.0-nice)"
        case .parse(let message): "invalid pipeline description: \(message)"
        case .property(let message): message
        case .signal(let message): message
        case .stateChange(let element, let target, let message): "\(element) could not change to \(target): \(message)"
        case .link(let message): message
        case .promise(let message): message
        case .invalidArgument(let message): message
        }
    }
}

/// Takes ownership of a GError: returns its message and frees it.
func takeErrorMessage(_ error: UnsafeMutablePointer<GError>?) -> String? {
    guard let error else { return nil }
    defer { g_error_free(error) }
    return error.pointee.message.map { String(cString: $0) }
}

/// Takes ownership of a g_malloc'd C string: returns it as a Swift string and frees it.
func takeString(_ string: UnsafeMutablePointer<gchar>?) -> String? {
    guard let string else { return nil }
    defer { g_free(string) }
    return String(cString: string)
}
