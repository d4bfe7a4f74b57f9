// swift-tools-version:6.1
// The servers Benchmarks/nio-compare.sh measures besides the examples at the top: SwiftNIO's
// echo and NIOHTTP1 plaintext servers, each on one event-loop thread, and the Reactor's callback
// echo (the examples' async echo and HTTP plaintext servers build at the top). A package of its
// own so that nothing at the top ever resolves SwiftNIO. Build from this folder:
//   swift build -c release
import PackageDescription

let package = Package(
    name: "nio-compare",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(name: "reactord", path: "../..", traits: []),
    ],
    targets: [
        .executableTarget(name: "ReactorEcho", dependencies: [.product(name: "Reactor", package: "reactord")]),
        .executableTarget(name: "NIOEcho", dependencies: [.product(name: "NIOPosix", package: "swift-nio")]),
        .executableTarget(name: "NIOPlaintext", dependencies: [
            .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
    ]
)
