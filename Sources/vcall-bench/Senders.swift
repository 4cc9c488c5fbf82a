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
    @Option(help: "The room.") var room: String
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
        // Encoded once for everyone. Moving colour bars keep the encoder near its target bitrate, as a busy camera would.
        // The audio is silence with a beep each second, at the instant of the video's flash (`SyncMarks`).
        let video = try pipeline.addChain("""
            videotestsrc is-live=true pattern=smpte horizontal-speed=8 ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 \
            ! vp8enc name=senders-vp8enc deadline=1 cpu-used=16 end-usage=cbr target-bitrate=1500000 keyframe-max-dist=90 \
              lag-in-frames=0 error-resilient=partitions threads=1 ! tee name=senders-video-tee allow-not-linked=true
            """)
        let audio = try pipeline.addChain("""
            audiotestsrc is-live=true wave=silence ! audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2 \
            ! opusenc name=senders-opusenc ! tee name=senders-audio-tee allow-not-linked=true
            """)
        if let videoInput = pipeline.element(named: "senders-vp8enc")?.staticPad("sink"),
           let audioInput = pipeline.element(named: "senders-opusenc")?.staticPad("sink") {
            SyncMarks(width: 1280, height: 720, framesPerSecond: 30, sampleRate: 48000, channels: 2)
                .install(video: videoInput, audio: audioInput)
        }
        for element in (video + audio).reversed() { try element.syncStateWithParent() }
        try pipeline.setState(.playing)
        let tracks = [OutgoingTrack(codec: .vp8, tee: video.last!), OutgoingTrack(codec: .opus, tee: audio.last!)]
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
