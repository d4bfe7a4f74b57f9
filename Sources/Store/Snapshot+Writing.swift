// Writing database.txt (Snapshot.swift has the format and the reader; Snapshot+Typed.swift the lines of
// collections).

import Glibc

extension Snapshot {
    // MARK: - Writing

    /// Writes `keyspace` as a snapshot to the open descriptor `fd` (header line first), in 1 MiB writes,
    /// every entry with its deadline if it has one. Keys whose deadline is before `now` are left out
    /// (nil: the caller dropped expired keys first). Large values are escaped a piece at a time,
    /// so the buffer stays at 1 MiB whatever their size. Does not fsync: the caller does, as its own
    /// compaction step. Order of lines is the keyspace's entry order.
    /// - Throws: ``StoreError`` naming `path` when a write fails.
    /// `diskValues`: an entry with an empty value whose key has a place there gets the bytes from that
    /// place, copied a piece at a time (escaped on the way from a log segment; from a snapshot,
    /// unescaped and escaped again, so raw tabs and CRs a hand-edited file may hold come out escaped).
    /// `root` is database 0's keyspace: its keys come first, unmarked (a server that only used database 0
    /// writes the seed's format); each other database with keys follows its `#!db<TAB>n` line.
    static func write(
        _ root: Keyspace, to fd: CInt, path: String, io: StoreIO, leavingOutExpiredAt now: Int64? = nil,
        diskValues: DiskValues? = nil, coveringSegments: Int? = nil, stopIf cancelled: () -> Bool = { false }
    ) throws(StoreError) {
        if cancelled() { throw StoreError(operation: "compaction", path: path, detail: "cancelled by a stop") }
        var output = OutputBuffer(capacity: Self.chunkBytes + 4096)
        defer { output.deallocate() }
        // The two piece buffers values copied from disk pass through, made at the first such value.
        var pieces: CopyBuffers?
        defer { pieces?.deallocate() }
        func isExpired(_ index: Int, in keyspace: Keyspace) -> Bool {
            guard let now, let deadline = keyspace.deadline(at: index) else { return false }
            return now > deadline  // as everywhere in the store: a key lives through its deadline's millisecond
        }
        let databases = root.allDatabases.filter { $0.index == 0 || $0.keyspace.count > 0 }
        let count = databases.reduce(0) { total, database in
            total + (now == nil ? database.keyspace.count
                : (0..<database.keyspace.count).count { !isExpired($0, in: database.keyspace) })
        }
        output.append(Array("# reactord snapshot, \(count) keys\n".utf8))
        if let coveringSegments {
            output.append(Array("#!segments\t\(coveringSegments)\n".utf8))  // Snapshot+Typed.swift
        }
        for library in root.functionLibraries {  // FunctionLibraries.swift
            output.append(Array("#!function\t".utf8))
            for (index, bytes) in [library.name, library.code].enumerated() {
                if index == 1 { output.append(Array("\n\t".utf8)) }
                let written = bytes.withUnsafeBytes { bytes in
                    Result { () throws(StoreError) in
                        try Self.escapeInPieces(bytes, escapeLeadingHash: false, into: &output, fd: fd, path: path, io: io,
                                                stopIf: cancelled)
                    }
                }
                try written.get()
            }
            output.append(Array("\n#!end\n".utf8))
        }
        var pace = CPUYield()
        for (database, keyspace) in databases {
            if database != 0 {
                output.append(Array("#!db\t\(database)\n".utf8))
            }
            diskValues?.select(database)  // values left on disk are per database (DiskValues.swift)
            for index in 0..<keyspace.count where !isExpired(index, in: keyspace) {
                pace.tick()
                if keyspace.type(at: index) != .string {
                    try Self.writeBlock(keyspace, at: index, into: &output, fd: fd, path: path, io: io, stopIf: cancelled)
                    continue
                }
                try Self.escapeInPieces(keyspace.key(at: index), escapeLeadingHash: true, into: &output, fd: fd, path: path,
                                        io: io, stopIf: cancelled)
                output.append(byte: Self.tab)
                let value = keyspace.value(at: index)
                if value.isEmpty, let diskValues, let place = diskValues.place(of: keyspace.key(at: index)) {
                    if pieces == nil { pieces = CopyBuffers() }
                    try Self.copy(place, from: diskValues.sources[place.source], through: pieces!, into: &output, fd: fd,
                                  path: path, io: io, stopIf: cancelled)
                } else {
                    try Self.escapeInPieces(value, escapeLeadingHash: false, into: &output, fd: fd, path: path,
                                            io: io, stopIf: cancelled)
                }
                if let deadline = keyspace.deadline(at: index) {
                    output.append(byte: Self.tab)
                    output.append(byte: Self.at)
                    output.append(Array(String(deadline).utf8))
                }
                output.append(byte: Self.newline)
            }
        }
        diskValues?.select(0)
        try output.flush(to: fd, path: path, io: io)
    }

