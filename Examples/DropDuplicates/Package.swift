// swift-tools-version: 6.1
import PackageDescription

// A user's own package: depends on framepipe, adds one stage, and runs the
// very same CLI and server with it registered.
let package = Package(
    name: "DropDuplicates",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "framepipe", path: "../.."),
    ],
    targets: [
        .target(
            name: "DropDuplicates",
            dependencies: [.product(name: "Pipeline", package: "framepipe")]
        ),
        .executableTarget(
            name: "framepipe-dedup",
            dependencies: [
                "DropDuplicates",
                .product(name: "Stages", package: "framepipe"),
                .product(name: "FramepipeServer", package: "framepipe"),
            ]
        ),
        .testTarget(
            name: "DropDuplicatesTests",
            dependencies: [
                "DropDuplicates",
                .product(name: "Pipeline", package: "framepipe"),
                .product(name: "Stages", package: "framepipe"),
            ]
        ),
    ]
)
