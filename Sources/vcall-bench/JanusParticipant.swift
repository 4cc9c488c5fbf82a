import Foundation
import GStreamer
import HTTPTypes
import HummingbirdWSClient
import Logging
import Synchronization
import WebRTC
import WebRTCTypes

/// A JSON object of Janus's API, as `JSONSerialization` reads it. Only ever read after it is made.
struct JanusMessage: @unchecked Sendable {
    let body: [String: Any]
    subscript(key: String) -> Any? { body[key] }
    var pluginData: [String: Any] { ((body["plugindata"] as? [String: Any])?["data"] as? [String: Any]) ?? [:] }
    var jsep: RTCSessionDescriptionInit? {
        guard let jsep = body["jsep"] as? [String: Any], let type = (jsep["type"] as? String).flatMap(RTCSdpType.init),
              let sdp = jsep["sdp"] as? String else { return nil }
        return RTCSessionDescriptionInit(type: type, sdp: sdp)
    }
}

struct JanusError: Error, CustomStringConvertible {
    let description: String
}

/// One WebSocket session with Janus (`janus-protocol`): requests matched to their answers by transaction,
/// and the plugin events that come unasked, by handle. Keeps the session alive while open.
final class JanusSession: Sendable {
    private struct State {
        var outbox: AsyncStream<String>.Continuation?
        var waiting: [String: CheckedContinuation<JanusMessage, any Error>] = [:]
        var handleEvents: [Int: AsyncStream<JanusMessage>.Continuation] = [:]
        var serial = 0
        var sessionID: Int?
    }
    private let state = Mutex(State())
    private let connection = Mutex<Task<Void, Never>?>(nil)

