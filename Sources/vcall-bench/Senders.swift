import ArgumentParser
import Foundation
import Gateway
import GStreamer
import Logging
import WebRTC

/// Many participants in one process that send one shared, already encoded stream (so the machine's CPU
/// goes to the gateway under test, not to encoders): each joins the room through vcall-server and
/// connects only to the member named by --peer. For the recording-capacity benchmark.
struct Senders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "N participants sending one shared, encoded-once 720p VP8 (~1.5 Mbit/s) + Opus stream to one peer; it flashes and beeps each second."
    )

    @Option(help: "vcall-server's WebSocket.") var server: String
    @Option(parsing: .unconditional, help: "The room.") var room: String
    @Option(help: "How many participants.") var count = 1
    @Option(help: "The one member they connect with, by name.") var peer = "recorder"
    @Option(help: "How long they send once all are connected, in seconds.") var seconds = 30.0
    @Option(help: "Write frames sent per participant as JSON to this file ('-' for stdout).") var json: String?

    struct Result: Codable {
        var count: Int
        var connected: Int
        var connectSeconds: Double
        var secondsSending: Double
        /// Video frames each participant sent to the peer (payloaded after the connection was up).
        var videoFramesSent: [String: Int]
    }

    func run() async throws {
        bootstrapWarningsOnlyLogging()
        try GStreamer.initialize()
        guard let url = URL(string: server) else { throw ValidationError("--server must be a ws:// URL") }
        let pipeline = try Pipeline(name: "senders")
        let source = try EncodedSource(in: pipeline)
        try pipeline.setState(.playing)
        let tracks = source.tracks
        let target = peer
        var calls: [Call] = []
        var tasks: [Task<Void, Never>] = []
        let started = ContinuousClock.now
        for index in 0..<count {
            var configuration = CallConfiguration(room: room, serverURL: url, name: "sender\(index)")
            configuration.connectsTo = { $0 == target }
            let call = Call(configuration: configuration, pipeline: pipeline, tracks: tracks)
            calls.append(call)
            tasks.append(Task { await call.run() })
            tasks.append(Task { for await _ in call.events {} })
        }
        var connected = 0
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            connected = 0
            for call in calls where await call.status().members.contains(where: { $0.connectionState == .connected }) { connected += 1 }
            if connected == count { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let connectSeconds = milliseconds(started, .now) / 1000
        FileHandle.standardError.write(Data("senders: \(connected) of \(count) connected after \(String(format: "%.1f", connectSeconds)) s\n".utf8))
        let sending = ContinuousClock.now
        try await Task.sleep(for: .seconds(seconds))
        // Each reads what it sent and leaves at once, all together: the recorder then finalizes every file
        // with what was still in flight, so a file holding fewer frames than this lost some.
        let frames = await withTaskGroup(of: (String, Int).self) { group in
            for (index, call) in calls.enumerated() {
                group.addTask {
                    var sent = 0
                    for peer in await call.peers().values { sent += (try? await peer.stats().videoFramesSent) ?? 0 }
                    await call.leave()
                    return ("sender\(index)", sent)
                }
            }
            return await group.reduce(into: [String: Int]()) { $0[$1.0] = $1.1 }
        }
        let elapsed = milliseconds(sending, .now) / 1000
        for task in tasks { task.cancel() }
        _ = try? pipeline.setState(.null)
        try emit(Result(count: count, connected: connected, connectSeconds: connectSeconds, secondsSending: elapsed,
                        videoFramesSent: frames), json: json)
    }
}
