import ArgumentParser
import Foundation
import GStreamer
import Logging
import WebRTC

/// One room of the relay benchmark (`scripts/bench relay` runs it for each size and system): N
/// participants join one by one, each sending the shared 720p VP8 + Opus stream and receiving everyone
/// else's, through a vcall relay, in a vcall mesh, or through a Janus VideoRoom. Prints (as JSON) what
/// each costs and how fast media comes: the hub process's CPU and RSS per forwarded stream, each
/// participant's upload, frames lost, join → first decoded frame, and PLI → keyframe.
struct RelayRoom: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "N participants in one room through a vcall relay, a vcall mesh or Janus VideoRoom; measures the hub and the media."
    )

    @Option(help: "vcall-server's WebSocket (the room's relay, if it has one, is found through it).") var server: String?
    @Option(help: "Janus's WebSocket (instead of --server): the room is a VideoRoom.") var janus: String?
    @Option(parsing: .unconditional, help: "The room (a number for Janus).") var room: String
    @Option(help: "How many participants.") var count = 4
    @Option(help: "How long the measured window lasts, in seconds.") var seconds = 20.0
    @Option(help: "The process forwarding the media (the relay gateway, Janus): its CPU and RSS are measured.") var hubPid: Int32?
    @Option(help: "How many PLI → keyframe times to take after the window.") var pliSamples = 8
    @Option(help: "The shared video's width.") var width = 1280
    @Option(help: "The shared video's height.") var height = 720
    @Option(help: "The shared video's target bitrate, bit/s.") var videoBitrate = 1_500_000
    @Option(help: "Write the result as JSON to this file ('-' for stdout).") var json: String?

    struct Result: Codable {
        var system: String
        var count: Int
        var forwardedStreams: Int
        var windowSeconds: Double
        var hubCPUPercent: Double?
        /// This process (every participant's webrtcbin peers): when it nears the machine's cores, frames
        /// are lost to the machine, whatever the hub.
        var participantsCPUPercent: Double?
        var hubRSSBaselineMiB: Double?
        var hubRSSMiB: Double?
        /// Each participant's upload during the window, Mbit/s.
        var uploadMbps: [Double]
        /// Frames the encoder made during the window, per stream, and what each subscriber got of each publisher.
        var framesSentPerStream: Int
        var framesReceived: [Int]
        var packetsLost: Int
        /// Join → first decoded frame of each participant already there, at the newcomer, in ms.
        var joinToFirstFrameMs: [Double]
        /// A subscriber's PLI → the next keyframe of that publisher arriving at it, in ms.
        var pliToKeyframeMs: [Double]
    }

    func run() async throws {
        bootstrapWarningsOnlyLogging()
        try GStreamer.initialize()
        let logger = Logger(label: "vcall.bench.relay")
        let pipeline = try Pipeline(name: "relay-room")
        // No periodic keyframes: every keyframe is one a receiver asked for, as with browsers.
        let source = try EncodedSource(in: pipeline, width: width, height: height, videoBitrate: videoBitrate,
                                       keyframeInterval: 100_000)
        try pipeline.setState(.playing)
        let hub = hubPid.map(ProcessSample.init(pid:))
        let participantsProcess = ProcessSample(pid: getpid())
        let baselineRSS = hub?.rssMiB()

        var participants: [any RoomParticipant] = []
        let system: String
        if let janus {
            guard let url = URL(string: janus), let roomNumber = Int(room) else {
                throw ValidationError("--janus must be a ws:// URL and --room a number")
            }
            system = "janus"
            try await JanusParticipant.createRoom(roomNumber, janus: url, logger: logger)
            for index in 0..<count {
                participants.append(JanusParticipant(name: "p\(index)", room: roomNumber, janus: url, pipeline: pipeline,
                                                     source: source, logger: logger))
            }
        } else if let server {
            guard let url = URL(string: server) else { throw ValidationError("--server must be a ws:// URL") }
            system = "vcall"
            for index in 0..<count {
                participants.append(VCallParticipant(name: "p\(index)", room: room, server: url, pipeline: pipeline, source: source))
            }
        } else {
            throw ValidationError("give --server (vcall) or --janus")
        }

        // Join one by one, each once the room before it has everyone's video both ways and has been
        // quiet for longer than the relay's keyframe throttle (one request per second per publisher: a
        // newcomer right after another may wait up to a second for its keyframes).
        var joinTimes: [Double] = []
        for (index, newcomer) in participants.enumerated() {
            if index > 0 { try await Task.sleep(for: .milliseconds(1500)) }
            let started = ContinuousClock.now
            try await newcomer.join()
            let present = participants[..<index]
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                let newcomerSees = newcomer.receivedVideo().filter { $0.value.firstDecoded != nil }.count == index
                let othersSee = present.allSatisfy { $0.receivedVideo()[newcomer.name]?.firstDecoded != nil }
                if newcomerSees && othersSee { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            for other in present {
                guard let first = newcomer.receivedVideo()[other.name]?.firstDecoded else {
                    throw ValidationError("\(newcomer.name) decoded no video of \(other.name) within 30 s")
                }
                joinTimes.append(milliseconds(started, first))
            }
            for other in present where other.receivedVideo()[newcomer.name]?.firstDecoded == nil {
                throw ValidationError("\(other.name) decoded no video of the newcomer \(newcomer.name) within 30 s")
            }
            FileHandle.standardError.write(Data("\(system): \(newcomer.name) in the call\n".utf8))
        }
        try await Task.sleep(for: .seconds(2))

        // The window: the same counters read at its start and its end. The receivers are read a fixed
        // while after the encoder, longer than any frame takes to arrive (the jitter buffers hold 200 ms),
        // so every frame encoded before the encoder's reading has arrived by the receivers' unless lost.
        func snapshot() async throws -> (frames: [Int], sent: [Int], encoded: Int, cpu: Double?, ownCPU: Double?,
                                         at: ContinuousClock.Instant) {
            let encoded = source.videoFrames
            try await Task.sleep(for: .milliseconds(600))
            var frames: [Int] = []
            var sent: [Int] = []
            for subscriber in participants {
                sent.append(await subscriber.bytesSent())
                let received = subscriber.receivedVideo()
                for publisher in participants where publisher !== subscriber { frames.append(received[publisher.name]?.frames ?? 0) }
            }
            return (frames, sent, encoded, hub?.cpuSeconds(), participantsProcess.cpuSeconds(), .now)
        }
        let start = try await snapshot()
        var peakRSS = hub?.rssMiB()
        let windowEnd = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < windowEnd {
            try await Task.sleep(for: .seconds(1))
            if let rss = hub?.rssMiB() { peakRSS = max(peakRSS ?? 0, rss) }
        }
        let end = try await snapshot()
        let window = milliseconds(start.at, end.at) / 1000
        let streams = count * (count - 1)
        let cpu = start.cpu.flatMap { first in end.cpu.map { ($0 - first) / window * 100 } }
        let ownCPU = start.ownCPU.flatMap { first in end.ownCPU.map { ($0 - first) / window * 100 } }
        var lost = 0
        for subscriber in participants { lost += await subscriber.packetsLost() }

        // PLI → keyframe: one subscriber at a time asks one publisher, the throttles' second apart.
        var pliTimes: [Double] = []
        for sample in 0..<(count > 1 ? pliSamples : 0) {
            let subscriber = participants[sample % count]
            let publisher = participants[(sample % count + 1 + sample / count) % count]
            guard publisher !== subscriber, let video = subscriber.receivedVideo()[publisher.name] else { continue }
            let asked = ContinuousClock.now
            video.track.requestKeyframe()
            let deadline = asked + .seconds(5)
            while ContinuousClock.now < deadline, video.keyframe(after: asked) == nil { try await Task.sleep(for: .milliseconds(5)) }
            if let keyframe = video.keyframe(after: asked) { pliTimes.append(milliseconds(asked, keyframe)) }
            try await Task.sleep(for: .milliseconds(1500))
        }

        for participant in participants { await participant.leave() }
        _ = try? pipeline.setState(.null)
        try emit(Result(system: system, count: count, forwardedStreams: streams, windowSeconds: window,
                        hubCPUPercent: cpu, participantsCPUPercent: ownCPU, hubRSSBaselineMiB: baselineRSS, hubRSSMiB: peakRSS,
                        uploadMbps: zip(start.sent, end.sent).map { Double($1 - $0) * 8 / window / 1e6 },
                        framesSentPerStream: end.encoded - start.encoded,
                        framesReceived: zip(start.frames, end.frames).map { $1 - $0 }, packetsLost: lost,
                        joinToFirstFrameMs: joinTimes, pliToKeyframeMs: pliTimes), json: json)
    }
}

/// A process's CPU time and resident memory, from /proc.
struct ProcessSample {
    let pid: Int32

    /// User + system CPU seconds so far.
    func cpuSeconds() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after "(comm)": state is field 3, utime 14 and stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    func rssMiB() -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kB = Double(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kB / 1024
    }
}
