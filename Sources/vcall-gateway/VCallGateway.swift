import ArgumentParser
import Foundation
import GStreamer
import Logging
import WebRTC
import WebRTCDemo

@main
struct VCallGateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcall-gateway",
        abstract: "Join vcall rooms as a WebRTC peer: send, receive, record and relay media.",
        subcommands: [Join.self, Worker.self, Repair.self, Demo.self],
        defaultSubcommand: Join.self
    )
}

/// Two WebRTC peers in one process call each other over loopback and report what they received.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Two peers in this process call each other and print what they received."
    )

    @Option(help: "How long the call lasts, in seconds.")
    var seconds: Double = 5

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        let logger = Logger(label: "vcall.demo")
        try GStreamer.initialize()
        print("GStreamer \(GStreamer.version): peer A sends a VP8 test pattern and an Opus tone; peer B receives and decodes them.")

        let call = try await LoopbackCall.start(logger: logger)
        let setup = call.started
        print("A → B: offer, answer and ICE candidates exchanged in process")
        let connected = try await call.waitUntilConnected(timeout: .seconds(10))
        print(String(format: "connected after %.0f ms", connected.milliseconds(since: setup)))
        let firstFrame = try await call.waitForFirstVideoFrame(timeout: .seconds(10))
        print(String(format: "first decoded video frame after %.0f ms", firstFrame.milliseconds(since: setup)))
        try await Task.sleep(for: .seconds(seconds))
        let sent = try await call.sender.stats()
        let received = try await call.receiver.stats()
        print("B decoded \(call.decodedVideoFrames) video frames and \(call.decodedAudioFrames) audio frames in \(seconds) s")
        print("A: \(sent)")
        print("B: \(received)")
        await call.close()
        if call.decodedVideoFrames == 0 || call.decodedAudioFrames == 0 {
            throw ValidationError("B received no media: run with --log-level debug, and GST_DEBUG=webrtcbin:5 for GStreamer's view")
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension ContinuousClock.Instant {
    func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = start.duration(to: self)
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }
}
