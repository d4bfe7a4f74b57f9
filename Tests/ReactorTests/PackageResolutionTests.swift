// A tool that depends on the libraries Reactor and LineFraming, with the trait `Server` turned
// off (the snippet in Sources/Reactor/Reactor.docc/Embedding.md), must resolve swift-log and
// nothing else: the server's packages (argument parser, metrics, Prometheus, HdrHistogram) stay
// out of its Package.resolved and its checkouts. Checked by resolving a scratch tool package in
// a temporary directory, once by path and once by a git URL (a repository holding this
// package's manifest and sources), with `swift package resolve` (bounded in time, killed by PID).

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct PackageResolutionTests {
    /// This package's root (the directory holding Package.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func aToolByPathResolvesOnlySwiftLog() throws {
        let dependency = ".package(path: \"\(Self.root.path)\", traits: [])"
        let pins = try Self.resolveTool(dependency: dependency, packageName: Self.root.lastPathComponent)
        #expect(pins.identities == ["swift-log"], "Package.resolved pins \(pins.identities)")
        #expect(pins.checkouts == ["swift-log"], "checked out \(pins.checkouts)")
    }

    @Test func aToolByGitURLResolvesOnlySwiftLog() throws {
        let repository = try TemporaryDirectory("reactor-repo")
        // The manifest and every directory it names, committed to a fresh repository.
        for item in ["Package.swift", "Sources", "Examples", "Tests"] {
            try Self.run("/bin/cp", ["-R", Self.root.appendingPathComponent(item).path, repository.path])
        }
        try Self.run("/usr/bin/env", ["git", "init", "-q", "-b", "main", repository.path])
        try Self.run("/usr/bin/env", ["git", "-C", repository.path, "add", "-A"])
        try Self.run("/usr/bin/env", ["git", "-C", repository.path, "-c", "user.name=test", "-c", "user.email=test@example.invalid",
                                      "commit", "-q", "-m", "snapshot"])
        let dependency = ".package(url: \"file://\(repository.path)\", branch: \"main\", traits: [])"
        let pins = try Self.resolveTool(dependency: dependency, packageName: URL(fileURLWithPath: repository.path).lastPathComponent)
        #expect(pins.identities.sorted() == [URL(fileURLWithPath: repository.path).lastPathComponent.lowercased(), "swift-log"].sorted(),
                "Package.resolved pins \(pins.identities)")
        #expect(!pins.checkouts.contains { ["swift-argument-parser", "swift-metrics", "swift-prometheus", "hdrhistogram-swift"].contains($0) },
                "checked out \(pins.checkouts)")
    }

    /// Writes a tool package depending on `dependency` (products Reactor and LineFraming of the
    /// package `packageName`), resolves it, and returns what its Package.resolved pins and what
    /// was checked out.
    static func resolveTool(dependency: String, packageName: String) throws -> (identities: [String], checkouts: [String]) {
        let tool = try TemporaryDirectory("reactor-tool")
        try FileManager.default.createDirectory(atPath: tool.path + "/Sources/Tool", withIntermediateDirectories: true)
        try """
        // swift-tools-version:6.1
        import PackageDescription
        let package = Package(
            name: "Tool",
            dependencies: [\(dependency)],
            targets: [.executableTarget(name: "Tool", dependencies: [
                .product(name: "Reactor", package: "\(packageName)"),
                .product(name: "LineFraming", package: "\(packageName)"),
            ])]
        )
        """.write(toFile: tool.path + "/Package.swift", atomically: true, encoding: .utf8)
        try "import Reactor\nimport LineFraming\n".write(toFile: tool.path + "/Sources/Tool/main.swift", atomically: true, encoding: .utf8)
        try Self.run("/usr/bin/env", ["swift", "package", "--package-path", tool.path, "resolve"], within: 240)
        let resolved = try Data(contentsOf: URL(fileURLWithPath: tool.path + "/Package.resolved"))
        let object = try #require(try JSONSerialization.jsonObject(with: resolved) as? [String: Any])
        let pins = try #require(object["pins"] as? [[String: Any]])
        let identities = pins.compactMap { $0["identity"] as? String }.sorted()
        let checkouts = ((try? FileManager.default.contentsOfDirectory(atPath: tool.path + "/.build/checkouts")) ?? []).sorted()
        return (identities, checkouts)
    }

    /// Runs a command to completion; throws if it fails or outlives `seconds` (then killed by PID).
    static func run(_ executable: String, _ arguments: [String], within seconds: Double = 60) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let collected = Shared<Data>(Data())
        let drained = DispatchSemaphore(value: 0)
        Thread {
            let data = output.fileHandleForReading.readDataToEndOfFile()
            collected.with { $0 = data }
            drained.signal()
        }.start()
        let exited = DispatchSemaphore(value: 0)
        Thread { process.waitUntilExit(); exited.signal() }.start()
        if exited.wait(timeout: .now() + seconds) != .success {
            kill(process.processIdentifier, SIGKILL)
            _ = exited.wait(timeout: .now() + 5)
            throw TestFailure("\(arguments) still running after \(seconds) s: killed")
        }
        _ = drained.wait(timeout: .now() + 5)
        guard process.terminationStatus == 0 else {
            throw TestFailure("\(executable) \(arguments) failed (\(process.terminationStatus)): \(String(decoding: collected.current, as: UTF8.self))")
        }
    }
}
