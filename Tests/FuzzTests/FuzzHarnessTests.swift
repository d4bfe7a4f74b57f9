// Keeps the fuzz harness (Fuzz/, scripts/fuzz.sh) from rotting: every libFuzzer target is built
// with AddressSanitizer and run for a few seconds from its seed corpus, and must finish clean (no
// crash, no broken invariant, no leak, no hang) after executing inputs. The long runs that look
// for new bugs are scripts/fuzz.sh's job (Fuzz/README.md); inputs that once failed live in the
// seed corpora, so these short runs replay them too.

import Foundation
import Testing

@Suite struct FuzzHarnessTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/fuzz.sh").path
    /// Seconds each target runs: enough to replay its seeds and mutate them a little.
    static let secondsPerTarget = 3

    @Test func everyFuzzTargetBuildsAndRunsCleanFromItsSeeds() throws {
        // Debug: the quicker build; the executions per second do not matter for a smoke run.
        let environment = ["FUZZ_CONFIG=debug"]
        let build = try runTool("env", environment + ["bash", Self.script, "build"], within: 1800)
        try #require(build.status == 0, "fuzz build failed: \(build.stderr.suffix(4000))")
        let targets = try runTool("bash", [Self.script, "list"]).text.split(separator: "\n").map(String.init)
        #expect(targets.count >= 11, "targets: \(targets)")
        for target in targets {
            let run = try runTool(
                "env", environment + ["FUZZ_NO_BUILD=1", "bash", Self.script, target, String(Self.secondsPerTarget)],
                within: 120)
            #expect(run.status == 0, "\(target): \(run.text) \(run.stderr.suffix(4000))")
            // "FuzzX: exit 0, N executions in 3s, ...": the target really ran inputs.
            let executions = run.text.split(separator: " ").firstIndex(of: "executions").flatMap { index in
                Int(run.text.split(separator: " ")[index - 1])
            }
            #expect((executions ?? 0) > 0, "\(target) executed nothing: \(run.text)")
        }
    }
}
