import ArgumentParser
import Foundation
import GStreamer
import Logging
import Synchronization
import WebRTC
import WebRTCDemo
import WebRTCTypes

/// A `WebRTCPeer` driven by JSON lines on stdin and reporting on stdout: the bridge that lets the
/// interop tests pair vcall's peer with Chromium or aiortc. Logs go to stderr.
///
/// stdin:  {"type":"offer"|"answer","sdp":…} · {"type":"candidate","candidate":{…}|null} · {"type":"stats"} · {"type":"quit"}
/// stdout: {"type":"offer"|"answer","sdp":…} · {"type":"candidate","candidate":{…}|null} · {"type":"state","connectionState":…}
///         {"type":"track","kind":…,"codec":…} · {"type":"frames","video":N,"audio":N} (every 500 ms) · {"type":"stats",…} · {"type":"error","message":…}
@main
struct InteropPeer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcall-interop-peer",
        abstract: "A vcall WebRTC peer driven by JSON lines on stdin/stdout, for interop tests."
    )

    enum Role: String, ExpressibleByArgument { case offer, answer }

    @Option(help: "offer: make the offer at start; answer: wait for an offer on stdin.")
    var role: Role = .answer

    @Flag(inversion: .prefixedNo, help: "Send a VP8 test pattern and an Opus tone.")
    var send = true

    @Option(name: .customLong("ice-server"), help: "A STUN or TURN URL (turn://user:pass@host:port). Repeatable.")
    var iceServers: [String] = []

    @Option(help: "Log level for stderr.")
    var logLevel: String = "info"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "vcall.interop")
        try GStreamer.initialize()
        let output = JSONLineWriter()

        let pipeline = try Pipeline(name: "interop")
        let configuration = WebRTCConfiguration(iceServers: iceServers.map { RTCIceServer(urls: [$0]) }, name: "interop")
        let peer = try WebRTCPeer(configuration: configuration, pipeline: pipeline, logger: logger)
        if send {
            let media = try TestMedia(pipeline: pipeline, prefix: "interop", width: 640, height: 480)
            try await peer.addTrack(.vp8, from: media.videoTee)
            try await peer.addTrack(.opus, from: media.audioTee)
        } else {
            try await peer.addReceiveOnly(.vp8)
            try await peer.addReceiveOnly(.opus)
        }
        try pipeline.setState(.playing)

        let counters = DecodedCounters()
        let eventTask = Task {
            for await event in peer.events {
                switch event {
                case .localCandidate(let candidate):
                    output.write(["type": "candidate", "candidate": candidate.map(JSONValue.encode) ?? .null])
                case .connectionState(let state):
                    output.write(["type": "state", "connectionState": .string(state.rawValue)])
                case .iceConnectionState(let state):
                    output.write(["type": "ice-state", "iceConnectionState": .string(state.rawValue)])
                case .remoteTrack(let track):
                    output.write(["type": "track", "kind": .string(track.kind.rawValue), "codec": .string(track.encodingName)])
                    do {
                        let counter = try track.decode(in: pipeline)
                        counters.set(counter, for: track.kind)
                    } catch {
                        output.write(["type": "error", "message": .string("\(error)")])
                    }
                case .negotiationNeeded, .iceGatheringState:
                    break
                }
            }
        }
        let frameReporter = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(500))
                let (video, audio) = (counters.count(.video), counters.count(.audio))
                output.write(["type": "frames", "video": JSONValue.number(Double(video)), "audio": .number(Double(audio))])
            }
        }

        if role == .offer {
            let offer = try await peer.createOffer()
            try await peer.setLocalDescription(offer)
            output.write(["type": "offer", "sdp": .string(offer.sdp)])
        }

        for await line in StandardInputLines.stream() {
            guard let data = line.data(using: .utf8),
                  let message = try? JSONDecoder().decode(InboundMessage.self, from: data) else {
                output.write(["type": "error", "message": .string("not a message: \(line.prefix(200))")])
                continue
            }
            do {
                switch message.type {
                case "offer", "answer":
                    let description = RTCSessionDescriptionInit(type: message.type == "offer" ? .offer : .answer, sdp: message.sdp ?? "")
                    try await peer.setRemoteDescription(description)
                    if description.type == .offer {
                        let answer = try await peer.createAnswer()
                        try await peer.setLocalDescription(answer)
                        output.write(["type": "answer", "sdp": .string(answer.sdp)])
                    }
                case "candidate":
                    try await peer.addICECandidate(message.candidate)
                case "stats":
                    output.write(StatsMessage(stats: try await peer.stats()))
                case "quit":
                    frameReporter.cancel()
                    await peer.close()
                    eventTask.cancel()
                    _ = try? pipeline.setState(.null)
                    return
                default:
                    output.write(["type": "error", "message": .string("unknown type \(message.type)")])
                }
            } catch {
                output.write(["type": "error", "message": .string("\(error)")])
            }
        }
        frameReporter.cancel()
        await peer.close()
        _ = try? pipeline.setState(.null)
    }
}

final class DecodedCounters: Sendable {
    private let counters = Mutex<[MediaKind: DecodedFrameCounter]>([:])
    func set(_ counter: DecodedFrameCounter, for kind: MediaKind) { counters.withLock { $0[kind] = counter } }
    func count(_ kind: MediaKind) -> Int { counters.withLock { $0[kind]?.count ?? 0 } }
}

struct StatsMessage: Encodable {
    var type = "stats"
    var stats: WebRTCStats
}

struct InboundMessage: Decodable {
    var type: String
    var sdp: String?
    var candidate: RTCIceCandidateInit?
}

enum JSONValue: Encodable, Sendable, ExpressibleByStringLiteral {
    case string(String), number(Double), null, object([String: JSONValue]), bool(Bool)

    init(stringLiteral value: String) { self = .string(value) }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let v): try container.encode(v)
        case .number(let v): if v == v.rounded() && abs(v) < 1e15 { try container.encode(Int(v)) } else { try container.encode(v) }
        case .null: try container.encodeNil()
        case .bool(let v): try container.encode(v)
        case .object(let v): try container.encode(v)
        }
    }

    static func encode(_ candidate: RTCIceCandidateInit) -> JSONValue {
        .object(["candidate": .string(candidate.candidate),
                 "sdpMid": candidate.sdpMid.map { .string($0) } ?? .null,
                 "sdpMLineIndex": candidate.sdpMLineIndex.map { .number(Double($0)) } ?? .null,
                 "usernameFragment": candidate.usernameFragment.map { .string($0) } ?? .null])
    }
}

/// Writes one JSON object per line to stdout, whole lines only, from any task.
final class JSONLineWriter: Sendable {
    private let lock = Mutex(())

    func write(_ object: [String: JSONValue]) { write(encodable: object) }

    func write(_ message: StatsMessage) { write(encodable: message) }

    private func write(encodable object: some Encodable) {
        guard var data = try? JSONEncoder().encode(object) else { return }
        data.append(0x0A)
        lock.withLock { _ in FileHandle.standardOutput.write(data) }
    }
}

/// Lines of standard input, read on a thread of their own so no task blocks on the read.
enum StandardInputLines {
    static func stream() -> AsyncStream<String> {
        AsyncStream { continuation in
            let thread = Thread {
                while let line = readLine() { continuation.yield(line) }
                continuation.finish()
            }
            thread.start()
        }
    }
}