    /// Appends the value at `place` in `source`: read a quarter of the output chunk at a time, then
    /// escaped (a log segment's raw bytes) or unescaped and escaped again (a snapshot's text; an
    /// escape cut by a piece's end waits, at most 3 bytes, for the next piece).
    private static func copy(
        _ place: DiskValues.Place, from source: DiskValues.Source, through buffers: CopyBuffers,
        into output: inout OutputBuffer, fd: CInt, path: String, io: StoreIO, stopIf cancelled: () -> Bool
    ) throws(StoreError) {
        let piece = CopyBuffers.piece
        let (scratch, raw) = (buffers.read, buffers.unescaped)
        var carried = 0  // bytes of an escape cut by the last piece's end, at the front of `scratch`
        var offset = 0
        while offset < place.length {
            let length = min(piece, place.length - offset)
            var got = 0
            while got < length {
                let count: Int
                do {
                    count = try io.pread(
                        source.fd, UnsafeMutableRawBufferPointer(rebasing: scratch[(carried + got)..<(carried + length)]),
                        place.offset + offset + got)
                } catch {
                    throw StoreError(operation: "read", path: source.path, errno: error)
                }
                guard count > 0 else {
                    throw StoreError(operation: "read", path: source.path, errno: Errno(EIO),
                                     detail: "ended at byte \(place.offset + offset + got), inside a value")
                }
                got += count
            }
            offset += length
            var bytes = UnsafeRawBufferPointer(rebasing: scratch[..<(carried + length)])
            if source.escaped {
                guard let (written, consumed) = Self.unescapePrefix(bytes, into: raw) else {
                    throw StoreError(operation: "parse", path: source.path,
                                     detail: "bad escape in the value at byte \(place.offset) (use \\\\ \\n \\r \\t or \\xHH)")
                }
                carried = bytes.count - consumed
                if carried > 0 {
                    scratch.baseAddress!.copyMemory(from: bytes.baseAddress! + consumed, byteCount: carried)
                }
                bytes = UnsafeRawBufferPointer(start: raw, count: written)
            }
            try Self.escapeInPieces(bytes, escapeLeadingHash: false, into: &output, fd: fd, path: path, io: io,
                                    stopIf: cancelled)
        }
        guard carried == 0 else {
            throw StoreError(operation: "parse", path: source.path,
                             detail: "bad escape at the end of the value at byte \(place.offset)")
        }
    }

    /// What ``copy(_:from:through:into:fd:path:io:stopIf:)`` reads a piece into (with room for an
    /// escape carried over from the previous piece) and unescapes it into.
    struct CopyBuffers {
        static let piece = Snapshot.chunkBytes / 4
        let read = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.piece + 4, alignment: 16)
        let unescaped = UnsafeMutablePointer<UInt8>.allocate(capacity: Self.piece + 4)

