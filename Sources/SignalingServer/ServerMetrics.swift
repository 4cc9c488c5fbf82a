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
    // Between nodes on one database (`ClusterBus`); zero on a single node.
    let clusterSent: Counter
    let clusterReceived: Counter
    let clusterUndeliverable: Counter
    let clusterDelay: ValueHistogram
    let clusterQueue: Gauge
    let clusterOutboxRows: Gauge
    let clusterNodes: Gauge

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
        clusterSent = registry.makeCounter(descriptor: Self.name("cluster_messages_sent_total", "Events written to the outbox for other nodes"))
        clusterReceived = registry.makeCounter(descriptor: Self.name("cluster_messages_received_total", "Events read from other nodes"))
        clusterUndeliverable = registry.makeCounter(descriptor: Self.name(
            "cluster_messages_undeliverable_total", "Events for other nodes given up while the database was unreachable (their senders got an error)"
        ))
        clusterDelay = registry.makeValueHistogram(
            descriptor: Self.name("cluster_delivery_seconds", "From an event queued on one node to its reading on another"),
            buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5]
        )
        clusterQueue = registry.makeGauge(descriptor: Self.name("cluster_queue", "Events waiting on this node to be written to the outbox"))
        clusterOutboxRows = registry.makeGauge(descriptor: Self.name("cluster_outbox_rows", "Rows in the outbox table (kept two minutes)"))
        clusterNodes = registry.makeGauge(descriptor: Self.name("cluster_nodes", "Nodes heartbeating on the database, this one included"))
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
