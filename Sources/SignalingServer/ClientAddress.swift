import HTTPTypes
import NIOCore

/// Where a client connects from: the socket's peer, or, when that peer is a reverse proxy the server was
/// told to trust (`--trusted-proxy`), the address the proxy says it served (`X-Forwarded-For`). The header
/// from anyone else is ignored: any client can write it.
///
/// ```swift
/// ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: "203.0.113.7", trustedProxies: ["127.0.0.1"])  // "203.0.113.7"
/// ClientAddress.resolve(peer: "198.51.100.2", forwardedFor: "203.0.113.7", trustedProxies: ["127.0.0.1"]) // "198.51.100.2"
/// ```
enum ClientAddress {
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    /// The client's address. Proxies append the address they received from, so the header is read from its
    /// end, skipping addresses of trusted proxies (a chain of them); the first other one is the client.
    static func resolve(peer: String, forwardedFor: String?, trustedProxies: Set<String>) -> String {
        guard trustedProxies.contains(peer), let forwardedFor else { return peer }
        let hops = forwardedFor.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return hops.reversed().first { !trustedProxies.contains($0) } ?? peer
    }

    /// The IP address of a channel's peer, without its port ("?" if unknown).
    static func peer(of channel: any Channel) -> String {
        channel.remoteAddress?.ipAddress ?? "?"
    }
}
