import GStreamer
import Synchronization
import Testing

final class Canary: Sendable {
    let onDeinit: @Sendable () -> Void
    init(_ onDeinit: @escaping @Sendable () -> Void) { self.onDeinit = onDeinit }
    deinit { onDeinit() }
}

final class Flag: Sendable {
    private let value = Atomic(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

final class Counter: Sendable {
    private let value = Atomic(0)
    func add() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

@Suite("Properties, signals, promises and caps")
struct PropertyAndSignalTests {
    init() throws { try GStreamer.initialize() }

    @Test("properties read and write as Swift values, enums by nick")
    func properties() throws {
        let source = try Element(factory: "videotestsrc")
        try source.set("num-buffers", 42)
        try source.set("is-live", true)
        try source.set("pattern", "ball")
        #expect(try source.get("num-buffers", as: Int.self) == 42)
        #expect(try source.get("is-live", as: Bool.self) == true)
        #expect(try source.get("pattern", as: String.self) == "ball")
        let volume = try Element(factory: "volume")
        try volume.set("volume", 0.25)
        #expect(try volume.get("volume", as: Double.self) == 0.25)
        let filter = try Element(factory: "capsfilter")
        try filter.set("caps", try Caps("video/x-raw,width=320"))
        #expect(try filter.get("caps").capsValue?.description == "video/x-raw, width=(int)320")
    }

    @Test("bad property names, values and nicks are clear errors")
    func propertyErrors() throws {
        let source = try Element(factory: "videotestsrc")
        #expect(throws: GStreamerError.self) { try source.set("no-such-property", 1) }
        #expect(throws: GStreamerError.self) { try source.set("num-buffers", "many") }
        #expect {
            try source.set("pattern", "plaid")
        } throws: { error in
            "\(error)".contains("'plaid' is not one of") && "\(error)".contains("ball")
        }
    }

    @Test("a connected closure sees every emission and stops at disconnect, which releases it")
    func signalsConnectAndDisconnect() async throws {
        let pipeline = try Pipeline(launch: "fakesrc num-buffers=5 ! fakesink name=sink signal-handoffs=true")
        let sink = try #require(pipeline.element(named: "sink"))
        let handoffs = Counter(), released = Flag()
        let connection = try sink.connect("handoff") { [canary = Canary { released.set() }] arguments in
            _ = canary
            #expect(arguments.count == 2)
            handoffs.add()
            return nil
        }
        _ = try await runToEndOfStream(pipeline)
        #expect(handoffs.count == 5)
        #expect(!released.isSet)
        sink.disconnect(connection)
        #expect(released.isSet)
    }

    @Test("a signal closure is released when its object dies")
    func signalClosureReleasedWithObject() throws {
        let released = Flag()
        do {
            let sink = try Element(factory: "fakesink")
                try sink.connect("handoff") { [canary = Canary { released.set() }] _ in _ = canary; return nil }
        }
        #expect(released.isSet)
    }

    @Test("unknown signals are errors")
    func unknownSignal() throws {
        let sink = try Element(factory: "fakesink")
        #expect(throws: GStreamerError.self) { try sink.connect("no-such-signal") { _ in nil } }
        #expect(throws: GStreamerError.self) { try sink.emit("no-such-signal") }
    }

    @Test("action signals are emitted with converted arguments and return values; promises resolve as async")
    func actionSignalsAndPromises() async throws {
        let pipeline = try Pipeline(launch: "webrtcbin name=w bundle-policy=max-bundle")
        let webrtc = try #require(pipeline.element(named: "w"))
        try pipeline.setState(.playing)
        defer { _ = try? pipeline.setState(.null) }
        let transceiver = try webrtc.emit("add-transceiver", .string("recvonly"),
                                          .caps(try Caps("application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000")))
        #expect(transceiver?.objectValue?.isA("GstWebRTCRTPTransceiver") == true)
        let promise = Promise()
        try webrtc.emit("create-offer", .structure(nil), .promise(promise))
        let reply = try await promise.reply()
        guard case .boxed(let offer)? = reply?["offer"] else {
            Issue.record("create-offer replied without an offer: \(String(describing: reply))")
            return
        }
        #expect(offer.typeName == "GstWebRTCSessionDescription")
    }

    @Test("a promise that is interrupted throws")
    func interruptedPromise() async throws {
        let promise = Promise()
        promise.interrupt()
        await #expect(throws: GStreamerError.self) { _ = try await promise.reply() }
    }

    @Test("caps and structures parse, describe and reject nonsense")
    func capsAndStructures() throws {
        let caps = try Caps("audio/x-raw,rate=48000,channels=2")
        #expect(caps.isFixed)
        #expect(!(try Caps("video/x-raw,width=[1,100]")).isFixed)
        #expect(caps.structure(at: 0)?.name == "audio/x-raw")
        #expect(caps.structure(at: 0)?["rate"]?.intValue == 48000)
        #expect(caps == (try Caps("audio/x-raw, rate=(int)48000, channels=(int)2")))
        #expect(throws: GStreamerError.self) { _ = try Caps("this is not caps !!") }
        let structure = try Structure("vcall-test, step=(int)3, name=(string)hello")
        #expect(structure["step"]?.intValue == 3)
        #expect(structure["name"]?.stringValue == "hello")
        #expect(structure.fieldNames == ["step", "name"])
        try structure.set("done", .bool(true))
        #expect(structure["done"]?.boolValue == true)
    }
}
