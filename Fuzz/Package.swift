// swift-tools-version:6.1
// libFuzzer targets for reactord's parsers, kept out of the root package so that neither
// `swift build` nor `swift test` there ever sees -sanitize flags. Build and run with
// scripts/fuzz.sh (Fuzz/README.md explains the entry point, the targets and how to add one).
import PackageDescription

/// Every fuzz target: an executable whose source defines `LLVMFuzzerTestOneInput`.
let targets: [(name: String, dependencies: [Target.Dependency])] = [
    ("FuzzLineFramer", [.product(name: "LineFraming", package: "reactord"), .product(name: "Services", package: "reactord")]),
    ("FuzzRESPParser", [.product(name: "Services", package: "reactord")]),
    ("FuzzRESPRoundTrip", [.product(name: "Services", package: "reactord")]),
    ("FuzzKVLine", [.product(name: "Services", package: "reactord")]),
    ("FuzzKVRESP", [.product(name: "Services", package: "reactord")]),
    ("FuzzTimeService", [.product(name: "Services", package: "reactord")]),
    ("FuzzFileService", [.product(name: "Services", package: "reactord")]),
    ("FuzzLogRecord", [.product(name: "Store", package: "reactord")]),
    ("FuzzRecovery", [.product(name: "Store", package: "reactord")]),
    ("FuzzLogRoundTrip", [.product(name: "Store", package: "reactord")]),
    ("FuzzSnapshot", [.product(name: "Store", package: "reactord")]),
    ("FuzzConfigFile", [.product(name: "Server", package: "reactord")]),
    ("FuzzHTTPParser", [.product(name: "Services", package: "reactord")]),
    ("FuzzHTTPFramer", [.product(name: "ReactorHTTP", package: "reactord")]),
    ("FuzzScripts", [.product(name: "Services", package: "reactord"), .product(name: "Store", package: "reactord")]),
    // More targets go here, one line each (Sources/<Name>/<Name>.swift and Corpus/<Name>/), as
    // Fuzz/README.md "Adding a target" says.
]

let package = Package(
    name: "reactord-fuzz",
    // Named explicitly: a path dependency's identity is otherwise its directory's name, which
    // differs between checkouts.
    dependencies: [.package(name: "reactord", path: "..")],
    targets: [
        .target(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: [
            "CLibFuzzer", .product(name: "Services", package: "reactord"), .product(name: "Store", package: "reactord"),
        ]),
    ] + targets.map { .executableTarget(name: $0.name, dependencies: ["FuzzSupport"] + $0.dependencies) }
)
