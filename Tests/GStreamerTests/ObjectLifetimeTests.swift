import Foundation
import GStreamer
import Testing

@Suite("Object lifetimes")
struct ObjectLifetimeTests {
    init() throws { try GStreamer.initialize() }

    @Test("a wrapper owns exactly one reference: a new element has one, a lookup adds one and gives it back")
    func oneReferencePerWrapper() throws {
        let element = try Element(factory: "fakesink", name: "solo")
        #expect(element.referenceCount == 1)
        let pipeline = try Pipeline()
        try pipeline.add(element)
        #expect(element.referenceCount == 2) // ours and the pipeline's
        do {
            let found = try #require(pipeline.element(named: "solo"))
            #expect(found == element)
            #expect(element.referenceCount == 3)
        }
        #expect(element.referenceCount == 2)
        try pipeline.remove(element)
        #expect(element.referenceCount == 1)
    }

    /// Runs `vcall-bench churn` (leaks tracer on) in a child process: 1,000 pipelines made, played to
    /// end of stream, and torn down must leave no live GStreamer objects behind and RSS nearly flat.
    @Test("1,000 pipelines created and torn down leave no live GStreamer objects and no RSS growth",
          .timeLimit(.minutes(2)))
    func thousandPipelines() throws {
        let bench = try #require(executable(named: "vcall-bench"), "vcall-bench must be built next to the tests")
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("churn-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: output) }
        let process = Process()
        process.executableURL = bench
        process.arguments = ["churn", "--count", "1000", "--json", output.path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        struct Result: Decodable {
            var objectsCreated: Int, objectsAliveBefore: Int, objectsAliveAfter: Int, aliveTypeNames: [String]
            var rssBeforeBytes: Int, rssAfterBytes: Int
        }
        let result = try JSONDecoder().decode(Result.self, from: Data(contentsOf: output))
        // Each pipeline makes dozens of objects (elements, pads, buffers, events): the tracer must have seen them.
        #expect(result.objectsCreated > 1000 * 20, "the leaks tracer must be counting")
        #expect(result.objectsAliveAfter <= result.objectsAliveBefore, "alive: \(result.aliveTypeNames)")
        // A real per-pipeline leak (a few dozen objects and their buffers each) would grow RSS by tens of MB.
        #expect(result.rssAfterBytes - result.rssBeforeBytes < 8_000_000)
    }
}

/// An executable built next to the test bundle.
func executable(named name: String) -> URL? {
    let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var directory = testBinary.deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return nil
}
