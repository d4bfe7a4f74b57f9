// The data directory's lock ends with its store, however the store ends: closed, closed with a
// failure, or dropped without a close. The lock belongs to the open file description, which a child
// process another test (or the server) is spawning shares from its fork until its exec; a store that
// only closed its descriptor left the lock to that copy, and the next store found the directory
// "open by another store".

import Glibc
import Synchronization
import Testing

@testable import Store

@Suite struct DirectoryLockTests {
    /// How the first store ends.
    enum Ending: String, CaseIterable, CustomStringConvertible {
        case closed, logSyncFailed, compactionFailed, droppedWithoutClose
        var description: String { self.rawValue }
    }

    @Test(arguments: Ending.allCases)
    func theNextStoreOpensTheDirectoryWhileAChildHoldsACopyOfTheDescriptor(ending: Ending) throws {
        try withTemporaryDirectory { directory in
            let faults = Faults()
            let copies = Mutex<[CInt]>([])
            defer { for fd in copies.withLock({ $0 }) { Glibc.close(fd) } }
            var io = faults.io
            let system = StoreIO.system
            // Every descriptor of the directory gets a second reference, as a fork in flight gives it.
            io.open = { (path: String, flags: CInt, mode: mode_t) throws(Errno) -> CInt in
                let fd = try system.open(path, flags, mode)
                if flags & O_DIRECTORY != 0 { copies.withLock { $0.append(dup(fd)) } }
                return fd
            }
            do {
                let store = try DurableStore(configuration: .test(directory, fsync: .everysec), io: io)
                _ = try store.set(bytes("v"), forKey: bytes("k"))
                switch ending {
                case .closed:
                    try store.close()
                case .logSyncFailed:
                    faults.fdatasyncError.withLock { $0 = EIO }
                    #expect(throws: StoreError.self) { try store.close(compacting: .never) }
                case .compactionFailed:
                    faults.crashAt.withLock { $0 = .wroteTemporary }
                    #expect(throws: StoreError.self) { try store.close(compacting: .always) }
                case .droppedWithoutClose:
                    break
                }
            }
            #expect(!copies.withLock { $0 }.isEmpty, "the directory's descriptor was copied")
            // No retry: the lock must be free now, with the copies still open.
            let next = try DurableStore(configuration: .test(directory))
            // (A log whose sync failed may have been cut back to its last synced record; a store dropped
            // without a close never wrote its buffered record, as in a crash.)
            if ending == .closed || ending == .compactionFailed {
                #expect(next.value(forKey: bytes("k")) == bytes("v"), "after the store \(ending)")
            }
            try next.close()
        }
    }
}
