import Foundation
import GStreamer
import Hummingbird
import Logging
import SignalingServer
import Synchronization

/// A real vcall-server on a free loopback port, with its own data folder; `stop()` shuts it down.
final class TestServer: Sendable {
    let port: Int
    let dataDirectory: URL
    private let task: Task<Void, any Error>

    var webSocketURL: URL { URL(string: "ws://127.0.0.1:\(port)/ws")! }

    /// - Parameters: `port` 0 picks a free one; give the old port and folder to restart a stopped server.
    static func start(port: Int = 0, dataDirectory: URL? = nil) async throws -> TestServer {
        let dataDirectory = dataDirectory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("vcall-gw-\(UUID().uuidString)")
        var configuration = VCallServerConfiguration()
        configuration.port = port
        configuration.dataDirectory = dataDirectory.path
        configuration.bcryptCost = 4
        var logger = Logger(label: "test-server")
        logger.logLevel = .warning
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let app = try await buildApplication(configuration: configuration, logger: logger) { port in
            portSink.yield(port)
            portSink.finish()
        }
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        return TestServer(port: port, dataDirectory: dataDirectory, task: task)
    }

    private init(port: Int, dataDirectory: URL, task: Task<Void, any Error>) {
        self.port = port
        self.dataDirectory = dataDirectory
        self.task = task
    }

    /// Shuts the server down; `keepingData` leaves its folder (and so its resume secret) for a restart.
    func stop(keepingData: Bool = false) async {
        task.cancel()
        _ = try? await task.value
        if !keepingData { try? FileManager.default.removeItem(at: dataDirectory) }
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
func eventually(within timeout: Duration = .seconds(20), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}
