import Foundation
import GStreamer
import SignalingProtocol
import Synchronization
import WebRTC

/// One participant's place in a composite: their decoded video scaled to their cell and labelled with
/// their name, a name tile under it (shown while there is no picture), and their decoded audio.
///
/// ```
/// track ─ queue (leaky) ! depay ! decoder ! videoconvert ! textoverlay (name) ─ compositor (z 2, scaled into the cell)
/// videotestsrc (solid, 5 fps, 320×180) ! textoverlay (name, centred)         ─ compositor (z 1, scaled into the cell)
/// track ─ queue (leaky) ! depay ! opusdec ! audioconvert ! audioresample ! caps               ─ audiomixer
/// ```
///
/// - Each branch begins with a leaky queue, so webrtcbin's thread only enqueues and a slow compositor
///   drops this participant's oldest frames instead of holding back the call or their own recording.
/// - The picture and the tile are both always linked; `showPicture` switches which one is seen through
///   the compositor pads' alpha (a pad at alpha 0 is not blended at all).
/// - Elements are named `vcall-rec-…`, so their errors go to the recorder, not to the call.
final class CompositeInput: @unchecked Sendable {
    // @unchecked: every mutable field is only touched from the CompositeRecorder actor; probes read `lastFrame` (atomic).
    let participantID: String
    let displayName: String
    /// Monotonic nanoseconds of the last decoded frame that reached the compositor (0: none yet).
    let lastFrame = Atomic<UInt64>(0)
    /// The participant's voice, for the speaker layout.
    private let voice = VoiceLevel()
    var voiceLevel: Double { voice.dBFS }
    var mediaState: MediaState?
    private(set) var cell: CompositeLayout.Cell
    /// Whether the picture is shown over the tile. A picture pad without a frame yet draws nothing, so the
    /// tile shows through until the first frame, which then appears at once.
    private(set) var showsPicture = true

    private let pipeline: Pipeline
    private let prefix: String
    private let compositor: Element
    private let mixer: Element
    private let counts: CompositeCounts
    /// Nanoseconds each picture is held back (half an output frame; see `attach`).
    private let pictureDelay: Int
    private let tile: (elements: [Element], pad: Pad)
    private var video: (elements: [Element], label: Element, pad: Pad, attachment: TrackAttachment)?
    private var audio: (elements: [Element], pad: Pad, attachment: TrackAttachment)?


    init(participantID: String, displayName: String, cell: CompositeLayout.Cell, pipeline: Pipeline, prefix: String,
         compositor: Element, mixer: Element, counts: CompositeCounts, framerate: Int) throws(GStreamerError) {
        self.participantID = participantID
        self.displayName = displayName
        self.cell = cell
        self.pipeline = pipeline
        self.prefix = prefix
        self.compositor = compositor
        self.mixer = mixer
        self.counts = counts
        pictureDelay = 500_000_000 / max(framerate, 1)
        let source = try Element(factory: "videotestsrc", name: "\(prefix)-tile-src")
        try source.set("is-live", true)
        try source.set("pattern", "solid-color")
        try source.set("foreground-color", UInt(Self.tileColor(for: participantID)))
        let caps = try Element(factory: "capsfilter", name: "\(prefix)-tile-caps")
        // One size for good: the compositor scales the tile into its cell, so a re-flow renegotiates nothing here.
        try caps.set("caps", value: .caps(try Self.cellCaps(Self.tileSize, framerate: 5)))
        let text = try Element(factory: "textoverlay", name: "\(prefix)-tile-text")
        try text.set("text", displayName.isEmpty ? participantID : displayName)
        try text.set("valignment", "center")
        try text.set("halignment", "center")
        try text.set("font-desc", Self.font(pixels: Self.tileSize.height / 6, frameWidth: Self.tileSize.width))
        try text.set("shaded-background", false)
        try text.set("wait-text", false)
        let elements = [source, caps, text]
        try pipeline.add(source, caps, text)
        try source.link(caps)
        try caps.link(text)
        let pad = try compositor.requestPad("sink_%u")
        try Self.place(pad, cell: cell, zorder: 1, alpha: 1)
        guard let output = text.staticPad("src") else { throw .link("the name tile of \(participantID) has no output") }
        try output.link(pad)
        for element in elements.reversed() { try element.syncStateWithParent() }
        tile = (elements, pad)
    }

