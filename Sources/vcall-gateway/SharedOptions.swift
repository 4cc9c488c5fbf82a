import ArgumentParser
import Foundation
import Gateway
import WebRTCTypes

/// How a gateway reaches its peers and its server: the flags `join` and `worker` share.
struct NetworkOptions: ParsableArguments {
    @Option(help: "STUN server, e.g. stun:stun.example.org:3478 (repeatable).") var stun: [String] = []
    @Option(help: "TURN server: turn:HOST:PORT or USER:PASSWORD@turn:HOST:PORT (repeatable).") var turn: [String] = []
    @Option(name: .customLong("udp-ports"),
            help: "The UDP ports ICE may use, MIN-MAX (e.g. 40000-40099), for a firewall to open; each participant takes a port or two per network interface.")
    var udpPorts: String?
    @Option(help: "Receive jitterbuffer in milliseconds: lower starts pictures and recordings sooner, higher leaves more time to recover lost packets.")
    var latency = 200
    @Option(help: "Trust a wss:// --server whose certificate this certificate authority (PEM) signed, besides the system's.")
    var ca: String?

    func validate() throws {
        for url in stun where !url.hasPrefix("stun:") && !url.hasPrefix("stuns:") {
            throw ValidationError("--stun \(url): a STUN URL starts with stun:")
        }
        for value in turn where RTCIceServer(turnArgument: value) == nil {
            throw ValidationError("--turn \(value): use turn:HOST:PORT or USER:PASSWORD@turn:HOST:PORT")
        }
        if let udpPorts, Self.portRange(udpPorts) == nil {
            throw ValidationError("--udp-ports \(udpPorts): use MIN-MAX with 1024 ≤ MIN ≤ MAX ≤ 65535, e.g. 40000-40099")
        }
        guard (0...5000).contains(latency) else { throw ValidationError("--latency must be 0…5000 ms") }
        if let ca, !FileManager.default.isReadableFile(atPath: ca) { throw ValidationError("--ca \(ca): no such readable file") }
    }

    var iceServers: [RTCIceServer] {
        (stun.isEmpty ? [] : [RTCIceServer(urls: stun)]) + turn.compactMap(RTCIceServer.init(turnArgument:))
    }

    /// Sets the call's ICE servers, ports, latency and which server certificates it trusts (`--ca`, or the system's).
    func apply(to call: inout CallConfiguration) {
        call.iceServers = iceServers
        call.latencyMilliseconds = latency
        call.udpPorts = udpPorts.flatMap(Self.portRange)
        call.serverTrust = ca.map { .certificateAuthority(file: $0) } ?? .systemRoots
    }

    /// Refuses a `--server` that is not a WebSocket URL, or a wss:// one that names its host by address.
    static func checkServer(_ server: String) throws {
        guard let url = URL(string: server), url.scheme.map({ ["ws", "wss"].contains($0) }) == true else {
            throw ValidationError("--server must be a WebSocket URL such as ws://127.0.0.1:8080/ws or wss://calls.example.org/ws")
        }
        if url.scheme == "wss", let host = url.host, isIPAddress(host) {
            // TLS names the server by its DNS name (SNI), and NIO's TLS refuses an address there.
            throw ValidationError("--server \(server): over wss:// give the server's DNS name, the one its certificate names (an /etc/hosts entry will do), not an IP address")
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
}

/// The composite's picture and layout: the flags `join` and `worker` share.
struct CompositeFlags: ParsableArguments {
    @Option(name: .customLong("composite-size"), help: "The composite's picture, WIDTHxHEIGHT.") var compositeSize = "1280x720"
    @Option(help: "The composite's layout: grid (everyone alike; a shared screen large) or speaker (whoever is talking large).")
    var layout = "grid"

    func validate() throws {
        guard Self.dimensions(compositeSize) != nil else { throw ValidationError("--composite-size must look like 1280x720") }
        guard CompositeRecorder.LayoutMode(rawValue: layout) != nil else { throw ValidationError("--layout must be grid or speaker") }
    }

    /// Sets the composite's size and layout; its mixers wait for the jitterbuffer's `latency` and a margin for decoding.
    func apply(to options: inout CompositeRecorder.Options, latency: Int) {
        options.layout = CompositeRecorder.LayoutMode(rawValue: layout) ?? .grid
        if let size = Self.dimensions(compositeSize) {
            options.width = size.width
            options.height = size.height
        }
        options.latency = .milliseconds(latency + 200)
    }

    /// `WIDTHxHEIGHT`, each 16…7680.
    static func dimensions(_ text: String) -> (width: Int, height: Int)? {
        let parts = text.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts.allSatisfy({ (16...7680).contains($0) }) else { return nil }
        return (parts[0], parts[1])
    }
}
