// swift-tools-version:6.1
// Micro-benchmarks for reactord's hot paths, kept in a nested package so that `swift build` and
// `swift test` at the top never build package-benchmark. Run from this folder:
//   swift package benchmark                 (all suites)
//   swift package benchmark --target ServicesBenchmarks
import PackageDescription

let package = Package(
    name: "reactord-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "reactord", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ServicesBenchmarks",
            dependencies: [
                .product(name: "Services", package: "reactord"),
                .product(name: "LineFraming", package: "reactord"),
                .product(name: "Store", package: "reactord"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "ServicesBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(
            name: "KeyspaceBenchmarks",
            dependencies: [
                .product(name: "Store", package: "reactord"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "KeyspaceBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(
            name: "StoreBenchmarks",
            dependencies: [
                .product(name: "Store", package: "reactord"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "StoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)