    /// Connects and creates a Janus session.
    func open(_ url: URL, logger: Logger) async throws {
        var headers = HTTPFields()
        headers[.secWebSocketProtocol] = "janus-protocol"
        let configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20, additionalHeaders: headers)
        let (connected, connectedSignal) = AsyncStream.makeStream(of: Void.self)
        connection.withLock { task in
            task = Task { [self] in
                do {
                    _ = try await WebSocketClient.connect(url: url.absoluteString, configuration: configuration, logger: logger) {
                        inbound, outbound, _ in
                        let (outgoing, outbox) = AsyncStream.makeStream(of: String.self)
                        self.state.withLock { $0.outbox = outbox }
                        connectedSignal.yield()
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            group.addTask {
                                for await text in outgoing { try await outbound.write(.text(text)) }
                                try await outbound.close(.normalClosure, reason: "done")
                            }
                            group.addTask {
                                for try await message in inbound.messages(maxSize: 1 << 20) {
                                    guard case .text(let text) = message else { continue }
                                    self.received(text)
                                }
                            }
                            try await group.next()
                            group.cancelAll()
                        }
                    }
                } catch {
                    logger.error("janus: \(error)")
                }
                connectedSignal.finish()
                self.closed()
            }
        }
        for await _ in connected { break }
        guard state.withLock({ $0.outbox != nil }) else { throw JanusError(description: "cannot reach Janus at \(url)") }
        let created = try await request(["janus": "create"])
        guard let id = (created["data"] as? [String: Any])?["id"] as? Int else { throw JanusError(description: "no session id: \(created.body)") }
        state.withLock { $0.sessionID = id }
        Task { [weak self] in
            while let self, self.state.withLock({ $0.outbox != nil }) {
                try? await Task.sleep(for: .seconds(20))
                _ = try? await self.request(["janus": "keepalive"])
            }
        }
    }

    /// Attaches a handle to the VideoRoom plugin; its unasked events come on the returned stream.
    func attachVideoRoom() async throws -> (handle: Int, events: AsyncStream<JanusMessage>) {
        let attached = try await request(["janus": "attach", "plugin": "janus.plugin.videoroom"])
        guard let handle = (attached["data"] as? [String: Any])?["id"] as? Int else {
            throw JanusError(description: "attach failed: \(attached.body)")
        }
        let (events, continuation) = AsyncStream.makeStream(of: JanusMessage.self)
        state.withLock { $0.handleEvents[handle] = continuation }
        return (handle, events)
    }

    /// A request that Janus answers at once (`success`, or `ack` for a trickle and a keepalive).
    @discardableResult
    func request(_ body: [String: Any], handle: Int? = nil) async throws -> JanusMessage {
        try await send(body, handle: handle, waitForEvent: false)
    }

    /// A plugin message, answered by the plugin's `event` (after Janus's `ack`) or `success`.
    func message(_ body: [String: Any], jsep: RTCSessionDescriptionInit? = nil, handle: Int) async throws -> JanusMessage {
        var message: [String: Any] = ["janus": "message", "body": body]
        if let jsep { message["jsep"] = ["type": jsep.type.rawValue, "sdp": jsep.sdp] }
        let answer = try await send(message, handle: handle, waitForEvent: true)
        if let error = answer.pluginData["error"] as? String { throw JanusError(description: "VideoRoom: \(error)") }
        return answer
    }

    func trickle(_ candidate: RTCIceCandidateInit?, handle: Int) async {
        let value: [String: Any] = candidate.map {
            ["candidate": $0.candidate, "sdpMid": $0.sdpMid ?? "", "sdpMLineIndex": $0.sdpMLineIndex ?? 0]
        } ?? ["completed": true]
        _ = try? await request(["janus": "trickle", "candidate": value], handle: handle)
    }

    func close() {
        if let id = state.withLock({ $0.sessionID }) { _ = try? post(["janus": "destroy", "session_id": id, "transaction": "bye"]) }
        state.withLock { $0.outbox?.finish() }
    }

    private func send(_ body: [String: Any], handle: Int?, waitForEvent: Bool) async throws -> JanusMessage {
        var body = body
        let transaction = state.withLock { state -> String in
            state.serial += 1
            if let id = state.sessionID { body["session_id"] = id }
            return (waitForEvent ? "e" : "r") + String(state.serial)
        }
        body["transaction"] = transaction
        if let handle { body["handle_id"] = handle }
        return try await withCheckedThrowingContinuation { continuation in
            state.withLock { $0.waiting[transaction] = continuation }
            do {
                try post(body)
            } catch {
                state.withLock { $0.waiting[transaction] = nil }
                continuation.resume(throwing: error)
            }
        }
    }

    private func post(_ body: [String: Any]) throws {
        let text = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        guard state.withLock({ $0.outbox?.yield(text) }) != nil else { throw JanusError(description: "the Janus connection is closed") }
    }

    private func received(_ text: String) {
        guard let body = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
              let kind = body["janus"] as? String else { return }
        let message = JanusMessage(body: body)
        let transaction = body["transaction"] as? String
        // An `ack` answers a plugin message only provisionally: its event follows with the same transaction.
        if kind == "ack", transaction?.hasPrefix("e") == true { return }
        if let transaction, let waiter = state.withLock({ $0.waiting.removeValue(forKey: transaction) }) {
            if kind == "error" {
                waiter.resume(throwing: JanusError(description: "Janus: \((body["error"] as? [String: Any])?["reason"] ?? body)"))
            } else {
                waiter.resume(returning: message)
            }
            return
        }
        if let sender = body["sender"] as? Int { state.withLock { $0.handleEvents[sender] }?.yield(message) }
    }

    private func closed() {
        let waiters = state.withLock { state in
            state.outbox = nil
            defer { state.waiting = [:] }
            for events in state.handleEvents.values { events.finish() }
            return Array(state.waiting.values)
        }
        for waiter in waiters { waiter.resume(throwing: JanusError(description: "the Janus connection closed")) }
    }
}

