// swift-tools-version:6.1
import PackageDescription

/// What only the server's targets use: resolved only with the trait `Server` enabled.
let server = TargetDependencyCondition.when(traits: ["Server"])

let package = Package(
    name: "reactord",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Reactor", targets: ["Reactor"]),
        .library(name: "LineFraming", targets: ["LineFraming"]),
        .library(name: "ReactorHTTP", targets: ["ReactorHTTP"]),
        .library(name: "Services", targets: ["Services"]),
        .library(name: "Store", targets: ["Store"]),
        .library(name: "Server", targets: ["Server"]),
        .executable(name: "reactord", targets: ["reactord"]),
        .executable(name: "reactor-cli", targets: ["reactor-cli"]),
        .executable(name: "kvbench", targets: ["kvbench"]),
    ],
    // The trait `Server` (on by default) brings in what reactord, reactor-cli and kvbench need
    // besides swift-log. A tool that depends on the libraries Reactor and LineFraming turns it
    // off (`traits: []`), and then resolves swift-log alone (Tests/ReactorTests/PackageResolutionTests.swift).
    traits: [
        .default(enabledTraits: ["Server"]),
        .trait(name: "Server", description: "The server, its tools and their dependencies (argument parser, metrics, Prometheus, HdrHistogram)."),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(name: "CLinux"),
        .target(name: "Reactor", dependencies: ["CLinux", .product(name: "Logging", package: "swift-log")]),
        .target(name: "LineFraming"),
        // HTTP/1.1 request framing and response writing for tools on the Reactor.
        .target(name: "ReactorHTTP", dependencies: ["Reactor"]),
        // Lua 5.1 and the cjson and bit libraries, from Debian (README: set-up); only Services links them.
        .target(name: "CLua", linkerSettings: [
            .linkedLibrary("lua5.1"), .linkedLibrary("lua5.1-cjson"), .linkedLibrary("lua5.1-bitop"),
        ]),
        .target(name: "Services", dependencies: ["LineFraming", "Store", "CLua"]),
        // CRC-32C by the processor's instruction where it has one (Sources/Store/CRC32C.swift).
        .target(name: "CChecksum"),
        // A cache prefetch hint (header only) for the store's sorted-set descents.
        .target(name: "CPrefetch"),
        .target(name: "Store", dependencies: [
            "CLinux", "CChecksum", "CPrefetch", .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Server", dependencies: [
            "Reactor", "Services", "Store", "CLinux", .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics", condition: server),
            .product(name: "Prometheus", package: "swift-prometheus", condition: server),
        ]),
        .executableTarget(name: "reactord", dependencies: [
            "Server", "Store", "CLinux", .product(name: "ArgumentParser", package: "swift-argument-parser", condition: server),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "reactor-cli", dependencies: [
            "Reactor", "Services", .product(name: "ArgumentParser", package: "swift-argument-parser", condition: server),
        ]),
        .executableTarget(name: "kvbench", dependencies: [
            "Reactor", "Services", .product(name: "ArgumentParser", package: "swift-argument-parser", condition: server),
            .product(name: "Histogram", package: "hdrhistogram-swift", condition: server),
        ]),
        .executableTarget(name: "line-upper", dependencies: ["Reactor", "LineFraming"], path: "Examples/line-upper"),
        .executableTarget(name: "http-plaintext", dependencies: ["Reactor", "ReactorHTTP"], path: "Examples/http-plaintext"),
        .executableTarget(name: "async-echo", dependencies: ["Reactor"], path: "Examples/async-echo"),
        .executableTarget(name: "echo-server", dependencies: ["Reactor"], path: "Examples/echo-server"),
        .executableTarget(name: "line-client", dependencies: ["Reactor", "LineFraming"], path: "Examples/line-client"),
        .executableTarget(name: "multi-loop-echo", dependencies: ["Reactor", "LineFraming"], path: "Examples/multi-loop-echo"),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "CLinux", "TestSupport"]),
        .testTarget(name: "LineFramingTests", dependencies: ["LineFraming"]),
        .testTarget(name: "ReactorHTTPTests", dependencies: ["ReactorHTTP", "Reactor", "TestSupport"]),
        .testTarget(name: "ServicesTests", dependencies: ["Services", "Store", "TestSupport"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "TestSupport"]),
        // Test support: what every test target shares (failures, shared values, polling, temporary
        // directories, a hand-set clock), and what the targets that start servers share (in-process
        // servers, loopback clients, child processes).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .target(name: "ServerTestSupport", dependencies: [
            "TestSupport", "Server", "Reactor", .product(name: "Logging", package: "swift-log"),
        ], path: "Tests/ServerTestSupport"),
        // The server's tests, one target per subject.
        .testTarget(name: "ServerTests", dependencies: ["ServerTestSupport", "Server", "Reactor", "Services", "Store"]),
        .testTarget(name: "KVTests", dependencies: ["ServerTestSupport", "Server", "Reactor", "Services", "Store"]),
        .testTarget(name: "DurabilityTests", dependencies: ["ServerTestSupport", "Server", "Reactor", "Services", "Store"]),
        .testTarget(name: "OperationsTests", dependencies: ["ServerTestSupport", "Server", "Reactor", "Services", "Store"]),
        .testTarget(name: "KVBenchToolTests", dependencies: ["ServerTestSupport", "Server", "Reactor"]),
        .testTarget(name: "ReactorCLIToolTests", dependencies: ["ServerTestSupport", "Server", "Reactor"]),
        .testTarget(name: "DesignStudyTests", dependencies: ["ServerTestSupport"]),
        .testTarget(name: "FuzzTests", dependencies: ["ServerTestSupport"]),
        .testTarget(name: "CompatibilityTests", dependencies: ["ServerTestSupport"], exclude: ["Apps"]),
    ]
)

// The DocC plugin, only when the API reference is being rendered (scripts/docs.sh sets
// REACTOR_DOCS=1): it must not add to what a tool depending on Reactor resolves.
if Context.environment["REACTOR_DOCS"] == "1" {
    package.dependencies.append(.package(url: "https://github.com/swiftlang/swift-docc-plugin", exact: "1.5.0"))
}
