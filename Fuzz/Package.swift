// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets over framepipe's untrusted-input paths. Built only by
// scripts/fuzz.sh with `-sanitize=fuzzer,address` (libFuzzer supplies
// `main`), so this is a package of its own: a plain `swift build` of the
// main package never tries to link them.
let package = Package(
    name: "FramepipeFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "framepipe", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(
            name: "fuzz-frame-path",
            dependencies: [
                "FuzzDriver",
                .product(name: "Pipeline", package: "framepipe"),
                .product(name: "Stages", package: "framepipe"),
                .product(name: "WireProtocol", package: "framepipe"),
            ]
        ),
        .executableTarget(
            name: "fuzz-resp",
            dependencies: [
                "FuzzDriver",
                .product(name: "RESP", package: "framepipe"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "fuzz-request-path",
            dependencies: ["FuzzDriver", .product(name: "WireProtocol", package: "framepipe")]
        ),
        .executableTarget(
            name: "fuzz-cluster-wire",
            dependencies: [
                "FuzzDriver",
                .product(name: "WireProtocol", package: "framepipe"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "fuzz-config",
            dependencies: [
                "FuzzDriver",
                .product(name: "Pipeline", package: "framepipe"),
                .product(name: "Stages", package: "framepipe"),
            ]
        ),
    ]
)
