// swift-tools-version:6.0
import PackageDescription

// GStreamer's libraries beyond gstreamer-webrtc-1.0 (which CGStreamer's pkg-config pulls in).
let gstreamerLibraries: [LinkerSetting] = [
    .linkedLibrary("gstsdp-1.0"),
    .linkedLibrary("gstvideo-1.0"),
    .linkedLibrary("gstrtp-1.0"),
]

let package = Package(
    name: "vcall",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "vcall-server", targets: ["vcall-server"]),
        .executable(name: "vcall-gateway", targets: ["vcall-gateway"]),
        .executable(name: "vcall-interop-peer", targets: ["vcall-interop-peer"]),
        .executable(name: "vcall-bench", targets: ["vcall-bench"]),
        .library(name: "GStreamer", targets: ["GStreamer"]),
        .library(name: "WebRTCTypes", targets: ["WebRTCTypes"]),
        .library(name: "GStreamerWebRTC", targets: ["GStreamerWebRTC"]),
        .library(name: "WebRTC", targets: ["WebRTC"]),
        .library(name: "SignalingProtocol", targets: ["SignalingProtocol"]),
        .library(name: "SignalingServer", targets: ["SignalingServer"]),
        .library(name: "Gateway", targets: ["Gateway"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // C: GStreamer's headers and the small inline functions Swift cannot call directly.
        .systemLibrary(
            name: "CGStreamer",
            pkgConfig: "gstreamer-webrtc-1.0",
            providers: [.apt(["libgstreamer1.0-dev", "libgstreamer-plugins-base1.0-dev", "libgstreamer-plugins-bad1.0-dev"])]
        ),
        .target(
            name: "GStreamer",
            dependencies: ["CGStreamer"],
            linkerSettings: gstreamerLibraries
        ),
        // The W3C WebRTC dictionaries (RTCSessionDescriptionInit, RTCIceCandidateInit, RTCIceServer) as Codable
        // values: what the signaling protocol carries and what WebRTCPeer takes. No dependencies.
        .target(name: "WebRTCTypes"),
        // C: the DTLS certificate generator (OpenSSL's libcrypto).
        .target(name: "CDTLSCertificate", linkerSettings: [.linkedLibrary("crypto")]),
        // GStreamer's webrtc and sdp libraries as Swift types: session descriptions for webrtcbin, the DTLS certificate.
        .target(
            name: "GStreamerWebRTC",
            dependencies: ["GStreamer", "CGStreamer", "CDTLSCertificate", "WebRTCTypes"],
            linkerSettings: gstreamerLibraries
        ),
        // WebRTCPeer over webrtcbin. Swift only: everything C comes through GStreamer and GStreamerWebRTC.
        .target(
            name: "WebRTC",
            dependencies: ["GStreamer", "GStreamerWebRTC", "WebRTCTypes", .product(name: "Logging", package: "swift-log")]
        ),
        // Demo and test media: two peers calling each other in one process, test patterns and tones.
        // Not part of the WebRTC library; the demo command, the interop peer, the benchmarks and tests use it.
        .target(name: "WebRTCDemo", dependencies: ["WebRTC", "GStreamer", .product(name: "Logging", package: "swift-log")]),
        .target(name: "SignalingProtocol", dependencies: ["WebRTCTypes"]),
        // A recording's JSON report (what the gateway writes beside each file) and the folder of them as the
        // server lists it, with who may see which. Foundation only: the gateway writes, the server reads.
        .target(name: "Recordings"),
        .target(
            name: "SignalingServer",
            dependencies: [
                "SignalingProtocol", "WebRTCTypes", "Recordings",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.copy("Public")]
        ),
        // A call: signaling client, one WebRTCPeer per participant, media sources from pipelines/, recorders.
        .target(
            name: "Gateway",
            dependencies: [
                "WebRTC", "WebRTCTypes", "GStreamer", "SignalingProtocol", "Recordings",
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: gstreamerLibraries
        ),
        .executableTarget(
            name: "vcall-server",
            dependencies: [
                "SignalingServer", "WebRTCTypes",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "vcall-gateway",
            dependencies: [
                "Gateway", "SignalingServer", "Recordings", "WebRTC", "WebRTCDemo", "WebRTCTypes", "GStreamer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // A WebRTCPeer driven by JSON lines on stdin/stdout: the interop tests' bridge to Chromium and aiortc.
        .executableTarget(
            name: "vcall-interop-peer",
            dependencies: [
                "WebRTC", "WebRTCDemo", "WebRTCTypes", "GStreamer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Benchmarks and resource checks that print their figures (and that tests run as a subprocess).
        .executableTarget(
            name: "vcall-bench",
            dependencies: [
                "WebRTC", "WebRTCDemo", "GStreamer", "Gateway",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                // The relay benchmark's Janus client.
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                // The signaling benchmark's clients, written on NIO's WebSocket pipeline.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "GStreamerTests", dependencies: ["GStreamer", "vcall-bench"]),
        .testTarget(name: "GStreamerWebRTCTests", dependencies: ["GStreamerWebRTC", "GStreamer", "WebRTCTypes"]),
        .testTarget(name: "WebRTCTests", dependencies: ["WebRTC", "WebRTCDemo", "WebRTCTypes", "GStreamerWebRTC", "GStreamer", "SignalingProtocol"]),
        .testTarget(name: "SignalingProtocolTests", dependencies: ["SignalingProtocol", "WebRTCTypes"]),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "WebRTC", "WebRTCDemo", "WebRTCTypes", "GStreamer", "SignalingServer", "SignalingProtocol", "Recordings"]),
        .testTarget(
            name: "SignalingServerTests",
            dependencies: [
                "SignalingServer", "SignalingProtocol", "WebRTCTypes", "Recordings",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSTesting", package: "hummingbird-websocket"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
