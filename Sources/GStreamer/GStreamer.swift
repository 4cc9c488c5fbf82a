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
    /// A state change failed; `cause` is the first error the pipeline posted meanwhile, when there was one.
    case stateChange(element: String, target: State, cause: BusError?)
    /// Two pads could not be linked: `reason` says why as a value, `message` for people.
    case padLink(reason: PadLinkFailure, message: String)
    case link(String)
    case promise(String)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .initialization(let message): "GStreamer could not start: \(message)"
        case .missingElement(let factory):
            "GStreamer element '\(factory)' is not installed: install GStreamer's plugins (on Debian: apt-get install gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-nice), then check with gst-inspect-1.0 \(factory)"
        case .parse(let message): "invalid pipeline description: \(message)"
        case .property(let message): message
        case .signal(let message): message
        case .stateChange(let element, let target, let cause):
            "\(element) could not change to \(target): \(cause.map(\.description) ?? "the state change failed (run with GST_DEBUG=3 for GStreamer's log)")"
        case .padLink(_, let message): message
        case .link(let message): message
        case .promise(let message): message
        case .invalidArgument(let message): message
        }
    }
}

/// Why `gst_pad_link` refused, as `GstPadLinkReturn` says.
public enum PadLinkFailure: Sendable, Equatable {
    case wrongHierarchy, alreadyLinked, wrongDirection
    /// The pads have no caps in common.
    case noFormat
    case noScheduling, refused

    init(_ result: GstPadLinkReturn) {
        self = switch result {
        case GST_PAD_LINK_WRONG_HIERARCHY: .wrongHierarchy
        case GST_PAD_LINK_WAS_LINKED: .alreadyLinked
        case GST_PAD_LINK_WRONG_DIRECTION: .wrongDirection
        case GST_PAD_LINK_NOFORMAT: .noFormat
        case GST_PAD_LINK_NOSCHED: .noScheduling
        default: .refused
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
