import ArgumentParser
import Foundation
import Gateway
import GStreamer
import Hummingbird
import Logging
import ServiceLifecycle
import SignalingProtocol
import SignalingServer
import WebRTC
import WebRTCTypes

/// `vcall-gateway --room NAME`: join a room as a full participant.
struct Join: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "join",
        abstract: "Join a vcall room: send a source, receive everyone, record them to WebM.",
        discussion: """
            Without --server, a vcall-server starts in this process (127.0.0.1, --port) and the room's \
            browser address is printed: open it to call the gateway.

            While it runs, type \(GatewayCommand.usage)
            """
    )

    // Unconditional: a room id may start with "-" (the web app's random ids do), and `--room -x1` must
    // still mean room "-x1", not a missing value.
    @Option(parsing: .unconditional, help: "The room to join (letters, digits, _ and -).") var room: String
    @Option(help: "The server's WebSocket, e.g. ws://HOST:8080/ws. Without it a server starts in this process.") var server: String?
    @Option(help: "Port of the in-process server (when --server is not given).") var port = 8080
    @Option(name: .customLong("data-dir"), help: "Data folder of the in-process server.") var dataDir = "./vcall-data"
    @Option(help: "An API token (vcall-server token create), for servers that require login.") var token: String?
    @Option(help: "The name others see.") var name = "vcall-gateway"
    @Option(help: "Video to send: test, camera, screen, none, or a .pipeline file.") var video = "test"
    @Option(help: "Audio to send: test, mic, none, or a .pipeline file.") var audio = "test"
    @Option(help: "Record every participant to WebM files in this folder from the start; the room's pages show a record button to stop and start it.") var record: String?
    @Flag(name: .customLong("record-on-request"),
          help: "With --record: do not record from the start; wait until someone in the room presses Record (or `record start` is typed).")
    var recordOnRequest = false
    @Option(help: "STUN server, e.g. stun:stun.example.org:3478 (repeatable).") var stun: [String] = []
    @Option(help: "TURN server: turn:HOST:PORT or USER:PASSWORD@turn:HOST:PORT (repeatable).") var turn: [String] = []
    @Option(help: "The camera device for --video camera.") var device: String?
    @Option(help: "The X display for --video screen (default $DISPLAY).") var display: String?
    @Option(help: "Folder of the .pipeline sources (default: ./pipelines, or the checkout's).") var pipelines: String?
    @Option(help: "Video size sent, WIDTHxHEIGHT.") var size = "1280x720"
    @Flag(help: "With --record: also record the meeting as one file (DIR/ROOM-composite-UTCSTART.webm): everyone's video on a grid with their names, everyone's audio mixed.")
    var composite = false
    @Option(name: .customLong("composite-size"), help: "The composite's picture, WIDTHxHEIGHT.") var compositeSize = "1280x720"
    @Option(help: "The composite's layout: grid (everyone alike; a shared screen large) or speaker (whoever is talking large).")
    var layout = "grid"
    @Option(help: "Seconds to wait for recordings to finalize when quitting.") var finalizeTimeout: Double = 10
    @Option(help: "Receive jitterbuffer in milliseconds: lower starts pictures and recordings sooner, higher leaves more time to recover lost packets.")
    var latency = 200
    @Option(help: "Address the in-process vcall-server listens on (without --server): 0.0.0.0 for people on the LAN, who then need --tls-cert.")
    var host = "127.0.0.1"
    @Option(name: .customLong("tls-cert"), help: "The in-process vcall-server serves HTTPS and WSS with this certificate (PEM); needs --tls-key.")
    var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "The private key of --tls-cert (unencrypted PEM).") var tlsKey: String?
    @Option(help: "Trust a wss:// --server whose certificate this certificate authority (PEM) signed, besides the system's.")
    var ca: String?
    @Option(name: .customLong("udp-ports"),
            help: "The UDP ports ICE may use, MIN-MAX (e.g. 40000-40099), for a firewall to open; each participant takes a port or two per network interface.")
    var udpPorts: String?
    @Option(name: .customLong("room-capacity"),
            help: "Largest room of the in-process server (default 8, the relay included). A relay room holds more people than a mesh: each page sends once.")
    var roomCapacity: Int?
    @Flag(help: "Be the room's relay: every browser sends once, to this gateway, which forwards everyone's media to everyone without decoding it. With --server, needs --token.")
    var relay = false
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel: Logger.Level = .info

    func validate() throws {
        guard SignalingLimits.isValidRoomID(room) else {
            throw ValidationError("--room must be 1–\(SignalingLimits.maxRoomIDLength) characters of A-Z, a-z, 0-9, _ and -")
        }
        if let server, URL(string: server)?.scheme.map({ ["ws", "wss"].contains($0) }) != true {
            throw ValidationError("--server must be a WebSocket URL such as ws://127.0.0.1:8080/ws")
        }
        if let server, let url = URL(string: server), url.scheme == "wss", let host = url.host, Self.isIPAddress(host) {
            // TLS names the server by its DNS name (SNI), and NIO's TLS refuses an address there.
            throw ValidationError("--server \(server): over wss:// give the server's DNS name, the one its certificate names (an /etc/hosts entry will do), not an IP address")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        if let roomCapacity {
            guard server == nil else { throw ValidationError("--room-capacity sets the in-process server's rooms; a --server has its own (vcall-server --room-capacity)") }
            guard roomCapacity >= 1 else { throw ValidationError("--room-capacity must be at least 1") }
        }
        for url in stun where !url.hasPrefix("stun:") && !url.hasPrefix("stuns:") {
            throw ValidationError("--stun \(url): a STUN URL starts with stun:")
        }
        for value in turn where RTCIceServer(turnArgument: value) == nil {
            throw ValidationError("--turn \(value): use turn:HOST:PORT or USER:PASSWORD@turn:HOST:PORT")
        }
        guard dimensions != nil else { throw ValidationError("--size must look like 1280x720") }
        guard Self.dimensions(compositeSize) != nil else { throw ValidationError("--composite-size must look like 1280x720") }
        guard CompositeRecorder.LayoutMode(rawValue: layout) != nil else { throw ValidationError("--layout must be grid or speaker") }
        if composite, record == nil {
            throw ValidationError("--composite needs --record DIR: the folder the meeting's file goes to")
        }
        if recordOnRequest, record == nil {
            throw ValidationError("--record-on-request needs --record DIR: the folder the recordings go to")
        }
        guard (0...5000).contains(latency) else { throw ValidationError("--latency must be 0…5000 ms") }
        if (tlsCert == nil) != (tlsKey == nil) {
            throw ValidationError("--tls-cert and --tls-key go together: the certificate and its private key")
        }
        if tlsCert != nil, !["0.0.0.0", "::", "127.0.0.1", "localhost"].contains(host) {
            // The gateway reaches its own TLS server by name (localhost): TLS takes no address there.
            throw ValidationError("with --tls-cert, use --host 0.0.0.0 (every address of this machine) or --host 127.0.0.1")
        }
        if server != nil, tlsCert != nil {
            throw ValidationError("--tls-cert and --tls-key are for the in-process server; with --server, that server has its own")
        }
        for (flag, path) in [("--tls-cert", tlsCert), ("--tls-key", tlsKey), ("--ca", ca)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) { throw ValidationError("\(flag) \(path): no such readable file") }
        }
        if relay, server != nil, token == nil {
            throw ValidationError("--relay with --server needs --token TOKEN: the relay sees everyone's media, so the server lets only API token holders take the role (vcall-server token create NAME)")
        }
        if let udpPorts, Self.portRange(udpPorts) == nil {
            throw ValidationError("--udp-ports \(udpPorts): use MIN-MAX with 1024 ≤ MIN ≤ MAX ≤ 65535, e.g. 40000-40099")
        }
    }

    /// Whether `host` is an IPv4 or IPv6 address rather than a name.
    static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || (!host.isEmpty && host.allSatisfy { $0.isNumber || $0 == "." })
    }

    /// `MIN-MAX` as a port range, nil unless 1024 ≤ MIN ≤ MAX ≤ 65535.
    static func portRange(_ text: String) -> ClosedRange<UInt16>? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { UInt16($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let low = parts[0], let high = parts[1], low >= 1024, low <= high else { return nil }
        return low...high
    }

    private var dimensions: (width: Int, height: Int)? { Self.dimensions(size) }

    /// `WIDTHxHEIGHT`, each 16…7680.
    static func dimensions(_ text: String) -> (width: Int, height: Int)? {
        let parts = text.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts.allSatisfy({ (16...7680).contains($0) }) else { return nil }
        return (parts[0], parts[1])
    }

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in ConsoleLogHandler(label: label, logLevel: level) }
        let logger = Logger(label: "vcall.gateway")
        let console = Console.shared

        // The server: given, or started here.
        var inProcessServer: InProcessServer?
        let serverURL: URL
        var token = self.token
        if let server {
            serverURL = URL(string: server)!
        } else {
            // The in-process server trusts its own gateway: a token that lives only in this process.
            let ownToken = token ?? "vct_" + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            token = ownToken
            let started = try await startServer(ownToken: ownToken, logger: logger)
            serverURL = started.url
            inProcessServer = started
            let shownHost = ["0.0.0.0", "::"].contains(host) ? "THIS-MACHINE" : host.contains(":") ? "[\(host)]" : host
            let web = "\(tlsCert == nil ? "http" : "https")://\(shownHost):\(started.url.port ?? port)/r/\(room)"
            console.line("vcall-server is running in this process: open \(web) in a browser to join the call")
        }

        var callConfiguration = CallConfiguration(room: room, serverURL: serverURL, name: name, token: token)
        callConfiguration.iceServers = (stun.isEmpty ? [] : [RTCIceServer(urls: stun)]) + turn.compactMap(RTCIceServer.init(turnArgument:))
        callConfiguration.latencyMilliseconds = latency
        callConfiguration.udpPorts = udpPorts.flatMap(Self.portRange)
        callConfiguration.relay = relay
        callConfiguration.serverTrust = inProcessServer != nil ? .inProcessServer : ca.map { .certificateAuthority(file: $0) } ?? .systemRoots
        var options = GatewayOptions(call: callConfiguration)
        options.video = video
        options.audio = audio
        options.recordDirectory = record.map { URL(fileURLWithPath: $0, isDirectory: true) }
        options.recordFromStart = record != nil && !recordOnRequest
        options.composite = composite
        options.compositeOptions.layout = CompositeRecorder.LayoutMode(rawValue: layout) ?? .grid
        if let size = Self.dimensions(compositeSize) {
            options.compositeOptions.width = size.width
            options.compositeOptions.height = size.height
        }
        // The mixers wait for the jitterbuffer's latency and a margin for decoding.
        options.compositeOptions.latency = .milliseconds(latency + 200)
        if let device { options.sourceParameters["device"] = device }
        if let display { options.sourceParameters["display"] = display }
        options.pipelinesDirectory = pipelines.map { URL(fileURLWithPath: $0, isDirectory: true) }
        if let dimensions {
            options.media.width = dimensions.width
            options.media.height = dimensions.height
        }

        let session: GatewaySession
        do {
            session = try GatewaySession(options: options, logger: logger)
        } catch {
            await inProcessServer?.stop()
            throw ValidationError("\(error)")
        }
        console.line("joining room \(room) at \(serverURL.absoluteString) as \(name)\(relay ? " (the room's relay)" : ""): sending video \(video), audio \(audio)"
                     + (record.map { ", recording to \($0)" } ?? ""))

        let quit = QuitSignal()
        quit.installSignalHandlers()
        let running = Task {
            await session.run()
            quit.trigger()  // signaling gave up (see signalingFailure): leave as on quit
        }
        let commands = Task { await readCommands(session: session, quit: quit) }
        let display = Task { await showStatus(session: session, console: console) }

        await quit.wait()
        let failure = await session.signalingFailure
        if let failure { console.line("vcall-gateway: \(failure)") }
        console.line("leaving: finalizing recordings (at most \(Int(finalizeTimeout)) s)…")
        // Whatever hangs, the process ends: the finalize wait, the server's 2 s, and a margin.
        ExitDeadline.start(.seconds(finalizeTimeout + 10))
        let finished = await finishes(within: .seconds(finalizeTimeout)) { await session.stop() }
        if !finished { console.line("leaving did not finish within \(Int(finalizeTimeout)) s: run vcall-gateway repair FILE on unfinished recordings") }
        display.cancel()
        commands.cancel()
        console.finish()
        running.cancel()
        await inProcessServer?.stop()
        // The stdin reader thread may still block in readLine(); the process is done.
        Foundation.exit(failure == nil ? 0 : 1)
    }

    /// vcall-server running in this process, for the one-command call.
    struct InProcessServer {
        let url: URL
        let group: ServiceGroup
        let task: Task<Void, any Error>

        /// Shuts down gracefully (browsers get a close frame), but waits at most 2 s for open sockets.
        func stop() async {
            await group.triggerGracefulShutdown()
            let task = self.task
            if await finishes(within: .seconds(2), { _ = try? await task.value }) { return }
            task.cancel()
            _ = await finishes(within: .seconds(1)) { _ = try? await task.value }
        }
    }

    private func startServer(ownToken: String, logger: Logger) async throws -> InProcessServer {
        var configuration = VCallServerConfiguration()
        configuration.inProcessTokens = [ownToken: name]
        configuration.host = host
        configuration.port = port
        configuration.dataDirectory = dataDir
        // The web app lists what this gateway records, to the accounts that were in the room.
        configuration.recordingsDirectory = record
        if let roomCapacity { configuration.roomCapacity = roomCapacity }
        if let tlsCert, let tlsKey { configuration.tls = ServerTLS(certificateChainFile: tlsCert, privateKeyFile: tlsKey) }
        configuration.iceServers = (stun.isEmpty ? [] : [RTCIceServer(urls: stun)]) + turn.compactMap(RTCIceServer.init(turnArgument:))
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let dataDir = self.dataDir
        let app = try await { () async throws in
            do {
                return try await buildApplication(configuration: configuration, logger: Logger(label: "vcall.server")) { port in
                    portSink.yield(port)
                    portSink.finish()
                }
            } catch {
                throw ValidationError("cannot start the in-process vcall-server (data folder \(dataDir)): \(error)")
            }
        }()
        // Signals are the gateway's (they finalize recordings first), so the group handles none.
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task {
            defer { portSink.finish() }
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let actual = await iterator.next() else {
            let reason = await task.result
            throw ValidationError("the in-process vcall-server did not start on \(host):\(port) (\(reason)): is the port taken? use --port or --server")
        }
        // The gateway itself goes in over loopback, by name when over TLS (which takes no address for the server's name).
        let local = tlsCert != nil ? "localhost" : ["0.0.0.0", "::"].contains(host) ? "127.0.0.1" : host.contains(":") ? "[\(host)]" : host
        return InProcessServer(url: URL(string: "\(tlsCert == nil ? "ws" : "wss")://\(local):\(actual)/ws")!, group: group, task: task)
    }

    private func readCommands(session: GatewaySession, quit: QuitSignal) async {
        for await line in StandardInput.lines() {
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            do {
                let command = try GatewayCommand.parse(line)
                if command == .quit {
                    quit.trigger()
                    return
                }
                Console.shared.line(await session.perform(command))
            } catch {
                Console.shared.line("\(error)")
            }
        }
    }

    private func showStatus(session: GatewaySession, console: Console) async {
        var tick = 0
        while !Task.isCancelled {
            let status = await session.status()
            if console.isTerminal {
                console.status(StatusFormatter.lines(status))
            } else if tick % 10 == 0 {
                // Without a terminal: one plain summary line every 10 s.
                let members = status.call.members.map { "\($0.name)=\($0.connectionState.rawValue)" }.joined(separator: ", ")
                console.line("status: \(status.call.members.count) participant(s) [\(members)], \(status.recordings.count) recording(s)")
            }
            tick += 1
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
