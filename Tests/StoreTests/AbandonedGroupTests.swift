// An atomic group abandoned instead of ended (DurableStore+AbandonGroup.swift): its mutations undone in
// memory, its records never logged, the sequence numbers handed out again; and function libraries across
// a failed log write (their undo entries, UndoKind.function).

import Glibc
import Testing

@testable import Store

@Suite struct AbandonedGroupTests {
    init() { TestTypes.register() }

    func libraries(_ store: DurableStore) -> [String] {
        store.functionLibraries.map { String(decoding: $0.name, as: UTF8.self) + "=" + String(decoding: $0.code, as: UTF8.self) }
    }

    @Test(arguments: [FsyncPolicy.everysec, .always])
    func anAbandonedGroupLeavesNoTrace(fsync: FsyncPolicy) throws {
        try withTemporaryDirectory { directory in
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: fsync))
                _ = try store.set(bytes("1"), forKey: bytes("a"))
                _ = try store.set(bytes("2"), forKey: bytes("b"))
                _ = try store.setCollection(TestTypes.set([bytes("x")]), forKey: bytes("s"), deadline: nil, now: 1)
                // Buffered, not yet written: the group's abandonment must keep these.
                let sequence = store.lastSequence
                let buffered = store.bufferedBytes
                store.beginAtomicGroup()
                _ = try store.set(bytes("changed"), forKey: bytes("a"))
                _ = try store.removeValue(forKey: bytes("b"))
                _ = try store.set(bytes("3"), forKey: bytes("c"))
                _ = try store.apply(ElementEffect(.add, bytes("y")), to: bytes("s"), type: .set, now: 1)
                store.abandonOpenAtomicGroup()
                store.endAtomicGroup()
                #expect(store.inAtomicGroup == false)
                #expect(store.lastSequence == sequence)
                #expect(store.bufferedBytes == buffered)
                #expect(contents(store, keys: ["a", "b", "c"]) == ["a": "1", "b": "2", "c": nil])
                store.checkInvariants()
                // Later mutations take the numbers the group gave back, and are logged as usual.
                #expect(try store.set(bytes("4"), forKey: bytes("d")) == sequence + 1)
                writeAndSync(store)
            }
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(contents(reopened, keys: ["a", "b", "c", "d"]) == ["a": "1", "b": "2", "c": nil, "d": "4"])
            guard case .found(let members) = bytes("s").withUnsafeBytes({
                reopened.withCollection(forKey: $0, type: .set, now: 1) { Set(($0 as! SetValue).members) }
            }) else {
                Issue.record("the set is gone")
                return
            }
            #expect(members == [bytes("x")])
        }
    }

    /// A group ended normally after another was abandoned is logged whole.
    @Test func theNextGroupIsLoggedAsUsual() throws {
        try withTemporaryDirectory { directory in
            do {
                let store = try DurableStore(configuration: .test(directory))
                store.beginAtomicGroup()
                _ = try store.set(bytes("lost"), forKey: bytes("a"))
                store.abandonOpenAtomicGroup()
                store.endAtomicGroup()
                store.beginAtomicGroup()
                _ = try store.set(bytes("1"), forKey: bytes("a"))
                _ = try store.set(bytes("2"), forKey: bytes("b"))
                store.endAtomicGroup()
                writeAndSync(store)
            }
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(contents(reopened, keys: ["a", "b"]) == ["a": "1", "b": "2"])
        }
    }

    /// FUNCTION LOAD / DELETE lost by a failed write: the store's libraries are rolled back to what the
    /// log holds, in their load order.
    @Test func aFailedWriteRollsBackFunctionLibraries() throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .everysec), io: faults.io)
                try store.setFunctionLibrary(bytes("a"), code: bytes("code a"))
                try store.setFunctionLibrary(bytes("b"), code: bytes("code b"))
                try store.setFunctionLibrary(bytes("c"), code: bytes("code c"))
                #expect(store.writeBuffered() == .ok)
                faults.writeError.withLock { $0 = ENOSPC }
                try store.setFunctionLibrary(bytes("b"), code: bytes("code b, replaced"))
                try store.setFunctionLibrary(bytes("a"), code: nil)
                try store.setFunctionLibrary(bytes("d"), code: bytes("code d"))
                try store.setFunctionLibrary(bytes("d"), code: nil)
                try store.setFunctionLibrary(bytes("e"), code: bytes("code e"))
                _ = try store.set(bytes("1"), forKey: bytes("k"))
                #expect(self.libraries(store) == ["b=code b, replaced", "c=code c", "e=code e"])
                #expect(store.writeBuffered().failedSequences != nil)
                faults.writeError.withLock { $0 = nil }
                #expect(self.libraries(store) == ["a=code a", "b=code b", "c=code c"])
                try store.setFunctionLibrary(bytes("c"), code: nil)
                #expect(store.writeBuffered() == .ok)
            }
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(self.libraries(reopened) == ["a=code a", "b=code b"])
        }
    }
}
