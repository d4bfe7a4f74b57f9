// Fuzz target: a log of valid records round trips. The input is a program of mutations (set,
// delete, clear, set with a deadline, expire, persist, and groups of them) over a few keys; it
// is encoded with the log's own encoder (Sources/Store/Record.swift), optionally cut short as a
// crash mid-append would, and recovered by DurableStore. The recovered keys, values and
// deadlines must equal a plain model of the records wholly written.
// Input: [flags: bit 0 = cut the log][cut position, 2 bytes][program...].

import FuzzSupport
@testable import Store

/// The plain model: a dictionary and its deadlines.
struct Model {
    var entries: [[UInt8]: (value: [UInt8], deadline: Int64?)] = [:]

    mutating func apply(_ record: Record) {
        switch record {
        case .set(let key, let value): self.entries[key] = (value, nil)
        case .setWithDeadline(let key, let value, let deadline): self.entries[key] = (value, deadline)
        case .delete(let key): self.entries[key] = nil
        case .clear: self.entries = [:]
        case .expire(let key, let deadline): self.entries[key]?.deadline = deadline
        case .persist(let key): self.entries[key]?.deadline = nil
        case .group(let records): for member in records { self.apply(member) }
        case .rename(let key, let destination):
            if let entry = self.entries[key], key != destination {
                self.entries[destination] = entry
                self.entries[key] = nil
            }
        case .copy(let key, let destination): if let entry = self.entries[key] { self.entries[destination] = entry }
        case .value, .element, .database, .function, .swapDatabases:
            preconditionFailure("the program makes no collection, database or function records")
        }
    }

    /// The live entries at the fuzz clock, as ``StoreContext/contents(of:)`` lists them.
    var live: [StoreContext.Entry] {
        self.entries.filter { $0.value.deadline.map { $0 >= FuzzClock.milliseconds } ?? true }
            .map { StoreContext.Entry(key: $0.key, value: $0.value.value,
                                      expiry: $0.value.deadline.map { .at(milliseconds: $0) } ?? .never) }
            .sorted { $0.key.lexicographicallyPrecedes($1.key) }
    }
}

struct Program {
    var input: FuzzInput

    mutating func key() -> [UInt8] {
        let b = self.input.byte()
        return b & 0x80 == 0 ? [UInt8(ascii: "a") + b % 4] : [UInt8(ascii: "a") + b % 4, b]
    }

    mutating func value() -> [UInt8] {
        let count = Int(self.input.byte() % 24)
        return (0..<count).map { _ in self.input.byte() }
    }

    /// A deadline a little before or after the fuzz clock (some keys expire, some do not).
    mutating func deadline() -> Int64 {
        FuzzClock.milliseconds + Int64(self.input.uint16()) - 32768
    }

    mutating func record(allowGroup: Bool) -> Record {
        switch self.input.byte() % (allowGroup ? 8 : 7) {
        case 0, 1: .set(key: self.key(), value: self.value())
        case 2: .delete(key: self.key())
        case 3: .clear
        case 4: .setWithDeadline(key: self.key(), value: self.value(), deadline: self.deadline())
        case 5: .expire(key: self.key(), deadline: self.deadline())
        case 6: .persist(key: self.key())
        default: .group((0..<(1 + Int(self.input.byte() % 4))).map { _ in self.record(allowGroup: false) })
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLogRoundTrip(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var program = Program(input: FuzzInput(data, size))
    let cut = program.input.byte() & 1 == 1
    let cutPosition = program.input.uint16()
    var log: [UInt8] = []
    var ends: [Int] = []  // where each record's frame ends
    var records: [Record] = []
    while !program.input.rest.isEmpty {
        let record = program.record(allowGroup: true)
        record.encode(into: &log)
        records.append(record)
        ends.append(log.count)
    }
    let length = cut && !log.isEmpty ? cutPosition % (log.count + 1) : log.count
    var model = Model()
    for (record, end) in zip(records, ends) where end <= length { model.apply(record) }

    let scratch = ScratchDirectory()
    defer { scratch.remove() }
    log.withUnsafeBytes { scratch.write(UnsafeRawBufferPointer(rebasing: $0[..<length]), to: "database.wal") }
    let store: DurableStore
    do {
        store = try DurableStore(configuration: DurableStore.Configuration(
            directory: scratch.path, fsync: .no, clock: { FuzzClock.milliseconds }))
    } catch {
        require(false, "recovery refused a valid log cut at \(length) of \(log.count) bytes: \(error)")
        return 0
    }
    let recovered = StoreContext.contents(of: store)
    let expected = model.live
    require(recovered == expected, "recovered \(recovered.count) keys, the model has \(expected.count) "
            + "(log of \(records.count) records cut at \(length) of \(log.count) bytes)")
    if let size = scratch.read("database.wal")?.count {
        let wholeRecords = ends.last(where: { $0 <= length }) ?? 0
        require(size == wholeRecords, "the log is \(size) bytes after recovery, its whole records \(wholeRecords)")
    }
    return 0
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzLogRoundTrip) }
}
