import Foundation
import Gateway
import GStreamer
import Synchronization
import Testing
import WebRTC
import WebRTCDemo

/// A sender peer sending VP8 + Opus test media and a receiver peer in the same process whose remote
/// tracks go into a `ParticipantTracks` (as the gateway does for each remote participant).
final class RecordingCall: Sendable {
    let sender: WebRTCPeer
    let receiver: WebRTCPeer
    let tracks: ParticipantTracks
    /// Encoded video frames the sender produced (counted at its encoder's tee).
    let encodedVideoFrames = Atomic<Int>(0)
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let connected = Atomic<Bool>(false)

    private init(sender: WebRTCPeer, receiver: WebRTCPeer, tracks: ParticipantTracks) {
        self.sender = sender
        self.receiver = receiver
        self.tracks = tracks
    }

    /// `videoDelay`: the receiver's video track joins `tracks` that much after it arrived, as a track
    /// that comes late (a camera turned on during the call).
    static func start(name: String, videoDelay: Duration? = nil) async throws -> RecordingCall {
        try GStreamer.initialize()
        let senderPipeline = try Pipeline(name: "\(name)-sender")
        let media = try TestMedia(pipeline: senderPipeline, prefix: name)
        try senderPipeline.setState(.playing)
        let sender = try WebRTCPeer(configuration: WebRTCConfiguration(name: "\(name)-a"), pipeline: senderPipeline)
        let receiver = try WebRTCPeer(configuration: WebRTCConfiguration(name: "\(name)-b"))
        let tracks = ParticipantTracks(participantID: "\(name)-id", displayName: "Alice \(name)")
        let call = RecordingCall(sender: sender, receiver: receiver, tracks: tracks)
        media.videoTee.staticPad("sink")?.addProbe(.buffer) { [weak call] _ in
            call?.encodedVideoFrames.add(1, ordering: .relaxed)
            return .ok
        }
        try await sender.addTrack(.vp8, from: media.videoTee)
        try await sender.addTrack(.opus, from: media.audioTee)
        call.watch(sender, other: receiver, videoDelay: nil)
        call.watch(receiver, other: sender, videoDelay: videoDelay)
        let offer = try await sender.createOffer()
        try await sender.setLocalDescription(offer)
        try await receiver.setRemoteDescription(offer)
        let answer = try await receiver.createAnswer()
        try await receiver.setLocalDescription(answer)
        try await sender.setRemoteDescription(answer)
        return call
    }

    private func watch(_ peer: WebRTCPeer, other: WebRTCPeer, videoDelay: Duration?) {
        let isReceiver = peer === receiver
        let task = Task { [weak self, tracks] in
            for await event in peer.events {
                switch event {
                case .localCandidate(let candidate): try? await other.addICECandidate(candidate)
                case .connectionState(.connected): self?.connected.store(true, ordering: .relaxed)
                case .remoteTrack(let track) where isReceiver:
                    if track.kind == .video, let videoDelay {
                        Task {
                            try? await Task.sleep(for: videoDelay)
                            tracks.add(track)
                        }
                    } else {
                        tracks.add(track)
                    }
                default: break
                }
            }
        }
        tasks.withLock { $0.append(task) }
    }

    func waitUntilConnected(timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !connected.load(ordering: .relaxed) {
            guard ContinuousClock.now < deadline else { throw GatewayError.usage("the test call did not connect within \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func close() async {
        await sender.close()
        await receiver.close()
        _ = try? sender.pipeline.setState(.null)
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }
}

/// Waits until the recorder's phase is `.recording` (every track linked, data let in); returns when.
func waitForRecordingPhase(_ recorder: ParticipantRecorder, timeout: Duration = .seconds(20)) async throws -> ContinuousClock.Instant {
    let deadline = ContinuousClock.now + timeout
    while recorder.status.phase == .waitingForTracks {
        guard ContinuousClock.now < deadline else { throw GatewayError.usage("the recorder linked no track within \(timeout)") }
        try await Task.sleep(for: .milliseconds(5))
    }
    return .now
}

/// Runs a command, returning its standard output; fails the test on a non-zero exit or after `timeout`.
@discardableResult
func run(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(30)) async throws -> String {
    let process = Process()
    process.executableURL = URL(filePath: executable)
    process.arguments = arguments
    let output = Pipe(), errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let deadline = ContinuousClock.now + timeout
    // Read while it runs, so a large output cannot fill the pipe and stall it.
    let reader = Task.detached { output.fileHandleForReading.readDataToEndOfFile() }
    let errorReader = Task.detached { errors.fileHandleForReading.readDataToEndOfFile() }
    while process.isRunning {
        if ContinuousClock.now > deadline {
            process.terminate()
            throw GatewayError.usage("\(executable) \(arguments.joined(separator: " ")) took longer than \(timeout)")
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    let data = await reader.value
    let errorText = String(decoding: await errorReader.value, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        throw GatewayError.usage("\(executable) exited with \(process.terminationStatus): \(errorText)")
    }
    return String(decoding: data, as: UTF8.self)
}

/// What ffprobe says of a WebM file.
struct ProbedFile {
    var formatDuration: Double?
    var codecs: [String]
    /// Video frames: presentation time and whether it is a keyframe, in order.
    var videoFrames: [(time: Double, isKey: Bool)]
    var audioPackets: Int

    static func probe(_ file: URL) async throws -> ProbedFile {
        let streams = try await run("/usr/bin/ffprobe", ["-v", "error", "-show_streams", "-show_format", "-of", "json", file.path])
        let json = try JSONSerialization.jsonObject(with: Data(streams.utf8)) as? [String: Any] ?? [:]
        let codecs = (json["streams"] as? [[String: Any]] ?? []).compactMap { $0["codec_name"] as? String }
        let duration = ((json["format"] as? [String: Any])?["duration"] as? String).flatMap(Double.init)
        let frames = try await run("/usr/bin/ffprobe", ["-v", "error", "-select_streams", "v", "-show_frames",
                                                        "-show_entries", "frame=pts_time,key_frame", "-of", "csv=p=0", file.path])
        let videoFrames: [(Double, Bool)] = frames.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ",")
            guard fields.count >= 2, let time = Double(fields[1]) else { return nil }
            return (time, fields[0] == "1")
        }
        let packets = try await run("/usr/bin/ffprobe", ["-v", "error", "-select_streams", "a", "-show_entries", "packet=pts_time",
                                                         "-of", "csv=p=0", file.path])
        return ProbedFile(formatDuration: duration, codecs: codecs, videoFrames: videoFrames,
                          audioPackets: packets.split(separator: "\n").count)
    }
}

/// A fresh temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let url: URL

    init(_ name: String) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("vcall-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
