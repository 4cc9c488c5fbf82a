import CGStreamer

/// What a pad probe watches for, and whether it blocks.
public struct PadProbeType: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let idle = PadProbeType(rawValue: GST_PAD_PROBE_TYPE_IDLE.rawValue)
    public static let block = PadProbeType(rawValue: GST_PAD_PROBE_TYPE_BLOCK.rawValue)
    public static let buffer = PadProbeType(rawValue: GST_PAD_PROBE_TYPE_BUFFER.rawValue)
    public static let bufferList = PadProbeType(rawValue: GST_PAD_PROBE_TYPE_BUFFER_LIST.rawValue)
    public static let eventDownstream = PadProbeType(rawValue: GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM.rawValue)
    public static let eventUpstream = PadProbeType(rawValue: GST_PAD_PROBE_TYPE_EVENT_UPSTREAM.rawValue)
    public static let eventFlush = PadProbeType(rawValue: GST_PAD_PROBE_TYPE_EVENT_FLUSH.rawValue)
    public static let queryDownstream = PadProbeType(rawValue: GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM.rawValue)
    public static let queryUpstream = PadProbeType(rawValue: GST_PAD_PROBE_TYPE_QUERY_UPSTREAM.rawValue)

    /// Buffers, buffer lists and downstream events.
    public static let dataDownstream: PadProbeType = [.buffer, .bufferList, .eventDownstream]
    /// Blocks the pad when downstream data arrives.
    public static let blockDownstream: PadProbeType = [.block, .dataDownstream]
}

/// What a probe callback asks the pad to do with the data.
public enum PadProbeReturn: Sendable {
    /// Pass the data on (and keep blocking, for a blocking probe).
    case ok
    /// Drop the data.
    case drop
    /// Remove this probe (unblocking the pad) and pass the data on.
    case remove
    /// Pass the data on without blocking, even for a blocking probe.
    case pass
    /// The callback consumed the data.
    case handled

    var gst: GstPadProbeReturn {
        switch self {
        case .ok: GST_PAD_PROBE_OK
        case .drop: GST_PAD_PROBE_DROP
        case .remove: GST_PAD_PROBE_REMOVE
        case .pass: GST_PAD_PROBE_PASS
        case .handled: GST_PAD_PROBE_HANDLED
        }
    }
}

/// A buffer's timing and flags, as a probe saw it.
public struct BufferInfo: Sendable {
    /// Presentation time in nanoseconds, if set.
    public let pts: UInt64?
    public let dts: UInt64?
    public let duration: UInt64?
    public let size: Int
    /// False for a keyframe (or any buffer that decodes on its own).
    public let isDeltaUnit: Bool
}

/// What a pad probe is called with. Valid only during the callback: do not keep it.
public struct PadProbeInfo {
    package let raw: UnsafeMutablePointer<GstPadProbeInfo>
    private let rawPad: UnsafeMutablePointer<GstPad>

    init(_ raw: UnsafeMutablePointer<GstPadProbeInfo>, pad: UnsafeMutablePointer<GstPad>) {
        self.raw = raw
        self.rawPad = pad
    }

    /// The pad the probe is installed on. A probe that needs its pad takes it from here: a closure that
    /// captured the pad would hold it from inside the pad's own probe list, and neither would ever be freed.
    public var pad: Pad { GLibObject.wrap(retaining: UnsafeMutableRawPointer(rawPad)) as! Pad }

    public var type: PadProbeType { PadProbeType(rawValue: vcall_probe_info_type(raw).rawValue) }

    /// The buffer passing, for buffer probes.
    public var buffer: BufferInfo? {
        guard type.contains(.buffer), let buffer = vcall_probe_info_buffer(raw) else { return nil }
        return BufferInfo(
            pts: clockTime(vcall_buffer_pts(buffer)),
            dts: clockTime(vcall_buffer_dts(buffer)),
            duration: clockTime(vcall_buffer_duration(buffer)),
            size: Int(gst_buffer_get_size(buffer)),
            isDeltaUnit: vcall_buffer_is_delta_unit(buffer) != 0
        )
    }

    /// Lets `body` change the passing buffer's bytes in place (for buffer probes; a shared buffer is
    /// copied first). Returns false when there is no buffer or it cannot be mapped for writing.
    @discardableResult
    public func withWritableBuffer(_ body: (BufferInfo, UnsafeMutableRawBufferPointer) -> Void) -> Bool {
        guard type.contains(.buffer), let described = buffer, let writable = vcall_probe_info_writable_buffer(raw) else { return false }
        var map = GstMapInfo()
        guard gst_buffer_map(writable, &map, GST_MAP_WRITE) != 0 else { return false }
        defer { gst_buffer_unmap(writable, &map) }
        body(described, UnsafeMutableRawBufferPointer(start: map.data, count: Int(map.size)))
        return true
    }

