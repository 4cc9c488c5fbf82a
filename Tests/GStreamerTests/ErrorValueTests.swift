import Foundation
import GStreamer
import Synchronization
import Testing

/// Errors as values: what went wrong can be decided without reading GStreamer's text.
@Suite("Errors as values, and messages from elements inside bins")
struct ErrorValueTests {
    init() throws { try GStreamer.initialize() }

    /// An element's own bus is its bin's private child bus. A state change of an element inside a pipeline
    /// used to install vcall's bus handler there, replacing GStreamer's forwarding handler: every later
    /// message of the pipeline's elements was swallowed, so a recorder never learned its disk was full.
    @Test("after a state change of an element inside the pipeline, its errors still reach the pipeline's bus, with a full disk told as a value")
    func childStateChangeKeepsMessagesFlowing() async throws {
        let pipeline = try Pipeline(launch: "fakesrc num-buffers=3 sizetype=fixed sizemax=4096 ! filesink name=full location=/dev/full buffer-mode=unbuffered")
        let sink = try #require(pipeline.element(named: "full"))
        #expect(sink.bus != nil, "an element in a pipeline has the pipeline's bus")
        try sink.setState(.ready)
        try sink.syncStateWithParent()
        let messages = pipeline.messages()
        try pipeline.setState(.playing)
        defer { _ = try? pipeline.setState(.null) }
        let seen = try await firstError(in: messages, from: "full", within: .seconds(10))
        #expect(seen?.isNoSpaceLeft == true, "\(String(describing: seen))")
        #expect(seen?.domain == .resource)
    }

    private func firstError(in messages: AsyncStream<BusMessage>, from source: String, within timeout: Duration) async throws -> BusError? {
        try await withThrowingTaskGroup(of: BusError?.self) { group in
            group.addTask {
                for await message in messages { if case .error(let failure) = message, failure.source == source { return failure } }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
