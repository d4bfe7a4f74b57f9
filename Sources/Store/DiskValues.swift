// Values a compaction leaves where they already are on disk. Compaction rebuilds the state from
// `database.txt` and the rotated log segments in a keyspace of its own; a 512 MiB value rebuilt there
// would cost the process 512 MiB more (and its frame buffer as much again) while the live keyspace
// and a client's GET reply already hold it. So a value of at least `threshold` bytes is not read into
// memory: its key goes into the compaction's keyspace with an empty value and its deadline, and its
// bytes are remembered as a place in a file, copied from there into the new snapshot a piece at a
// time. Log records only ever replace a value whole (see Record.swift), so a later set, delete or
// clear of the key simply forgets the place; expire and persist change the deadline the keyspace
// holds. Compaction thread only.

import Glibc

final class DiskValues {
    /// A file the places point into, open for the whole compaction.
    struct Source {
        let path: String
        let fd: CInt
        /// true for `database.txt` (the bytes are escaped text: unescaped and escaped again on the way
        /// out, since a hand-edited file may hold raw tabs or CRs our writer escapes), false for a log
        /// segment (raw bytes, escaped on the way out).
        let escaped: Bool
    }

    /// Where one value's bytes are.
    struct Place: Equatable {
        let source: Int
        let offset: Int
        let length: Int
    }

    /// Values from this many bytes (raw in a segment, escaped in `database.txt`) stay on disk.
    let threshold: Int
    private(set) var sources: [Source] = []
    /// The places of the database records are being applied to (``database``); those of other
    /// databases wait in ``parked`` (a database record selects its own; SWAPDB exchanges them).
    private var places: [[UInt8]: Place] = [:]
    private var parked: [Int: [[UInt8]: Place]] = [:]
    private(set) var database = 0

    init(threshold: Int) {
        precondition(threshold > 0)
        self.threshold = threshold
    }

    var isEmpty: Bool { self.places.isEmpty && self.parked.isEmpty }
    var count: Int { self.parked.values.reduce(self.places.count) { $0 + $1.count } }

    /// Makes `database` the one whose places ``forget(_:)``, ``place(of:)`` and new places refer to.
    func select(_ database: Int) {
        guard database != self.database else { return }
        if !self.places.isEmpty { self.parked[self.database] = self.places }
        self.places = self.parked.removeValue(forKey: database) ?? [:]
        self.database = database
    }

    /// SWAPDB replayed: databases `first` and `second` exchange their places with their keys.
    func exchange(_ first: Int, _ second: Int) {
        let selected = self.database
        self.select(-1)  // park the selected database's places too
        let (a, b) = (self.parked.removeValue(forKey: first), self.parked.removeValue(forKey: second))
        if let a { self.parked[second] = a }
        if let b { self.parked[first] = b }
        self.select(selected)
    }

    /// One registered file, for the reader of that file to place values in.
    struct File {
        let values: DiskValues
        let source: Int

        /// Puts `key` in `keyspace` with an empty value and `deadline`, its bytes the `length` bytes
        /// at `offset` of this file.
        func place(_ key: UnsafeRawBufferPointer, offset: Int, length: Int, deadline: Int64?, in keyspace: Keyspace) {
            keyspace.set(key, UnsafeRawBufferPointer(start: nil, count: 0), deadline: deadline)
            self.values.places[Array(key)] = Place(source: self.source, offset: offset, length: length)
        }
    }

    /// Registers an open file, closed by ``close(io:)``.
    func addSource(path: String, fd: CInt, escaped: Bool) -> File {
        self.sources.append(Source(path: path, fd: fd, escaped: escaped))
        return File(values: self, source: self.sources.count - 1)
    }

    /// The key's value was replaced or the key deleted by a later record.
    func forget(_ key: UnsafeRawBufferPointer) {
        if !self.places.isEmpty {
            self.places.removeValue(forKey: Array(key))
        }
    }

    func forgetAll() {
        self.places.removeAll()
    }

    /// Where the value of `key` is, when the keyspace's (empty) value stands for one on disk.
    func place(of key: UnsafeRawBufferPointer) -> Place? {
        self.places.isEmpty ? nil : self.places[Array(key)]
    }

    /// Closes every source.
    func close(io: StoreIO) {
        for source in self.sources {
            io.close(source.fd)
        }
        self.sources.removeAll()
    }
}
