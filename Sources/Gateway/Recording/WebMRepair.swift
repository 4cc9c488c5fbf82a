import Foundation
import Recordings
import GStreamer
import Synchronization

/// Makes a WebM file that was cut off (the gateway was killed, the machine lost power) seekable again,
/// and tells whether a file needs that.
///
/// A recording cut off before EOS still demuxes up to its last written block (see `WebMFormat`), but its
/// header has no duration and it has no Cues index, so players cannot seek in it. `repair` remuxes what
/// is readable, without transcoding: `filesrc ! matroskademux ! queue ! webmmux ! filesink`.
///
/// The original is kept by default: the repaired copy is written to `NAME.repaired.webm` (through a
/// `.part` file renamed when complete), so a repair that reads less than a player would never destroys
/// anything. `replacingOriginal: true` swaps the repaired file in for the original instead.
///
/// ```swift
/// if try !WebMRepair.inspect(file).isFinalized {
///     let repaired = try await WebMRepair.repair(file)
/// }
/// ```
public enum WebMRepair {
    /// What a WebM file's top-level structure says.
    public struct Inspection: Sendable, Equatable {
        /// The segment's duration in seconds, if the header holds a real one.
        public var duration: Double?
        /// Whether a Cues index (seek table) is present.
        public var hasCues: Bool
        public var clusters: Int
        /// The walk stopped at an element of unknown size or one running past the end of the file: the
        /// file was cut off while being written.
        public var isTruncated: Bool

        /// Finalized by its muxer: a duration and an index, nothing cut off. Players can seek in it.
        public var isFinalized: Bool { duration != nil && hasCues && !isTruncated }
    }

    /// Reads the EBML structure: the Segment's top-level elements (Info for the duration, Cues, Clusters).
    /// Reads headers only, so it is quick on long recordings.
    public static func inspect(_ file: URL) throws -> Inspection {
        guard let handle = try? FileHandle(forReadingFrom: file) else {
            throw GatewayError.recording("cannot read \(file.path): no such file or no permission")
        }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        var reader = EBMLReader(handle: handle, size: size)
        var inspection = Inspection(duration: nil, hasCues: false, clusters: 0, isTruncated: false)
        guard let header = reader.element(), header.id == 0x1A45_DFA3, let headerSize = header.size else {
            throw GatewayError.recording("\(file.lastPathComponent) is not a WebM file (no EBML header)")
        }
        reader.position = header.dataStart + headerSize
        guard let segment = reader.element(), segment.id == 0x1853_8067 else {
            throw GatewayError.recording("\(file.lastPathComponent) has no Matroska segment: nothing was recorded in it")
        }
        let segmentEnd = segment.size.map { min(segment.dataStart + $0, size) } ?? size
        if let segmentSize = segment.size, segment.dataStart + segmentSize > size { inspection.isTruncated = true }
        if segment.size == nil { inspection.isTruncated = true }
        reader.position = segment.dataStart
        var timecodeScale = 1_000_000.0
        var rawDuration: Double?
        while reader.position < segmentEnd, let element = reader.element() {
            switch element.id {
            case 0x1549_A966: // Info
                guard let length = element.size, length < 1 << 20, let data = reader.read(at: element.dataStart, count: Int(length)) else { break }
                var info = EBMLReader(data: data)
                while let child = info.element(), let childSize = child.size {
                    let payload = info.bytes(at: child.dataStart, count: Int(childSize))
                    if child.id == 0x2AD7B1, let value = payload.map(unsignedInteger), value > 0 { timecodeScale = Double(value) }
                    if child.id == 0x4489, let payload { rawDuration = float(payload) }
                    info.position = child.dataStart + childSize
                }
            case 0x1C53_BB6B: inspection.hasCues = true
            case 0x1F43_B675: inspection.clusters += 1
            default: break
            }
            guard let length = element.size, element.dataStart + length <= size else {
                inspection.isTruncated = true
                break
            }
            reader.position = element.dataStart + length
        }
        if let rawDuration, rawDuration > 0 { inspection.duration = rawDuration * timecodeScale / 1e9 }
        return inspection
    }

