import Foundation
import Gateway
import GStreamer
import Synchronization
import WebRTC

/// A participant of a benchmark room: joins, sends the shared stream once (or once per peer in a mesh),
/// and receives every other participant's video.
protocol RoomParticipant: AnyObject, Sendable {
    var name: String { get }
    func join() async throws
    func leave() async
    /// Video received so far, by the sending participant's name.
    func receivedVideo() -> [String: ForwardedVideo]
    /// Bytes sent on every connection (RTP, as webrtcbin counts them).
    func bytesSent() async -> Int
    /// Packets lost on the way in, as the receiving side's RTP statistics count them.
    func packetsLost() async -> Int
}

/// A member of a vcall room, through `Call`: in a room with a relay it follows the relay (one connection,
/// each track sent once); without one it calls every other member (a mesh).
final class VCallParticipant: RoomParticipant {
    let name: String
    private let call: Call
    private let pipeline: Pipeline
    private let received = Mutex<[String: ForwardedVideo]>([:])
    private let tasks = Mutex<[Task<Void, Never>]>([])

    init(name: String, room: String, server: URL, pipeline: Pipeline, source: EncodedSource) {
        self.name = name
        self.pipeline = pipeline
        call = Call(configuration: CallConfiguration(room: room, serverURL: server, name: name), pipeline: pipeline,
                    tracks: source.tracks)
    }

    func join() async throws {
        let call = self.call
        let running = Task { await call.run() }
        let watching = Task { [weak self] in
            for await event in call.events {
                guard case .remoteTrack(_, let sender, let track) = event else { continue }
                self?.count(track, from: sender)
            }
        }
        tasks.withLock { $0 += [running, watching] }
    }

    /// Video is counted; audio goes to a sink (unclaimed, it would be dropped anyway after a second).
    private func count(_ track: ReceivedTrack, from sender: String) {
        do {
            if track.kind == .video {
                let video = try ForwardedVideo(track, in: pipeline)
                received.withLock { $0[sender] = video }
            } else {
                let sink = try Element(factory: "fakesink")
                try sink.set("async", false)
                try pipeline.add(sink)
                try sink.syncStateWithParent()
                if let pad = sink.staticPad("sink") { _ = try track.attach(pad) }
            }
        } catch {
            FileHandle.standardError.write(Data("\(name): cannot take \(sender)'s \(track.kind): \(error)\n".utf8))
        }
    }

    func leave() async {
        await call.leave()
        tasks.withLock { $0.forEach { $0.cancel() } }
    }

    func receivedVideo() -> [String: ForwardedVideo] { received.withLock { $0 } }

    func bytesSent() async -> Int {
        var total = 0
        for peer in await call.peers().values { total += (try? await peer.stats().bytesSent) ?? 0 }
        return total
    }

    func packetsLost() async -> Int {
        var total = 0
        for peer in await call.peers().values { total += (try? await peer.stats().packetsLost) ?? 0 }
        return total
    }
}
