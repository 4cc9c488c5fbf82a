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
        connections = registry.makeGauge(descriptor: Self.name("connections", "Open WebSocket connections"))
        rooms = registry.makeGauge(descriptor: Self.name("rooms", "Active rooms"))
        roomMembers = registry.makeGauge(descriptor: Self.name("room_members", "Connections that are members of a room"))
        messagesReceived = registry.makeCounter(descriptor: Self.name("messages_received_total", "Valid messages received from clients"))
        messagesRelayed = registry.makeCounter(descriptor: Self.name(
            "messages_relayed_total",
            "Messages delivered from one client to another (offer, answer, ice-candidate, calls, media-state)"
        ))
        var errors: [ErrorCode: Counter] = [:]
        for code in ErrorCode.allCases {
            errors[code] = registry.makeCounter(
                descriptor: Self.name("errors_total", "error messages sent to clients, by code"),
                labels: [("code", code.rawValue)]
            )
        }
        self.errors = errors
    }

    static func name(_ metric: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "vcall", metricName: metric, unitName: "", helpText: help)
    }

    func countError(_ code: ErrorCode) {
        errors[code]?.increment()
    }

    func text() -> String {
        registry.emitToString()
    }
}
