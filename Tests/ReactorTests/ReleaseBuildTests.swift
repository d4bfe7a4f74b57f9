// README's set-up builds with `swift build -c release`, which builds every target that is not a
// test target, and without `-enable-testing`: a source file of such a target (Sources/, Examples/,
// the test-support targets under Tests/) that imports a module `@testable` fails that build,
// while every debug build and test run, CI's included, passes. Checked on the sources, in place
// of a release build of the whole package in the suite.

import Foundation
import Testing

@Suite struct ReleaseBuildTests {
    @Test func noTargetButATestTargetImportsAModuleTestable() throws {
        let root = PackageResolutionTests.root
        let manifest = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        // Test-support targets live under Tests/ beside the test targets: the manifest says which.
        var directories = ["Sources", "Examples"]
        for line in manifest.split(separator: "\n") where line.contains("path: \"Tests/") {
            guard let start = line.range(of: "path: \"")?.upperBound,
                  let end = line[start...].firstIndex(of: "\"") else { continue }
            let path = String(line[start..<end])
            // The declaration this path closes: the nearest `.target(` or `.testTarget(` before it.
            let before = manifest[..<manifest.range(of: "path: \"\(path)\"")!.lowerBound]
            let target = before.range(of: ".target(", options: .backwards)?.lowerBound
            let testTarget = before.range(of: ".testTarget(", options: .backwards)?.lowerBound
            if let target, testTarget.map({ $0 < target }) ?? true { directories.append(path) }
        }
        #expect(directories.contains("Tests/ServerTestSupport"), "support targets found: \(directories)")
        var offenders: [String] = []
        for directory in directories {
            let base = root.appendingPathComponent(directory)
            guard let files = FileManager.default.enumerator(atPath: base.path) else { continue }
            for case let file as String in files where file.hasSuffix(".swift") {
                let text = try String(contentsOf: base.appendingPathComponent(file), encoding: .utf8)
                if text.split(separator: "\n").contains(where: { $0.hasPrefix("@testable import") }) {
                    offenders.append("\(directory)/\(file)")
                }
            }
        }
        #expect(offenders.isEmpty, "@testable import outside a test target (breaks `swift build -c release`): \(offenders)")
    }
}
