// Power cuts, not only kills: every workload shape that touches the disk differently, recorded through
// CrashRecorder.swift and explored under both models of CrashStates.swift, under each fsync policy.
// Each test prints its tally (states, refusals, writes lost, prefix violations) and fails on any finding.

import Glibc
import Testing

@testable import Store

@Suite(.serialized) struct CrashExplorerTests {
    init() { TestTypes.register() }

    enum Workload: String, CaseIterable, CustomStringConvertible {
        case appends
        case rotation
        case transaction
        case largeValue
        case collections
        case failedSync

        var description: String { self.rawValue }

        func run(_ driver: CrashDriver) throws {
            switch self {
            case .appends:
                for round in 0..<6 {
                    try driver.set("k\(round % 3)", "value \(round)")
                    if round == 3 { try driver.delete("k1") }
                    driver.iterate(sync: round % 2 == 1)
                }
            case .rotation:
                try driver.set("a", "1")
                try driver.set("b", "1")
                driver.iterate(sync: true)
                try driver.delete("a")  // the DEL a power cut must not undo while a later write survives
                try driver.set("counter", "142")
                driver.iterate()
                try driver.set("counter", "143")
                driver.iterate()
                try driver.compact {
                    try driver.set("c", "after the rotation")
                    driver.iterate()
                    try driver.set("b", "2")
                    driver.iterate(sync: true)  // the `everysec` timer, while the compaction runs
                }
                try driver.set("d", "after the compaction")
                driver.iterate(sync: true)
                try driver.compact()
                try driver.set("e", "last")
                driver.iterate()
            case .transaction:
                try driver.set("x", "0")
                driver.iterate(sync: true)
                try driver.transaction {
                    try driver.set("x", "1")
                    try driver.set("y", "1")
                    try driver.delete("z")
                    try driver.set("z", "moved")
                }
                driver.iterate()
                try driver.transaction {
                    try driver.delete("x")
                    try driver.set("y", "2")
                }
                driver.iterate(sync: true)
            case .largeValue:
                try driver.set("small", "before")
                driver.iterate(sync: true)
                // Spans several pages: a power cut can keep any subset of them.
                let large = (0..<(5 * CrashStates.pageBytes + 300)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
                try driver.set("large", large)
                try driver.set("behind", "in the same write as the large value")
                driver.iterate()
                try driver.set("small", "after")
                try driver.set("large", Array(large.reversed()))
                driver.iterate(sync: true)
            case .collections:
                try driver.add(member: "red", toSet: "tags")
                try driver.push("first", toList: "queue")
                driver.iterate(sync: true)
                try driver.add(member: "green", toSet: "tags")
                try driver.push("second", toList: "queue")
                try driver.setWhole("whole", members: ["m1", "m2", "m3", "m4", "m5", "m6"])
                driver.iterate()
                try driver.remove(member: "red", fromSet: "tags")
                driver.iterate(sync: true)
                try driver.compact {
                    try driver.add(member: "blue", toSet: "tags")
                    driver.iterate(sync: true)
                }
                try driver.push("third", toList: "queue")
                driver.iterate()
                try driver.close()
            case .failedSync:
                try driver.set("a", "1")
                driver.iterate(sync: true)
                // The next sync fails with EIO: the kernel may drop the dirty pages it did not write.
                driver.recorder.failSync(after: 1)
                try driver.set("b", "lost to EIO?")
                try driver.set("a", "2")
                driver.iterate(sync: true)
                if driver.policy == .no { driver.sync() }  // under `no`, the sync a compaction asks for
                try driver.set("c", "after the failure")
                driver.iterate(sync: true)
                try driver.set("d", "later")
                driver.iterate(sync: true)
                try driver.close()
            }
        }
    }

    @Test(arguments: Workload.allCases, [FsyncPolicy.always, .everysec, .no])
    func everyCrashStateRecoversWhatWasPromised(workload: Workload, policy: FsyncPolicy) throws {
        try withTemporaryDirectory { directory in
            let data = directory + "/data"
            let scratch = directory + "/crash"
            #expect(mkdir(scratch, 0o755) == 0)
            let driver = try CrashDriver(directory: data, policy: policy)
            try workload.run(driver)
            for model in CrashModel.allCases {
                let tally = CrashExplorer.explore(driver, model: model, draws: 6,
                                                  seed: UInt64(workload.rawValue.utf8.count) &* 1_000_003, scratch: scratch)
                print("crash explorer: \(workload), fsync \(policy.rawValue), \(tally)")
                #expect(tally.states > 0)
                #expect(tally.failures == 0, "\(workload), fsync \(policy.rawValue), \(tally): \(tally.examples)")
            }
        }
    }
}
