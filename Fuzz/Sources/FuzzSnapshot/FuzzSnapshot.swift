// Fuzz target: the database.txt parser (Sources/Store/Snapshot.swift). The input becomes
// `database.txt` in a fresh directory; opening the store must either succeed or throw an error
// naming the file, never crash. What it loaded must survive a compaction (which rewrites
// database.txt from the live table, once a few entries per slice and once at a clean stop) and a
// second load unchanged; and the escaping of the
// input as one value must undo exactly.
// Input: the bytes of database.txt.

import FuzzSupport
@testable import Store

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSnapshot(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)

    // Escaping round trip, as a key (a leading '#' escaped) and as a value.
    for asKey in [true, false] {
        var output = Snapshot.OutputBuffer(capacity: 4 * size + 1)
        defer { output.deallocate() }
        Snapshot.escape(bytes, escapeLeadingHash: asKey, into: &output)
        let escaped = UnsafeRawBufferPointer(start: output.pointer, count: output.count)
        require(!escaped.contains(UInt8(ascii: "\n")) && !escaped.contains(UInt8(ascii: "\t"))
                && !escaped.contains(UInt8(ascii: "\r")), "escaped text holds a line break or tab")
        if asKey { require(escaped.first != UInt8(ascii: "#"), "an escaped key begins with #") }
        let unescaped = UnsafeMutablePointer<UInt8>.allocate(capacity: max(output.count, 1))
        defer { unescaped.deallocate() }
        let count = Snapshot.unescape(escaped, into: unescaped)
        require(count.map { UnsafeBufferPointer(start: unescaped, count: $0).elementsEqual(bytes) } ?? false,
                "escaping then unescaping changed \(printable(bytes))")
    }

    let scratch = ScratchDirectory()
    defer { scratch.remove() }
    scratch.write(bytes, to: "database.txt")
    let configuration = DurableStore.Configuration(directory: scratch.path, fsync: .no, clock: { FuzzClock.milliseconds })
    let loaded: [StoreContext.Entry]
    do {
        let store = try DurableStore(configuration: configuration)
        loaded = StoreContext.contents(of: store)
    } catch {
        require(error.description.contains("database.txt"), "the error does not name database.txt: \(error)")
        return 0
    }
    // A compaction written a few entries per slice (SnapshotCapture.swift) must write what the loaded
    // state is; then a clean stop rewrites it all at once.
    do {
        do {
            let store = try DurableStore(configuration: configuration)
            if let job = try store.beginCompaction() {
                while store.isWritingSnapshot { store.writeSnapshotSlice(maximumEntries: 1 + size % 7) }
                let result = job.run()
                if case .failure(let error) = result { require(false, "the compaction failed: \(error)") }
                store.finishCompaction(job, result: result)
            }
        }
        let again = try DurableStore(configuration: configuration)  // the first one "crashed"
        let compacted = StoreContext.contents(of: again)
        require(loaded == compacted, "\(loaded.count) keys loaded, \(compacted.count) after a compaction")
        try again.close()  // compacts: database.txt rewritten again
    } catch {
        require(false, "after a compaction: \(error)")
    }
    do {
        let store = try DurableStore(configuration: configuration)
        let reloaded = StoreContext.contents(of: store)
        require(loaded == reloaded, "\(loaded.count) keys loaded, \(reloaded.count) after rewriting database.txt")
    } catch {
        require(false, "the snapshot the store wrote does not load: \(error)")
    }
    return 0
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzSnapshot) }
}