/// A participant of a Janus VideoRoom with the same webrtcbin peers as vcall's: it publishes the shared
/// stream on one peer connection and subscribes to every other publisher on another (Janus's
/// multistream subscription: one connection, a stream per feed, updated as publishers come).
final class JanusParticipant: RoomParticipant {
    let name: String
    private let url: URL
    private let room: Int
    private let pipeline: Pipeline
    private let source: EncodedSource
    private let logger: Logger
    private let session = JanusSession()
    private struct State {
        var publisher: WebRTCPeer?
        var subscriber: WebRTCPeer?
        var subscriberHandle: Int?
        var subscribed: Set<Int> = []
        var feedNames: [Int: String] = [:]
        /// mid → the feed's display name, from Janus's `attached`/`updated` stream lists.
        var midNames: [String: String] = [:]
        var received: [String: ForwardedVideo] = [:]
        var tasks: [Task<Void, Never>] = []
    }
    private let state = Mutex(State())
    /// Subscription changes run one at a time (each is an offer/answer exchange on the one connection).
    private let subscriptions: AsyncStream<[Int]>.Continuation
    private let subscriptionRequests: AsyncStream<[Int]>

    init(name: String, room: Int, janus: URL, pipeline: Pipeline, source: EncodedSource, logger: Logger) {
        self.name = name
        self.url = janus
        self.room = room
        self.pipeline = pipeline
        self.source = source
        self.logger = logger
        (subscriptionRequests, subscriptions) = AsyncStream.makeStream(of: [Int].self)
    }

    /// Creates the room (once, by the first participant); Janus answers that it exists to the others.
    static func createRoom(_ room: Int, janus: URL, logger: Logger) async throws {
        let session = JanusSession()
        try await session.open(janus, logger: logger)
        defer { session.close() }
        let (handle, _) = try await session.attachVideoRoom()
        let created = try await session.request(["janus": "message", "body": [
            "request": "create", "room": room, "publishers": 64, "videocodec": "vp8", "audiocodec": "opus",
            "bitrate": 0, "fir_freq": 0, "notify_joining": false,
        ] as [String: Any]], handle: handle)
        if let error = created.pluginData["error"] as? String, created.pluginData["error_code"] as? Int != 427 {
            throw JanusError(description: "cannot create room \(room): \(error)")
        }
    }

    func join() async throws {
        try await session.open(url, logger: logger)
        let (handle, events) = try await session.attachVideoRoom()
        let joined = try await session.message(["request": "join", "ptype": "publisher", "room": room, "display": name],
                                               handle: handle)
        let publisher = try WebRTCPeer(configuration: WebRTCConfiguration(name: "\(name)-pub"), pipeline: pipeline, logger: logger)
        state.withLock { $0.publisher = publisher }
        watch(publisher, handle: handle, countingTracks: false)
        for track in source.tracks { try await publisher.addTrack(track.codec, from: track.tee, sendOnly: true) }
        let offer = try await publisher.createOffer()
        try await publisher.setLocalDescription(offer)
        let published = try await session.message(["request": "publish", "audio": true, "video": true], jsep: offer, handle: handle)
        guard let answer = published.jsep else { throw JanusError(description: "publish got no answer: \(published.body)") }
        try await publisher.setRemoteDescription(answer)
        let subscriptions = self.subscriptionRequests
        state.withLock { state in
            state.tasks.append(Task { [weak self] in
                for await feeds in subscriptions {
                    do {
                        try await self?.subscribe(to: feeds)
                    } catch {
                        self?.logger.error("\(self?.name ?? ""): cannot subscribe to \(feeds): \(error)")
                    }
                }
            })
            state.tasks.append(Task { [weak self] in
                for await event in events { self?.publisherEvent(event) }
            })
        }
        publishersAppeared(joined.pluginData["publishers"])
    }

    private func publisherEvent(_ event: JanusMessage) {
        publishersAppeared(event.pluginData["publishers"])
    }

    private func publishersAppeared(_ list: Any?) {
        guard let publishers = list as? [[String: Any]] else { return }
        let feeds = state.withLock { state -> [Int] in
            var new: [Int] = []
            for publisher in publishers {
                guard let id = publisher["id"] as? Int, !state.subscribed.contains(id) else { continue }
                state.feedNames[id] = publisher["display"] as? String ?? String(id)
                state.subscribed.insert(id)
                new.append(id)
            }
            return new
        }
        if !feeds.isEmpty { subscriptions.yield(feeds) }
    }