        func deallocate() {
            self.read.deallocate()
            self.unescaped.deallocate()
        }
    }

    /// Unescapes the longest prefix of `bytes` made of whole escapes into `output` (room for
    /// `bytes.count`; it may be `bytes` itself, as for ``unescape(_:into:)``). - Returns: bytes written
    /// and bytes consumed (the rest, at most 3 bytes, begins an escape cut short), or nil for a
    /// malformed escape.
    static func unescapePrefix(
        _ bytes: UnsafeRawBufferPointer, into output: UnsafeMutablePointer<UInt8>
    ) -> (written: Int, consumed: Int)? {
        var read = 0
        var written = 0
        while read < bytes.count {
            let byte = bytes[read]
            guard byte == Self.backslash else {
                output[written] = byte
                written += 1
                read += 1
                continue
            }
            guard read + 1 < bytes.count else { break }
            switch bytes[read + 1] {
            case Self.backslash: output[written] = Self.backslash
            case UInt8(ascii: "n"): output[written] = Self.newline
            case UInt8(ascii: "r"): output[written] = Self.carriageReturn
            case UInt8(ascii: "t"): output[written] = Self.tab
            case UInt8(ascii: "x"):
                guard read + 4 <= bytes.count else { return (written, read) }
                guard let high = Self.hexValue(bytes[read + 2]), let low = Self.hexValue(bytes[read + 3]) else {
                    return nil
                }
                output[written] = high << 4 | low
                written += 1
                read += 4
                continue
            default:
                return nil
            }
            written += 1
            read += 2
        }
        return (written, read)
    }

    /// Escapes `bytes` into `output` at most a quarter of its chunk at a time (the worst case is four
    /// output bytes per input byte), writing the buffer out whenever the next piece might not fit. What
    /// follows a piece (a tab, a deadline field, a newline: under 32 bytes) fits in the 4 KiB spare.
    /// Before each write, `cancelled` may stop the whole snapshot.
    static func escapeInPieces(
        _ bytes: UnsafeRawBufferPointer, escapeLeadingHash: Bool, into output: inout OutputBuffer,
        fd: CInt, path: String, io: StoreIO, stopIf cancelled: () -> Bool
    ) throws(StoreError) {
        let piece = Self.chunkBytes / 4
        var offset = 0
        repeat {
            let length = min(piece, bytes.count - offset)
            if output.count + 4 * length + 64 > output.capacity {
                if cancelled() { throw StoreError(operation: "compaction", path: path, detail: "cancelled by a stop") }
                try output.flush(to: fd, path: path, io: io)
            }
            Self.escape(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]),
                        escapeLeadingHash: escapeLeadingHash && offset == 0, into: &output)
            offset += length
        } while offset < bytes.count
    }

    /// Convenience over an array.
    static func escape(_ bytes: [UInt8], escapeLeadingHash: Bool, into output: inout OutputBuffer) {
        bytes.withUnsafeBytes { Self.escape($0, escapeLeadingHash: escapeLeadingHash, into: &output) }
    }

    /// Appends `bytes` escaped. A key starting with `#` is written with `\x23` so it is not read back as
    /// a comment line. - Precondition: `output` has room for 4 bytes per input byte.
    static func escape(_ raw: UnsafeRawBufferPointer, escapeLeadingHash: Bool, into output: inout OutputBuffer) {
        raw.withMemoryRebound(to: UInt8.self) { source in
            Self.hexDigits.withUnsafeBufferPointer { hex in
                var out = output.pointer + output.count
                for (index, byte) in source.enumerated() {
                    if byte >= 0x20 && byte != Self.backslash && !(index == 0 && byte == Self.hash && escapeLeadingHash) {
                        out.pointee = byte
                        out += 1
                        continue
                    }
                    out.pointee = Self.backslash
                    switch byte {
                    case Self.backslash: out[1] = Self.backslash
                    case Self.newline: out[1] = UInt8(ascii: "n")
                    case Self.carriageReturn: out[1] = UInt8(ascii: "r")
                    case Self.tab: out[1] = UInt8(ascii: "t")
                    default:
                        out[1] = UInt8(ascii: "x")
                        out[2] = hex[Int(byte >> 4)]
                        out[3] = hex[Int(byte & 0x0F)]
                        out += 2
                    }
                    out += 2
                }
                output.count = (output.pointer).distance(to: out)
            }
        }
    }

    /// A growable byte buffer written with raw pointers, so escaping costs no bounds or uniqueness checks.
    /// Invariant: `0 <= count <= capacity`.
    struct OutputBuffer {
        private(set) var pointer: UnsafeMutablePointer<UInt8>
        private(set) var capacity: Int
        var count = 0 {
            didSet { assert(self.count >= 0 && self.count <= self.capacity) }
        }
        /// The file's writeback is started as it grows (PageCache.swift), so its fsync has little left.
        private var writeBehind = PageCache.WriteBehind()
        /// Where ``flush(to:path:io:)`` hands the bytes instead of writing them, when set: the compaction's
        /// writer thread (SnapshotCapture.swift), which frees each chunk once written.
        var sink: SnapshotFeed?
        /// Flushes so far.
        private(set) var flushes = 0

        init(capacity: Int) {
            self.pointer = .allocate(capacity: capacity)
            self.capacity = capacity
        }

        func deallocate() {
            self.pointer.deallocate()
        }

        /// Makes room for `extra` more bytes.
        mutating func reserve(_ extra: Int) {
            guard self.count + extra > self.capacity else { return }
            let newCapacity = max(self.capacity * 2, self.count + extra)
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
            bigger.initialize(from: self.pointer, count: self.count)
            self.pointer.deallocate()
            self.pointer = bigger
            self.capacity = newCapacity
        }

        mutating func append(byte: UInt8) {
            self.pointer[self.count] = byte
            self.count += 1
        }

        mutating func append(_ bytes: UnsafeRawBufferPointer) {
            self.reserve(bytes.count)
            if let base = bytes.baseAddress {
                UnsafeMutableRawPointer(self.pointer + self.count).copyMemory(from: base, byteCount: bytes.count)
            }
            self.count += bytes.count
        }

        mutating func append(_ bytes: [UInt8]) {
            self.reserve(bytes.count)
            bytes.withUnsafeBufferPointer { source in
                (self.pointer + self.count).initialize(from: source.baseAddress!, count: source.count)
            }
            self.count += bytes.count
        }

        /// Writes everything buffered, looping on short writes, and empties the buffer.
        mutating func flush(to fd: CInt, path: String, io: StoreIO) throws(StoreError) {
            self.flushes += 1
            if let sink = self.sink {
                guard self.count > 0 else { return }
                sink.push(SnapshotFeed.Chunk(pointer: self.pointer, count: self.count))
                self.pointer = .allocate(capacity: self.capacity)
                self.count = 0
                return
            }
            var offset = 0
            while offset < self.count {
                let written: Int
                do {
                    written = try io.write(fd, UnsafeRawBufferPointer(start: self.pointer + offset, count: self.count - offset))
                } catch {
                    throw StoreError(operation: "write", path: path, errno: error)
                }
                if written == 0 {
                    throw StoreError(operation: "write", path: path, errno: Errno(EIO), detail: "write returned 0")
                }
                offset += written
            }
            self.writeBehind.wrote(self.count, to: fd, io: io)
            self.count = 0
        }
    }
}
