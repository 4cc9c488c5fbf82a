import Prometheus
import SignalingProtocol

/// The server's Prometheus metrics, served as text at `GET /metrics`.
///
/// Each application owns its registry, so several servers can run in one process (tests, the gateway).
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let connections: Gauge
    let rooms: Gauge
    let roomMembers: Gauge
    let messagesReceived: Counter
    let messagesRelayed: Counter
    let errors: [ErrorCode: Counter]

    init() {
        connections = registry.makeGauge(name: "vcall_connections", help: "Open WebSocket connections")
        rooms = registry.makeGauge(name: "vcall_rooms", help: "Active rooms")
        roomMembers = registry.makeGauge(name: "vcall_room_members", help: "Connections that are members of a room")
        messagesReceived = registry.makeCounter(name: "vcall_messages_received_total", help: "Messages received from clients")
        messagesRelayed = registry.makeCounter(
            name: "vcall_messages_relayed_total",
            help: "Messages delivered from one client to another (offer, answer, ice-candidate, calls, media-state)"
        )
        var errors: [ErrorCode: Counter] = [:]
        for code in ErrorCode.allCases {
            errors[code] = registry.makeCounter(
                name: "vcall_errors_total",
                labels: [("code", code.rawValue)],
                help: "error messages sent to clients, by code"
            )
        }
        self.errors = errors
    }

    func countError(_ code: ErrorCode) {
        errors[code]?.increment()
    }

    func text() -> String {
        registry.emitToString()
    }
}
