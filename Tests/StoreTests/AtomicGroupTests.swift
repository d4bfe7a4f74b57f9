// An atomic group (one MULTI/EXEC) is one record in the log: replayed whole, or, when the log is
// cut anywhere inside it (a crash mid-append), not at all, with everything before it intact.

import Testing
@testable import Store

@Suite struct AtomicGroupTests {
    @Test func aGroupIsOneFrameThatRoundTrips() {
        let group = Record.group([.set(key: bytes("k"), value: bytes("v1")), .delete(key: bytes("j")),
                                  .setWithDeadline(key: bytes("t"), value: bytes("x"), deadline: 1_796_000_000_000)])
        var encoded: [UInt8] = []
        group.encode(into: &encoded)
        #expect(encoded[8] == Record.kindGroup)
        encoded.withUnsafeBytes { raw in
            #expect(Record.decode(raw) == .record(group, size: encoded.count))
        }
        // The outer checksum covers the members: flipping a member's byte invalidates the group.
        encoded[encoded.count - 1] ^= 1
        encoded.withUnsafeBytes { raw in
            if case .record = Record.decode(raw) { Issue.record("a damaged group decoded") }
        }
    }

    @Test func aLogCutAnywhereInsideAGroupReplaysNoneOfIt() throws {
        try withTemporaryDirectory { source in
            let store = try DurableStore(configuration: .test(source))
            _ = try store.set(bytes("before"), forKey: bytes("a"))
            #expect(store.writeBuffered() == .ok)
            let groupStart = readFile(source + "/database.wal")!.count
            store.beginAtomicGroup()
            _ = try store.set(bytes("1"), forKey: bytes("x"))
            _ = try store.removeValue(forKey: bytes("a"))
            _ = try store.set(bytes("2"), forKey: bytes("y"), deadline: 4_000_000_000_000, now: 1_700_000_000_000)
            store.endAtomicGroup()
            #expect(store.writeBuffered() == .ok)
            let full = readFile(source + "/database.wal")!
            #expect(full[groupStart + 8] == Record.kindGroup, "the three mutations are one frame")

            let whole = try withTemporaryDirectory { directory in
                writeFile(directory + "/database.wal", full)
                let reopened = try reopenStore(configuration: .test(directory))
                return contents(reopened, keys: ["a", "x", "y"])
            }
            #expect(whole == ["a": nil, "x": "1", "y": "2"])
            for cut in groupStart..<full.count {
                let seen = try withTemporaryDirectory { directory in
                    writeFile(directory + "/database.wal", Array(full[..<cut]))
                    let reopened = try reopenStore(configuration: .test(directory))
                    return contents(reopened, keys: ["a", "x", "y"])
                }
                #expect(seen == ["a": "before", "x": nil, "y": nil], "cut at \(cut)")
            }
        }
    }

    @Test func emptyAndSingleRecordGroupsAddNoFrame() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory))
            store.beginAtomicGroup()
            store.endAtomicGroup()
            #expect(store.bufferedBytes == 0)
            store.beginAtomicGroup()
            _ = try store.set(bytes("v"), forKey: bytes("k"))
            store.endAtomicGroup()
            #expect(store.writeBuffered() == .ok)
            let log = readFile(directory + "/database.wal")!
            #expect(log[8] == Record.kindSet)
        }
    }
}
