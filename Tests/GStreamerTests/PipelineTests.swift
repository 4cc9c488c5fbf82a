import Foundation
import GStreamer
import Synchronization
import Testing

/// Runs `pipeline` until end of stream (or an error), bounded in time.
func runToEndOfStream(_ pipeline: Pipeline, timeout: Duration = .seconds(10)) async throws -> [BusMessage] {
    let messages = pipeline.messages()
    try pipeline.setState(.playing)
    defer { _ = try? pipeline.setState(.null) }
    return try await withThrowingTaskGroup(of: [BusMessage].self) { group in
        group.addTask {
            var seen: [BusMessage] = []
            for await message in messages {
                seen.append(message)
                if case .endOfStream = message { return seen }
                if case .error(let failure) = message { throw GStreamerError.stateChange(element: "test", target: .playing, cause: failure) }
            }
            return seen
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw GStreamerError.invalidArgument("no end of stream within \(timeout)")
        }
        let result = try await group.next()!
        group.cancelAll()
        return result
    }
}

@Suite("Pipelines, elements and the bus")
struct PipelineTests {
    init() throws { try GStreamer.initialize() }

    @Test("initialize is idempotent and reports GStreamer's version")
    func initializeTwice() throws {
        try GStreamer.initialize()
        try GStreamer.initialize()
        #expect(GStreamer.version.hasPrefix("1."))
        #expect(GStreamer.hasElement("webrtcbin"))
        #expect(!GStreamer.hasElement("no-such-element"))
    }

