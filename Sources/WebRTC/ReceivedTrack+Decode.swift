import GStreamer

extension ReceivedTrack {
    /// Decodes the track into a sink that discards frames, counting them: `depay ! decoder ! fakesink`,
    /// added to `pipeline`, started and attached. For demos, tests and benchmarks that check media arrives.
    public func decode(in pipeline: Pipeline) throws(GStreamerError) -> DecodedFrameCounter {
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
        let counter = DecodedFrameCounter(kind: kind)
        guard let decoded = decoder.staticPad("src"), let input = depayloader.staticPad("sink") else {
            throw .link("\(codec.decoderName) has no src pad")
        }
        decoded.addProbe(.buffer) { [counter] info in
            if let buffer = info.buffer { counter.record(buffer) }
            return .ok
        }
        _ = try attach(input)
        return counter
    }
}