    /// Decodes `track` into the composite: video into the participant's cell, audio into the mix. A second
    /// track of a kind already present is ignored (false).
    func attach(_ track: ReceivedTrack) throws(GStreamerError) -> Bool {
        guard let codec = track.codec else { throw .invalidArgument("the composite decodes VP8, VP9 and Opus, not \(track.encodingName)") }
        let kind = track.kind.rawValue
        func make(_ factory: String, _ role: String) throws(GStreamerError) -> Element {
            try Element(factory: factory, name: "\(prefix)-\(kind)-\(role)")
        }
        switch track.kind {
        case .video:
            guard video == nil else { return false }
            let queue = try Element.leakyQueue(name: "\(prefix)-video-queue", maxTime: .seconds(1))
            // The label is drawn on the decoded picture, at a size that is a share of its width (textoverlay
            // scales its text with the frame), and the compositor scales both into the cell: nothing in this
            // branch changes when the grid re-flows, so nothing renegotiates while it streams.
            let label = try make("textoverlay", "label")
            try label.set("text", displayName.isEmpty ? participantID : displayName)
            try label.set("valignment", "bottom")
            try label.set("halignment", "left")
            try label.set("shaded-background", true)
            try label.set("font-desc", Self.font(pixels: 22, frameWidth: 640))
            try label.set("wait-text", false)
            let elements = [queue, try codec.makeDepayloader(name: "\(prefix)-video-depay"), try make(codec.decoderName, "decoder"),
                            try make("videoconvert", "convert"), label]
            let pad = try link(elements, into: compositor)
            try Self.place(pad, cell: cell, zorder: 2, alpha: showsPicture ? 1 : 0)
            // The compositor shows a picture in the output frame whose span the picture starts in: up to one
            // output frame before the sound of the same moment. Half an output frame later centres that.
            try pad.set("offset", pictureDelay)
            label.staticPad("src")?.addProbe(.buffer) { [weak self] _ in
                self?.lastFrame.store(UInt64(DispatchTime.now().uptimeNanoseconds), ordering: .relaxed)
                return .ok
            }
            video = (elements, label, pad, try track.attach(queue.staticPad("sink")!, gathering: RecorderBranch.gathering))
        case .audio:
            guard audio == nil else { return false }
            let decoder = try make(codec.decoderName, "decoder")
            if decoder.hasProperty("plc") { try decoder.set("plc", true) }
            let caps = try make("capsfilter", "caps")
            try caps.set("caps", value: .caps(try Caps(CompositeRecorder.audioCaps)))
            let elements = [try Element.leakyQueue(name: "\(prefix)-audio-queue", maxTime: .seconds(1)),
                            try codec.makeDepayloader(name: "\(prefix)-audio-depay"), decoder,
                            try make("audioconvert", "convert"), try make("audioresample", "resample"), caps]
            let pad = try link(elements, into: mixer)
            let voice = self.voice
            caps.staticPad("src")?.addProbe(.buffer) { info in
                info.withBufferBytes { buffer, bytes in
                    voice.add(Self.level(ofS16: bytes), over: buffer.duration.map { Double($0) / 1e9 } ?? 0.02)
                }
                return .ok
            }
            audio = (elements, pad, try track.attach(elements[0].staticPad("sink")!, gathering: RecorderBranch.gathering))
        }
        return true
    }

