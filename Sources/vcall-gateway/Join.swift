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
    @Option(help: "The camera device for --video camera.") var device: String?
    @Option(help: "The X display for --video screen (default $DISPLAY).") var display: String?
    @Option(help: "Folder of the .pipeline sources (default: ./pipelines, or the checkout's).") var pipelines: String?
    @Option(help: "Video size sent, WIDTHxHEIGHT.") var size = "1280x720"
    @Flag(help: "With --record: also record the meeting as one file (DIR/ROOM-composite-UTCSTART.webm): everyone's video on a grid with their names, everyone's audio mixed.")
    var composite = false
    @OptionGroup var compositeFlags: CompositeFlags
    @Option(help: "Seconds to wait for recordings to finalize when quitting.") var finalizeTimeout: Double = 10
    @Option(help: "Address the in-process vcall-server listens on (without --server): 0.0.0.0 for people on the LAN, who then need --tls-cert.")
    var host = "127.0.0.1"
    @Option(name: .customLong("tls-cert"), help: "The in-process vcall-server serves HTTPS and WSS with this certificate (PEM); needs --tls-key.")
    var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "The private key of --tls-cert (unencrypted PEM).") var tlsKey: String?
    @OptionGroup var network: NetworkOptions
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
        if let server { try NetworkOptions.checkServer(server) }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        if let roomCapacity {
            guard server == nil else { throw ValidationError("--room-capacity sets the in-process server's rooms; a --server has its own (vcall-server --room-capacity)") }
            guard roomCapacity >= 1 else { throw ValidationError("--room-capacity must be at least 1") }
        }
        guard dimensions != nil else { throw ValidationError("--size must look like 1280x720") }
        if composite, record == nil {
            throw ValidationError("--composite needs --record DIR: the folder the meeting's file goes to")
        }
        if recordOnRequest, record == nil {
            throw ValidationError("--record-on-request needs --record DIR: the folder the recordings go to")
        }
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
        for (flag, path) in [("--tls-cert", tlsCert), ("--tls-key", tlsKey)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) { throw ValidationError("\(flag) \(path): no such readable file") }
        }
        if relay, server != nil, token == nil {
            throw ValidationError("--relay with --server needs --token TOKEN: the relay sees everyone's media, so the server lets only API token holders take the role (vcall-server token create NAME)")
        }
    }

    private var dimensions: (width: Int, height: Int)? { CompositeFlags.dimensions(size) }


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
        network.apply(to: &callConfiguration)
        callConfiguration.relay = relay
        if inProcessServer != nil { callConfiguration.serverTrust = .inProcessServer }
        var options = GatewayOptions(call: callConfiguration)
        options.video = video
        options.audio = audio
        options.recordDirectory = record.map { URL(fileURLWithPath: $0, isDirectory: true) }
        options.recordFromStart = record != nil && !recordOnRequest
        options.composite = composite
        compositeFlags.apply(to: &options.compositeOptions, latency: network.latency)
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
        configuration.iceServers = network.iceServers
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
