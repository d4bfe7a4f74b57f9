// Real applications' libraries, at their default settings, against reactord: the oracle for
// compatibility is the library itself. Each app in Apps/ (Python; .ci/run installs the packages)
// does what the library is used for — a job queue runs a job, a lock blocks a waiter until it is
// released, a rate limiter refuses the hit past its limit — and prints one `OK` line; anything
// else is a failure, with the library's traceback in the message. Every app also passes against
// redis-server 7.0 (run `python3 Tests/CompatibilityTests/Apps/<app>.py <port>` against one).

import Foundation
import Testing

@Suite struct LibraryCompatibilityTests {
    /// The apps, by file name, and the Python module each needs.
    static let apps: [(file: String, module: String)] = [
        ("rq_app.py", "rq"),
        ("huey_app.py", "huey"),
        ("redis_lock_app.py", "redis_lock"),
        ("limits_app.py", "limits"),
        ("dramatiq_app.py", "dramatiq"),
        ("kombu_app.py", "kombu"),
        ("walrus_app.py", "walrus"),
        ("requests_cache_app.py", "requests_cache"),
        ("channels_redis_app.py", "channels_redis"),
        ("celery_app.py", "celery"),
    ]

    static var appsDirectory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Apps").path
    }

    /// Apps that need what the contract leaves out, and why: they are run, and their failure is
    /// recorded as known (a pass would be reported, so the list stays true).
    static let knownFailures: [String: Comment] = [
        "rq_app.py": "rq 2 keeps each job's results in a stream (XADD), and streams are not in the contract",
    ]

    @Test("a library's app runs unchanged against reactord", arguments: Self.apps.map(\.file))
    func appRuns(file: String) throws {
        if let reason = Self.knownFailures[file] {
            withKnownIssue(reason) { try self.run(file) }
        } else {
            try self.run(file)
        }
    }

    private func run(_ file: String) throws {
        let module = Self.apps.first { $0.file == file }!.module
        try withKVServer(fsync: "everysec") { server, _ in
            let result = try runTool("python3", [Self.appsDirectory + "/" + file, "\(server.kvPort)"], within: 120)
            if result.stderr.contains("No module named '\(module)'") {
                Issue.record("the python package for \(module) is missing: .ci/run installs it")
                return
            }
            #expect(result.status == 0 && result.text.contains("OK "),
                    "\(file) exited \(result.status)\nstdout: \(result.text)\nstderr: \(result.stderr.suffix(3000))")
        }
    }
}