    /// Remuxes the readable part of `file` into a finalized, seekable WebM and returns its URL:
    /// `NAME.repaired.webm` beside the original, or the original's own URL with `replacingOriginal`.
    public static func repair(_ file: URL, replacingOriginal: Bool = false, timeout: Duration = .seconds(120)) async throws -> URL {
        try GStreamer.initialize()
        guard FileManager.default.isReadableFile(atPath: file.path) else {
            throw GatewayError.recording("cannot repair \(file.path): no such file or no permission")
        }
        let base = file.deletingPathExtension()
        let repaired = base.appendingPathExtension("repaired").appendingPathExtension("webm")
        let partial = repaired.appendingPathExtension("part")
        try? FileManager.default.removeItem(at: partial)
        let counts: RemuxCounts
        do {
            counts = try await remux(file, into: partial, timeout: timeout)
        } catch {
            try? FileManager.default.removeItem(at: partial)
            throw error
        }
        guard try inspect(partial).isFinalized else {
            try? FileManager.default.removeItem(at: partial)
            throw GatewayError.recording("the remuxed copy of \(file.lastPathComponent) is still not finalized; the file may hold no readable frames")
        }
        // rename(2) within one directory: the destination is replaced atomically, never half-written.
        let destination = replacingOriginal ? file : repaired
        guard rename(partial.path, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: partial)
            throw GatewayError.recording("cannot store the repaired copy of \(file.lastPathComponent) as \(destination.lastPathComponent): \(reason); check permissions in \(file.deletingLastPathComponent().path)")
        }
        try writeReport(for: destination, repairing: file, counts: counts)
        return destination
    }

    /// The repaired file's report, marked `repaired`: who, where and when from the original's report (the
    /// one a recording writes as it starts) or, without one, from the file's name; the rest measured on
    /// the repaired file.
    private static func writeReport(for repaired: URL, repairing original: URL, counts: RemuxCounts) throws {
        let attributes = try? FileManager.default.attributesOfItem(atPath: repaired.path)
        let duration = (try? inspect(repaired))?.duration ?? 0
        var report = (try? RecordingReport.read(from: RecordingReport.url(for: original)))
            ?? RecordingReport.provisional(participantID: "", displayName: original.deletingPathExtension().lastPathComponent, room: "",
                                           file: original, start: (attributes?[.creationDate] as? Date) ?? Date())
        report.file = repaired.lastPathComponent
        report.duration = duration
        report.end = report.start.addingTimeInterval(duration)
        report.videoCodec = counts.videoCodec
        report.audioCodec = counts.audioCodec
        report.videoFrames = counts.videoFrames
        report.keyframes = counts.keyframes
        report.audioPackets = counts.audioPackets
        report.bytes = (attributes?[.size] as? Int) ?? 0
        report.finalizedCleanly = true
        report.repaired = true
        report.error = nil
        do {
            try report.write(beside: repaired)
        } catch {
            throw GatewayError.recording("repaired \(repaired.lastPathComponent) but cannot write its report: \(error.localizedDescription)")
        }
    }

    /// What the remux carried.
    private struct RemuxCounts: Sendable {
        var videoFrames = 0
        var keyframes = 0
        var audioPackets = 0
        var videoCodec: String?
        var audioCodec: String?
    }

    private static func remux(_ file: URL, into output: URL, timeout: Duration) async throws -> RemuxCounts {
        let pipeline = try Pipeline(name: "vcall-repair")
        let source = try Element(factory: "filesrc", name: "repair-src")
        try source.set("location", file.path)
        let demux = try Element(factory: "matroskademux", name: "repair-demux")
        let queues = [MediaKindName.video: try Element(factory: "queue", name: "repair-video-queue"),
                      MediaKindName.audio: try Element(factory: "queue", name: "repair-audio-queue")]
        let mux = try Element(factory: "webmmux", name: "repair-mux")
        for property in WebMFormat.muxerProperties { try mux.set(property.name, value: property.value) }
        let sink = try Element(factory: "filesink", name: "repair-sink")
        try sink.set("location", output.path)
        try pipeline.add(source, demux, queues[.video]!, queues[.audio]!, mux, sink)
        try source.link(demux)
        try mux.link(sink)
        let linked = Mutex<Set<MediaKindName>>([])
        let counts = Mutex(RemuxCounts())
        queues[.video]!.staticPad("src")?.addProbe([.buffer, .eventDownstream]) { info in
            counts.withLock { counts in
                if let buffer = info.buffer {
                    counts.videoFrames += 1
                    if !buffer.isDeltaUnit { counts.keyframes += 1 }
                } else if let name = info.event?.caps?.structure(at: 0)?.name {
                    counts.videoCodec = name == "video/x-vp9" ? "VP9" : name == "video/x-vp8" ? "VP8" : name
                }
            }
            return .ok
        }
        queues[.audio]!.staticPad("src")?.addProbe([.buffer, .eventDownstream]) { info in
            counts.withLock { counts in
                if info.buffer != nil {
                    counts.audioPackets += 1
                } else if let name = info.event?.caps?.structure(at: 0)?.name {
                    counts.audioCodec = name == "audio/x-opus" ? "OPUS" : name
                }
            }
            return .ok
        }
        // matroskademux adds every track's pad before it pushes any data, so linking here (links only, no
        // state changes) gives webmmux all its pads before the headers are written.
        let connection = try demux.connect("pad-added") { arguments in
            guard let pad = arguments.first?.objectValue as? Pad else { return nil }
            guard let kind: MediaKindName = pad.name.hasPrefix("video") ? .video : pad.name.hasPrefix("audio") ? .audio : nil,
                  linked.withLock({ $0.insert(kind).inserted }), let queue = queues[kind],
                  let queueSink = queue.staticPad("sink"), let queueSource = queue.staticPad("src") else { return nil }
            do {
                let muxPad = try mux.requestPad(kind == .video ? "video_%u" : "audio_%u")
                try queueSource.link(muxPad)
                try pad.link(queueSink)
            } catch {
                linked.withLock { _ = $0.remove(kind) }
            }
            return nil
        }
        defer { demux.disconnect(connection) }
        let messages = pipeline.messages()
        defer { _ = try? pipeline.setState(.null) }
        do {
            try pipeline.setState(.playing)
        } catch {
            throw GatewayError.recording("cannot repair \(file.lastPathComponent): \(error)")
        }
        // EOS means webmmux finalized the copy. A demuxer error is usually followed by EOS (it pushes EOS when
        // it stops), so it only fails the repair if no EOS follows within 2 s.
        let outcome = Mutex<Result<Void, GatewayError>?>(nil)
        let demuxError = Mutex<(at: ContinuousClock.Instant, text: String)?>(nil)
        let watcher = Task {
            for await message in messages {
                switch message {
                case .endOfStream:
                    outcome.withLock { $0 = $0 ?? .success(()) }
                    return
                case .error(let failure) where failure.source == "repair-sink" || failure.source == "repair-mux":
                    outcome.withLock { $0 = $0 ?? .failure(.recording("cannot write \(output.path): \(failure.message); free space or check permissions")) }
                    return
                case .error(let failure):
                    demuxError.withLock { $0 = $0 ?? (.now, failure.message) }
                default:
                    break
                }
            }
        }
        defer { watcher.cancel() }
        let deadline = ContinuousClock.now + timeout
        while true {
            if let result = outcome.withLock({ $0 }) {
                try result.get()
                break
            }
            if let (at, text) = demuxError.withLock({ $0 }), ContinuousClock.now > at + .seconds(2) {
                throw GatewayError.recording("cannot repair \(file.lastPathComponent): \(text); it holds no readable WebM")
            }
            if ContinuousClock.now > deadline {
                throw GatewayError.recording("repairing \(file.lastPathComponent) took longer than \(timeout); try again with a longer timeout")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        if linked.withLock({ $0.isEmpty }) {
            throw GatewayError.recording("\(file.lastPathComponent) holds no audio or video track that can be read")
        }
        return counts.withLock { $0 }
    }

    private enum MediaKindName: Hashable, Sendable { case video, audio }

    private static func unsignedInteger(_ bytes: [UInt8]) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }

    private static func float(_ bytes: [UInt8]) -> Double? {
        switch bytes.count {
        case 4: Double(Float(bitPattern: UInt32(truncatingIfNeeded: unsignedInteger(bytes))))
        case 8: Double(bitPattern: unsignedInteger(bytes))
        default: nil
        }
    }
}