    /// The loudness of 16-bit samples in dBFS (-120 for silence).
    static func level(ofS16 bytes: UnsafeRawBufferPointer) -> Double {
        let samples = bytes.count / 2
        guard samples > 0 else { return -120 }
        var sum = 0.0
        for index in 0..<samples {
            let sample = Double(Int16(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 2, as: Int16.self)))
            sum += sample * sample
        }
        let meanSquare = sum / Double(samples) / (32768.0 * 32768.0)
        return meanSquare > 1e-12 ? max(-120, 10 * log10(meanSquare)) : -120
    }

    /// The output pad of the video branch (for the recorder's first-picture probe).
    var videoOutput: Pad? { video?.label.staticPad("src") }

    /// Adds `elements` in a chain, links the last to a new request pad of `aggregator`, starts them.
    private func link(_ elements: [Element], into aggregator: Element) throws(GStreamerError) -> Pad {
        // After a failure of the composite nothing enters, so no flow error reaches the track's tee.
        let counts = self.counts
        elements.first?.staticPad("sink")?.addProbe([.buffer, .bufferList]) { _ in counts.admitsInput ? .ok : .drop }
        for element in elements { try pipeline.add(element) }
        for (upstream, downstream) in zip(elements, elements.dropFirst()) { try upstream.link(downstream) }
        let pad = try aggregator.requestPad("sink_%u")
        guard let output = elements.last?.staticPad("src") else { throw .link("\(elements.last?.name ?? "?") has no output") }
        try output.link(pad)
        for element in elements.reversed() { try element.syncStateWithParent() }
        return pad
    }

    /// Moves the participant to `cell`: only the compositor's pads move; it scales the picture and the
    /// tile into the cell, keeping their aspect ratio.
    func move(to cell: CompositeLayout.Cell) {
        guard cell != self.cell else { return }
        self.cell = cell
        try? Self.place(tile.pad, cell: cell, zorder: 1, alpha: showsPicture ? 0 : 1)
        if let video { try? Self.place(video.pad, cell: cell, zorder: 2, alpha: showsPicture ? 1 : 0) }
    }

    /// Shows the picture (true) or the name tile (false).
    func showPicture(_ show: Bool) {
        guard show != showsPicture else { return }
        showsPicture = show
        try? tile.pad.set("alpha", show ? 0.0 : 1.0)
        try? video?.pad.set("alpha", show ? 1.0 : 0.0)
    }

    /// Unlinks everything from the tracks, the compositor and the mixer, and removes it from the pipeline.
    func remove() {
        video?.attachment.detach()
        audio?.attachment.detach()
        let branches: [([Element], Pad, Element)] = [(tile.elements, tile.pad, compositor)]
            + (video.map { [($0.elements, $0.pad, compositor)] } ?? [])
            + (audio.map { [($0.elements, $0.pad, mixer)] } ?? [])
        for (elements, pad, aggregator) in branches {
            // Stopped first, then unlinked: a branch still streaming into an unlinked pad gets not-linked, and
            // its source (the tile's videotestsrc) posts that as an error, which ended the whole composite.
            for element in elements { _ = try? element.setState(.null) }
            if let output = elements.last?.staticPad("src") { try? output.unlink(pad) }
            aggregator.releaseRequestPad(pad)
            for element in elements { try? pipeline.remove(element) }
        }
        video = nil
        audio = nil
    }

    private static func place(_ pad: Pad, cell: CompositeLayout.Cell, zorder: UInt, alpha: Double) throws(GStreamerError) {
        try pad.set("xpos", cell.x)
        try pad.set("ypos", cell.y)
        try pad.set("width", cell.width)
        try pad.set("height", cell.height)
        try pad.set("zorder", zorder)
        try pad.set("alpha", alpha)
        try pad.set("sizing-policy", "keep-aspect-ratio")
    }

    private static func cellCaps(_ cell: CompositeLayout.Cell, framerate: Int?) throws(GStreamerError) -> Caps {
        try CompositeRecorder.pictureCaps(width: cell.width, height: cell.height, framerate: framerate)
    }

    /// A font whose letters are about `pixels` tall on a frame `frameWidth` wide: textoverlay scales its
    /// text with the frame's width (as if every frame were 640 wide), and Pango's points are ¾ of a pixel.
    private static func font(pixels: Int, frameWidth: Int) -> String {
        let points = Double(pixels) * 0.75 * 640 / Double(max(frameWidth, 1))
        return "Sans \(String(format: "%.1f", max(4, points)))"
    }
    /// The name tile's own picture (16:9, scaled into the cell by the compositor).
    private static let tileSize = CompositeLayout.Cell(x: 0, y: 0, width: 320, height: 180)

    /// A dark colour of the participant's own (ARGB), so that neighbouring tiles differ.
    static func tileColor(for participantID: String) -> UInt32 {
        let palette: [UInt32] = [0xFF3C4A5C, 0xFF4A3C5C, 0xFF3C5C4A, 0xFF5C4A3C, 0xFF2F4F4F, 0xFF4F2F3F]
        let hash = participantID.unicodeScalars.reduce(UInt32(2166136261)) { ($0 ^ $1.value) &* 16777619 }
        return palette[Int(hash % UInt32(palette.count))]
    }
}

/// A participant's voice level in dBFS, smoothed over about 300 ms: written by the audio branch's streaming
/// thread (the only writer), read by the recorder.
final class VoiceLevel: Sendable {
    private let bits = Atomic<UInt64>(Double(-120).bitPattern)

    var dBFS: Double { Double(bitPattern: bits.load(ordering: .relaxed)) }

    /// Moves the level towards `level` by the share of 300 ms that `seconds` of audio make.
    func add(_ level: Double, over seconds: Double) {
        let previous = dBFS
        bits.store((previous + (level - previous) * min(1, max(0, seconds) / 0.3)).bitPattern, ordering: .relaxed)
    }
}