    /// Subscribes to `feeds`: joins as a subscriber the first time, adds streams later; answers Janus's offer.
    private func subscribe(to feeds: [Int]) async throws {
        let streams = feeds.map { ["feed": $0] }
        let existing = state.withLock { ($0.subscriberHandle, $0.subscriber) }
        let handle: Int
        let offerEvent: JanusMessage
        let peer: WebRTCPeer
        if let subscriberHandle = existing.0, let subscriber = existing.1 {
            handle = subscriberHandle
            peer = subscriber
            offerEvent = try await session.message(["request": "subscribe", "streams": streams], handle: handle)
        } else {
            let (newHandle, _) = try await session.attachVideoRoom()
            handle = newHandle
            peer = try WebRTCPeer(configuration: WebRTCConfiguration(name: "\(name)-sub"), pipeline: pipeline, logger: logger)
            state.withLock { state in
                state.subscriberHandle = handle
                state.subscriber = peer
            }
            watch(peer, handle: handle, countingTracks: true)
            offerEvent = try await session.message(["request": "join", "ptype": "subscriber", "room": room, "streams": streams],
                                                   handle: handle)
        }
        state.withLock { state in
            for stream in offerEvent.pluginData["streams"] as? [[String: Any]] ?? [] {
                guard let mid = stream["mid"] as? String, let feed = stream["feed_id"] as? Int else { continue }
                state.midNames[mid] = state.feedNames[feed] ?? stream["feed_display"] as? String ?? String(feed)
            }
        }
        guard let offer = offerEvent.jsep else { throw JanusError(description: "no offer to subscribe: \(offerEvent.body)") }
        try await peer.setRemoteDescription(offer)
        let answer = try await peer.createAnswer()
        try await peer.setLocalDescription(answer)
        _ = try await session.message(["request": "start"], jsep: answer, handle: handle)
    }

    /// Sends the peer's candidates to Janus on `handle`; counts a subscriber's video tracks under the
    /// name of the feed Janus said each mid carries.
    private func watch(_ peer: WebRTCPeer, handle: Int, countingTracks: Bool) {
        let session = self.session, pipeline = self.pipeline, name = self.name
        let events = peer.events
        state.withLock { state in
            state.tasks.append(Task { [weak self] in
                for await event in events {
                    switch event {
                    case .localCandidate(let candidate):
                        await session.trickle(candidate, handle: handle)
                    case .remoteTrack(let track) where countingTracks && track.kind == .video:
                        guard let self else { return }
                        let sender = self.state.withLock { $0.midNames[track.mid ?? ""] } ?? "mid \(track.mid ?? "?")"
                        do {
                            let video = try ForwardedVideo(track, in: pipeline)
                            self.state.withLock { $0.received[sender] = video }
                        } catch {
                            FileHandle.standardError.write(Data("\(name): cannot count \(sender)'s video: \(error)\n".utf8))
                        }
                    default:
                        break
                    }
                }
            })
        }
    }


    func leave() async {
        let (peers, tasks) = state.withLock { ([$0.publisher, $0.subscriber].compactMap { $0 }, $0.tasks) }
        for task in tasks { task.cancel() }
        subscriptions.finish()
        for peer in peers { await peer.close() }
        session.close()
    }

    func receivedVideo() -> [String: ForwardedVideo] { state.withLock { $0.received } }

    func bytesSent() async -> Int {
        guard let publisher = state.withLock({ $0.publisher }) else { return 0 }
        return (try? await publisher.stats().bytesSent) ?? 0
    }

    func packetsLost() async -> Int {
        guard let subscriber = state.withLock({ $0.subscriber }) else { return 0 }
        return (try? await subscriber.stats().packetsLost) ?? 0
    }
}
