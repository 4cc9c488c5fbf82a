import Foundation
import Synchronization
import GStreamer
import Testing

@Suite("Pads, ghost pads and probes")
struct PadTests {
    init() throws { try GStreamer.initialize() }

    @Test("pads link, report their peer and caps, and unlink; a bad link throws the reason")
    func linkAndUnlink() async throws {
        let pipeline = try Pipeline(launch: "videotestsrc name=src num-buffers=3 ! video/x-raw,width=64,height=48 ! fakesink name=sink")
        let sinkPad = try #require(pipeline.element(named: "sink")?.staticPad("sink"))
        #expect(sinkPad.isLinked)
        #expect(sinkPad.direction == .sink)
        _ = try await runToEndOfStream(pipeline)
        let peer = try #require(sinkPad.peer)
        #expect(peer.direction == .source)

        let audio = try Element(factory: "audiotestsrc")
        let video = try Element(factory: "videoconvert")
        let audioPad = try #require(audio.staticPad("src")), videoPad = try #require(video.staticPad("sink"))
        #expect {
            try audioPad.link(videoPad)
        } throws: { error in
            // Told for people, and as a value for code (nobody reads the text to decide).
            guard case GStreamerError.padLink(let reason, _) = error else { return false }
            return reason == .noFormat && "\(error)".contains("cannot link") && "\(error)".contains("no common format")
        }
        #expect(throws: GStreamerError.self) { try audioPad.unlink(videoPad) }
    }

    /// A closure that captured its pad would be owned by the pad it holds: neither would ever be freed.
    @Test("a probe reaches its pad through info.pad and holds no reference to it")
    func probeGetsItsPad() async throws {
        let pipeline = try Pipeline(launch: "fakesrc num-buffers=5 ! identity name=middle ! fakesink")
        let pad = try #require(pipeline.element(named: "middle")?.staticPad("sink"))
        let before = pad.referenceCount
        let names = Mutex<[String]>([])
        pad.addProbe(.buffer) { info in
            names.withLock { $0.append(info.pad.name) }
            return .ok
        }
        #expect(pad.referenceCount == before, "the probe took no reference of its own")
        _ = try await runToEndOfStream(pipeline)
        #expect(names.withLock { $0 } == Array(repeating: "sink", count: 5))
        #expect(pad.referenceCount == before)
    }

    @Test("current caps are known once data flows")
    func currentCaps() async throws {
        let pipeline = try Pipeline(launch: "audiotestsrc num-buffers=2 ! audio/x-raw,rate=16000,channels=1 ! fakesink name=sink")
        _ = try await runToEndOfStream(pipeline)
        // After EOS and NULL the caps are gone; run again and look while playing.
        let probePipeline = try Pipeline(launch: "audiotestsrc is-live=true ! audio/x-raw,rate=16000,channels=1 ! fakesink name=sink")
        let sinkPad = try #require(probePipeline.element(named: "sink")?.staticPad("sink"))
        try probePipeline.setState(.playing)
        defer { _ = try? probePipeline.setState(.null) }
        let deadline = ContinuousClock.now + .seconds(5)
        while sinkPad.currentCaps == nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let caps = try #require(sinkPad.currentCaps)
        #expect(caps.structure(at: 0)?["rate"]?.intValue == 16000)
    }

    @Test("a ghost pad lets a bin be linked like an element")
    func ghostPads() async throws {
        let pipeline = try Pipeline()
        let source = try Element(factory: "videotestsrc")
        try source.set("num-buffers", 3)
        let bin = try Bin(name: "inner")
        let sink = try Element(factory: "fakesink")
        try bin.add(sink)
        let ghost = try GhostPad(name: "sink", target: try #require(sink.staticPad("sink")))
        try bin.addPad(ghost)
        try pipeline.add(source, bin)
        try #require(source.staticPad("src")).link(ghost)
        #expect(ghost.target?.parentElement == sink)
        _ = try await runToEndOfStream(pipeline)
    }

    @Test("a buffer probe sees every buffer; removing it releases the closure")
    func bufferProbe() async throws {
        let pipeline = try Pipeline(launch: "videotestsrc num-buffers=7 ! fakesink name=sink")
        let pad = try #require(pipeline.element(named: "sink")?.staticPad("sink"))
        let buffers = Counter(), keyframes = Counter(), released = Flag()
        let installed = pad.addProbe(.buffer) { [canary = Canary { released.set() }] info in
            _ = canary
            if let buffer = info.buffer {
                buffers.add()
                if !buffer.isDeltaUnit { keyframes.add() }
            }
            return .ok
        }
        let token = try #require(installed)
        _ = try await runToEndOfStream(pipeline)
        #expect(buffers.count == 7)
        #expect(keyframes.count == 7) // raw video frames all stand alone
        #expect(!released.isSet)
        pad.removeProbe(token)
        #expect(released.isSet)
    }

    @Test("a probe returning .remove releases itself; .drop drops data")
    func probeReturns() async throws {
        let pipeline = try Pipeline(launch: "videotestsrc num-buffers=5 ! identity name=mid ! fakesink name=sink")
        let midPad = try #require(pipeline.element(named: "mid")?.staticPad("src"))
        let sinkPad = try #require(pipeline.element(named: "sink")?.staticPad("sink"))
        let seenOnce = Counter(), arrived = Counter(), released = Flag()
        midPad.addProbe(.buffer) { [canary = Canary { released.set() }] _ in _ = canary; seenOnce.add(); return .remove }
        var dropped = 0
        sinkPad.addProbe(.buffer) { _ in arrived.add(); return .ok }
        let dropper = try #require(pipeline.element(named: "mid")?.staticPad("sink"))
        let dropCount = Counter()
        dropper.addProbe(.buffer) { _ in
            dropCount.add()
            return dropCount.count <= 2 ? .drop : .ok
        }
        _ = try await runToEndOfStream(pipeline)
        dropped = 2
        #expect(seenOnce.count == 1)
        #expect(released.isSet)
        #expect(arrived.count == 5 - dropped)
    }

    @Test("an event probe sees end of stream and caps")
    func eventProbe() async throws {
        let pipeline = try Pipeline(launch: "audiotestsrc num-buffers=2 ! fakesink name=sink")
        let pad = try #require(pipeline.element(named: "sink")?.staticPad("sink"))
        let sawEOS = Flag(), sawCaps = Flag()
        pad.addProbe(.eventDownstream) { info in
            if info.event?.isEndOfStream == true { sawEOS.set() }
            if info.event?.caps != nil { sawCaps.set() }
            return .ok
        }
        _ = try await runToEndOfStream(pipeline)
        #expect(sawEOS.isSet)
        #expect(sawCaps.isSet)
    }

    @Test("a sink pad holds stream-start, caps and segment once data flowed; event probes tell sticky events apart")
    func stickyEvents() async throws {
        let pipeline = try Pipeline(launch: "videotestsrc is-live=true ! video/x-raw,width=64,height=48 ! fakesink name=sink")
        let pad = try #require(pipeline.element(named: "sink")?.staticPad("sink"))
        #expect(!pad.hasStickyEvent(.segment))
        let seen = Mutex<[StickyEventType]>([])
        pad.addProbe(.eventDownstream) { info in
            if let type = info.event?.stickyType { seen.withLock { $0.append(type) } }
            return .ok
        }
        try pipeline.setState(.playing)
        let deadline = ContinuousClock.now + .seconds(5)
        while !pad.hasStickyEvent(.segment) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(pad.hasStickyEvent(.streamStart) && pad.hasStickyEvent(.caps) && pad.hasStickyEvent(.segment))
        #expect(seen.withLock { $0 } == [.streamStart, .caps, .segment])
        try pipeline.setState(.null)
        #expect(!pad.hasStickyEvent(.segment), "deactivating the pad clears its sticky events")
    }
}