    /// Lets `body` read the passing buffer's bytes (for buffer probes), without copying. Returns false when
    /// there is no buffer or it cannot be mapped.
    @discardableResult
    public func withBufferBytes(_ body: (BufferInfo, UnsafeRawBufferPointer) -> Void) -> Bool {
        guard type.contains(.buffer), let described = buffer, let passing = vcall_probe_info_buffer(raw) else { return false }
        var map = GstMapInfo()
        guard gst_buffer_map(passing, &map, GST_MAP_READ) != 0 else { return false }
        defer { gst_buffer_unmap(passing, &map) }
        body(described, UnsafeRawBufferPointer(start: map.data, count: Int(map.size)))
        return true
    }

    /// The number of buffers in a buffer list, for buffer-list probes.
    public var bufferListCount: Int? {
        guard type.contains(.bufferList), let list = vcall_probe_info_buffer_list(raw) else { return nil }
        return Int(gst_buffer_list_length(list))
    }

    /// The event passing, for event probes.
    public var event: EventInfo? {
        guard !type.intersection([.eventDownstream, .eventUpstream, .eventFlush]).isEmpty,
              let event = vcall_probe_info_event(raw) else { return nil }
        return EventInfo(event)
    }

    /// The RTP header of the buffer passing (timestamp, marker bit, payload type), if it is RTP.
    public var rtpHeader: (timestamp: UInt32, marker: Bool, payloadType: UInt8)? {
        guard type.contains(.buffer), let buffer = vcall_probe_info_buffer(raw) else { return nil }
        var timestamp: guint32 = 0, marker: gboolean = 0, payloadType: guint8 = 0
        guard vcall_rtp_buffer_header(buffer, &timestamp, &marker, &payloadType) != 0 else { return nil }
        return (timestamp, marker != 0, payloadType)
    }
}

private func clockTime(_ value: GstClockTime) -> UInt64? { value == vcall_clock_time_none() ? nil : UInt64(value) }

/// Identifies an installed probe; pass it to `removeProbe`.
public struct PadProbeToken: Sendable, Hashable {
    public let id: UInt
}

private final class ProbeBox {
    let handler: @Sendable (PadProbeInfo) -> PadProbeReturn
    init(_ handler: @escaping @Sendable (PadProbeInfo) -> PadProbeReturn) { self.handler = handler }
}

private let runProbe: GstPadProbeCallback = { pad, info, data in
    guard let pad, let info, let data else { return GST_PAD_PROBE_OK }
    let box = Unmanaged<ProbeBox>.fromOpaque(data).takeUnretainedValue()
    return box.handler(PadProbeInfo(info, pad: pad)).gst
}

private let releaseProbe: GDestroyNotify = { data in
    guard let data else { return }
    Unmanaged<ProbeBox>.fromOpaque(data).release()
}

extension Pad {
    /// Installs a probe. The closure runs on the streaming thread and must not block; a blocking probe
    /// holds the data until the closure returns `.remove` or the probe is removed.
    /// The closure is released when the probe is removed (by `removeProbe`, `.remove`, or the pad dying).
    /// It must not capture this pad (the pad would own a closure that owns the pad): use `info.pad`.
    ///
    /// ```swift
    /// let token = pad.addProbe(.buffer) { info in
    ///     if info.buffer?.isDeltaUnit == false { keyframes.add(1) }
    ///     return .ok
    /// }
    /// pad.removeProbe(token)
    /// ```
    @discardableResult
    public func addProbe(_ types: PadProbeType,
                         _ handler: @escaping @Sendable (PadProbeInfo) -> PadProbeReturn) -> PadProbeToken? {
        let box = Unmanaged.passRetained(ProbeBox(handler)).toOpaque()
        let id = gst_pad_add_probe(pad, GstPadProbeType(rawValue: types.rawValue), runProbe, box, releaseProbe)
        // An idle probe on an idle pad runs at once and may remove itself, returning 0.
        return id == 0 ? nil : PadProbeToken(id: UInt(id))
    }

    /// Removes a probe, releasing its closure and unblocking the pad if it blocked.
    public func removeProbe(_ token: PadProbeToken) {
        gst_pad_remove_probe(pad, gulong(token.id))
    }
}