    @Test("a launched pipeline plays to end of stream and the bus reports state changes and EOS")
    func launchRunsToEndOfStream() async throws {
        let pipeline = try Pipeline(launch: "videotestsrc num-buffers=5 ! fakesink name=sink")
        let messages = try await runToEndOfStream(pipeline)
        #expect(messages.contains { if case .endOfStream = $0 { true } else { false } })
        #expect(messages.contains {
            if case .stateChanged(_, _, let new, _) = $0, new == .playing { true } else { false }
        })
        #expect(pipeline.element(named: "sink")?.factoryName == "fakesink")
    }

    @Test("a single-element description still yields a pipeline")
    func singleElementLaunch() throws {
        let pipeline = try Pipeline(launch: "fakesrc name=only")
        #expect(pipeline.element(named: "only") != nil)
        #expect(pipeline.children.count == 1)
    }

    @Test("an invalid description throws GStreamer's parse message")
    func invalidLaunch() {
        #expect {
            _ = try Pipeline(launch: "videotestsrc ! no-such-element-here")
        } throws: { error in
            guard case GStreamerError.parse(let message) = error else { return false }
            return message.contains("no-such-element-here")
        }
    }

    @Test("a missing plugin is a clear error naming the element and what to do")
    func missingElement() {
        #expect(throws: GStreamerError.missingElement(factory: "vcallnotathing")) {
            _ = try Element(factory: "vcallnotathing")
        }
        // What to do, as commands a user can type anywhere (not a script of vcall's checkout).
        let advice = GStreamerError.missingElement(factory: "x").description
        #expect(advice.contains("apt-get install gstreamer1.0-plugins-base") && advice.contains("gst-inspect-1.0 x"))
        #expect(!advice.contains("scripts/"))
    }

    @Test("a failed state change carries GStreamer's own error message")
    func stateChangeFailure() throws {
        let pipeline = try Pipeline(launch: "filesrc location=/nonexistent/vcall-missing-file ! fakesink")
        #expect {
            try pipeline.setState(.paused)
        } throws: { error in
            guard case GStreamerError.stateChange(_, let target, let cause?) = error else { return false }
            // GStreamer's text and the file it names, and what kind of failure it is as a value.
            return target == .paused && cause.description.contains("vcall-missing-file") && cause.domain == .resource
                && "\(error)".contains("vcall-missing-file")
        }
        try pipeline.setState(.null)
    }

    @Test("elements made from factories are added, linked and found by name")
    func factoriesAndBins() async throws {
        let pipeline = try Pipeline(name: "built")
        let source = try Element(factory: "audiotestsrc", name: "tone")
        try source.set("num-buffers", 4)
        let convert = try Element(factory: "audioconvert")
        let sink = try Element(factory: "fakesink", name: "out")
        try pipeline.add(source, convert, sink)
        try source.link(convert)
        try convert.link(sink)
        #expect(pipeline.element(named: "tone") == source)
        #expect(source.parent == pipeline)
        _ = try await runToEndOfStream(pipeline)
    }

    @Test("addChain puts elements straight into the bin and turns caps into capsfilters")
    func addChain() throws {
        let pipeline = try Pipeline()
        let chain = try pipeline.addChain("videotestsrc ! video/x-raw,width=64,height=48 ! fakesink")
        #expect(chain.map { $0.factoryName } == ["videotestsrc", "capsfilter", "fakesink"])
        #expect(chain.allSatisfy { $0.parent == pipeline })
    }

    @Test("a bin from a description ghosts its unlinked pads")
    func binFromDescription() throws {
        let bin = try Bin(launch: "queue ! fakesink", ghostUnlinkedPads: true)
        let sink = try #require(bin.staticPad("sink"))
        #expect(sink is GhostPad)
        #expect((sink as? GhostPad)?.target != nil)
    }

    @Test("bus messages reach several independent subscribers")
    func twoSubscribers() async throws {
        let pipeline = try Pipeline(launch: "videotestsrc num-buffers=2 ! fakesink")
        let first = pipeline.messages(), second = pipeline.messages()
        try pipeline.setState(.playing)
        defer { _ = try? pipeline.setState(.null) }
        for stream in [first, second] {
            var sawEOS = false
            for await message in stream { if case .endOfStream = message { sawEOS = true; break } }
            #expect(sawEOS)
        }
    }

    @Test("a sync observer sees a message before post returns, and an error on the thread that raised it")
    func syncObserver() async throws {
        let pipeline = try Pipeline(launch: "fakesrc num-buffers=3 sizetype=fixed sizemax=4096 ! filesink name=full location=/dev/full buffer-mode=unbuffered")
        let bus = try #require(pipeline.bus)
        let seen = Mutex<[String]>([])
        let token = bus.addSyncObserver { message in
            switch message {
            case .application(_, let structure): seen.withLock { $0.append(structure.name) }
            case .error(let failure) where failure.source == "full": seen.withLock { $0.append("error: \(failure.message)") }
            default: break
            }
        }
        bus.post(application: try Structure(name: "vcall-probe"), from: pipeline)
        #expect(seen.withLock { $0 } == ["vcall-probe"], "observed during post, before it returned")
        let messages = pipeline.messages()
        try pipeline.setState(.playing)
        defer { _ = try? pipeline.setState(.null) }
        for await message in messages { if case .error(let failure) = message, failure.source == "full" { break } }
        // The stream got the filesink's error after the observer did.
        let observed = seen.withLock { $0 }
        #expect(observed.count == 2)
        #expect(observed.last?.hasPrefix("error: No space left") == true, "\(observed)")
        bus.removeSyncObserver(token)
        bus.post(application: try Structure(name: "after-removal"), from: pipeline)
        #expect(!seen.withLock { $0 }.contains("after-removal"))
    }

    @Test("callAsync runs on a GStreamer thread and may change state there")
    func callAsync() async throws {
        let pipeline = try Pipeline(launch: "fakesrc ! fakesink")
        let caller = pthread_self()
        let ran: pthread_t = await withCheckedContinuation { continuation in
            pipeline.callAsync { element in
                _ = try? element.setState(.ready)
                continuation.resume(returning: pthread_self())
            }
        }
        #expect(ran != caller)
        #expect(pipeline.currentState == .ready)
        try pipeline.setState(.null)
    }
}
