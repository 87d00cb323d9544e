// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "framepipe",
    platforms: [.macOS(.v14)],
    products: [
        // The three libraries a user's own package depends on to add stages
        // and run the very same server and CLI.
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .library(name: "Stages", targets: ["Stages"]),
        .library(name: "FramepipeServer", targets: ["FramepipeServer"]),
        // The parser for what clients send, on its own for the fuzz targets.
        .library(name: "WireProtocol", targets: ["WireProtocol"]),
        // The Redis client, on its own for its fuzz target.
        .library(name: "RESP", targets: ["RESP"]),
        .executable(name: "framepipe", targets: ["framepipe"]),
        .executable(name: "framepipe-bench", targets: ["framepipe-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        // Webhook signatures (HMAC-SHA256); the range jwt-kit accepts too.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // Measured against our own multipart reader (framepipe-bench multipart); the relay does not link it.
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
    ],
    targets: [
        // libturbojpeg from Debian's libturbojpeg0-dev, found through pkg-config.
        .systemLibrary(
            name: "CTurboJPEG",
            path: "Sources/CTurboJPEG",
            pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]
        ),
        .target(
            name: "Pipeline",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Stages",
            dependencies: [
                "Pipeline",
                "CTurboJPEG",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Real JPEG frames made with libturbojpeg and an in-memory sink, for the tests and the bench.
        .target(
            name: "TestFixtures",
            dependencies: [
                "Pipeline", "Stages", "RESP",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The small Redis client the cluster mode speaks with (RESP2 on SwiftNIO).
        .target(
            name: "RESP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "WireProtocol",
            dependencies: ["Pipeline", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // The head of Linux's tcp_info, which glibc's header lacks (bytes_acked, notsent_bytes).
        .target(name: "CTCPInfo"),
        // The relay's rules, pure: streams, viewers, seq, where each stream
        // lives, what each viewer is sent; events in, actions out. No I/O,
        // no clock, no locks of the hub's.
        .target(
            name: "RelayRules",
            dependencies: [
                "Pipeline",
                "WireProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // What carries the rules out: the hub, latest-wins mailboxes, frame
        // encoding and the writer on each viewer's channel. No HTTP here.
        .target(
            name: "RelayCore",
            dependencies: [
                "CTCPInfo",
                "Pipeline",
                "RelayRules",
                "WireProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // Who may connect and what they may do: tokens (own keys and an
        // identity provider's JWKS), their lifetime and revocation, the
        // upgrade gate, origins, trusted proxies, limits, the audit trail.
        .target(
            name: "Access",
            dependencies: [
                "Pipeline",
                "WireProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // Nodes sharing streams through one Redis: feeds the core other
        // nodes' streams and frames, and tells them about this node's.
        .target(
            name: "Cluster",
            dependencies: [
                "Pipeline",
                "WireProtocol",
                "RelayCore",
                "Access",
                "RESP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "FramepipeServer",
            dependencies: [
                "Pipeline",
                "Stages",
                "WireProtocol",
                "RelayCore",
                "Access",
                "Cluster",
                "RESP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/Server",
            resources: [.copy("Web")]
        ),
        .executableTarget(
            name: "framepipe",
            dependencies: ["FramepipeServer", "Stages"]
        ),
        .executableTarget(
            name: "framepipe-bench",
            dependencies: [
                "Pipeline",
                "Stages",
                "TestFixtures",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                "WireProtocol",
            ],
            path: "Sources/Bench"
        ),
        // Helpers the test targets share (they link Swift Testing, so tests only).
        .target(name: "TestSupport", path: "Tests/Support"),
        .testTarget(
            name: "PipelineTests",
            dependencies: [
                "TestSupport",
                "Pipeline",
                "Stages",
                "TestFixtures",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "StagesTests",
            dependencies: [
                "TestSupport",
                "Pipeline",
                "Stages",
                "TestFixtures",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "RESPTests",
            dependencies: [
                "TestSupport",
                "RESP",
                "TestFixtures",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        // The relay's rules without sockets: RelayState's events and actions.
        .testTarget(
            name: "RelayCoreTests",
            dependencies: [
                "RelayCore",
                "RelayRules",
                "Pipeline",
                "WireProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "FramepipeServer",
                "RelayCore",
                "Access",
                "Cluster",
                "WireProtocol",
                "RESP",
                "Stages",
                "TestFixtures",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)
