// Fuzz target: recovery of an arbitrary log (DurableStore's open: Sources/Store/WriteAheadLog.swift
// replay, the torn-tail rule, Record decoding). The input becomes `database.wal` (or a rotated
// segment `database.wal.1`, where nothing is forgiven) in a fresh directory. Opening must either
// succeed or throw an error naming the file; never crash. What one recovery accepted (a torn
// tail cut off), a second must accept too, with the same keys.
// Input: [mode: bit 0 = rotated segment, bit 1 = restart with a clean close, bit 2 = a compaction
// first, written from the live table in slices of 1 + (mode >> 3) entries][log bytes...].

import FuzzSupport
@testable import Store

func open(_ directory: String) -> Result<DurableStore, StoreError> {
    Result { () throws(StoreError) in
        try DurableStore(configuration: DurableStore.Configuration(
            directory: directory, fsync: .no, clock: { FuzzClock.milliseconds }))
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecovery(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let mode = input.byte()
    let scratch = ScratchDirectory()
    defer { scratch.remove() }
    let name = mode & 1 == 0 ? "database.wal" : "database.wal.1"
    scratch.write(input.rest, to: name)
    let first: [StoreContext.Entry]
    switch open(scratch.path) {
    case .failure(let error):
        require(error.description.contains(name), "the error does not name \(name): \(error)")
        return 0
    case .success(let store):
        first = StoreContext.contents(of: store)
        if mode & 4 != 0 {
            // A compaction written from the live table a few entries at a time (SnapshotCapture.swift)
            // must write the state recovery found.
            do {
                if let job = try store.beginCompaction() {
                    while store.isWritingSnapshot { store.writeSnapshotSlice(maximumEntries: 1 + Int(mode >> 3)) }
                    let result = job.run()
                    if case .failure(let error) = result { require(false, "the compaction failed: \(error)") }
                    store.finishCompaction(job, result: result)
                }
            } catch {
                require(false, "the compaction could not start: \(error)")
            }
        }
        if mode & 2 != 0 {
            do {
                try store.close()
            } catch {
                require(false, "closing a recovered store failed: \(error)")
            }
        }
    }
    switch open(scratch.path) {
    case .failure(let error):
        require(false, "the second recovery refused what the first accepted: \(error)")
    case .success(let store):
        let second = StoreContext.contents(of: store)
        require(first == second, "the second recovery found \(second.count) keys, the first \(first.count)")
    }
    return 0
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzRecovery) }
}
