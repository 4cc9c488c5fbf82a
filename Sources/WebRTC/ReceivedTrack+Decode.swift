import GStreamer

/// `depay ! decoder ! fakesink` for a received track, added to a pipeline and started but not yet
/// attached: put probes on `frames` (depayloaded frames) and `decoded` first, then attach `input`.
public struct DecodeChain {
    /// The depayloader's sink pad: `ReceivedTrack.attach` it.
    public let input: Pad
    /// The depayloader's output: one buffer per encoded frame.
    public let frames: Pad
    /// The decoder's output: one buffer per decoded frame.
    public let decoded: Pad
}

extension ReceivedTrack {
    /// Builds the track's `DecodeChain` in `pipeline`. For demos, tests and benchmarks that check media arrives.
    public func makeDecodeChain(in pipeline: Pipeline) throws(GStreamerError) -> DecodeChain {
        guard let codec else {
            throw .invalidArgument("cannot decode \(encodingName): vcall decodes \(Codec.allCases.map(\.encodingName).joined(separator: ", "))")
        }
        let depayloader = try codec.makeDepayloader()
        let decoder = try Element(factory: codec.decoderName)
        let sink = try Element(factory: "fakesink")
        try sink.set("sync", false)
        try sink.set("async", false)
        try pipeline.add(depayloader, decoder, sink)
        try depayloader.link(decoder)
        try decoder.link(sink)
        for element in [sink, decoder, depayloader] { try element.syncStateWithParent() }
        guard let input = depayloader.staticPad("sink"), let frames = depayloader.staticPad("src"),
              let decoded = decoder.staticPad("src") else {
            throw .link("\(codec.decoderName) or its depayloader has no pads")
        }
        return DecodeChain(input: input, frames: frames, decoded: decoded)
    }

    /// Decodes the track into a sink that discards frames, counting them: `depay ! decoder ! fakesink`,
    /// added to `pipeline`, started and attached.
    public func decode(in pipeline: Pipeline) throws(GStreamerError) -> DecodedFrameCounter {
        let chain = try makeDecodeChain(in: pipeline)
        let counter = DecodedFrameCounter(kind: kind)
        chain.decoded.addProbe(.buffer) { [counter] info in
            if let buffer = info.buffer { counter.record(buffer) }
            return .ok
        }
        _ = try attach(chain.input)
        return counter
    }
}