/// Reads EBML element headers (ID and size, both variable-length integers) from a file or from bytes.
struct EBMLReader {
    struct Header {
        var id: UInt64
        /// nil for "unknown size" (all value bits set), as in a cluster being written.
        var size: UInt64?
        var dataStart: UInt64
    }

    private let handle: FileHandle?
    private let data: [UInt8]
    let size: UInt64
    var position: UInt64 = 0

    init(handle: FileHandle, size: UInt64) {
        self.handle = handle
        self.data = []
        self.size = size
    }

    init(data: [UInt8]) {
        self.handle = nil
        self.data = data
        self.size = UInt64(data.count)
    }

    func read(at offset: UInt64, count: Int) -> [UInt8]? { bytes(at: offset, count: count) }

    func bytes(at offset: UInt64, count: Int) -> [UInt8]? {
        guard count >= 0, offset + UInt64(count) <= size else { return nil }
        if let handle {
            guard (try? handle.seek(toOffset: offset)) != nil, let read = try? handle.read(upToCount: count), read.count == count else { return nil }
            return Array(read)
        }
        return Array(data[Int(offset)..<Int(offset) + count])
    }

    /// The element header at `position`; advances past the header only.
    mutating func element() -> Header? {
        guard let id = vint(keepMarker: true), let (size, isUnknown) = sizeVint() else { return nil }
        return Header(id: id, size: isUnknown ? nil : size, dataStart: position)
    }

    private mutating func vint(keepMarker: Bool) -> UInt64? {
        guard let first = bytes(at: position, count: 1)?.first, first != 0 else { return nil }
        let length = first.leadingZeroBitCount + 1
        guard let all = bytes(at: position, count: length) else { return nil }
        position += UInt64(length)
        var value = UInt64(keepMarker ? first : first & (0xFF >> length))
        for byte in all.dropFirst() { value = value << 8 | UInt64(byte) }
        return value
    }

    private mutating func sizeVint() -> (UInt64, Bool)? {
        guard let first = bytes(at: position, count: 1)?.first, first != 0 else { return nil }
        let length = first.leadingZeroBitCount + 1
        guard let value = vint(keepMarker: false) else { return nil }
        let allOnes: UInt64 = (1 << (7 * UInt64(length))) - 1
        return (value, value == allOnes)
    }
}
