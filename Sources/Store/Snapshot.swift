// database.txt, the text snapshot: read at start-up, written by compaction. Format (docs/file-formats.md "database.txt"):
// optional `#` lines, then `key<TAB>value` a line, with `\\` `\n` `\r` `\t` escaped and any other byte below
// 0x20 as `\xHH`; bytes >= 0x80 raw. A key with a deadline has a third field, `<TAB>@<unix ms>`
// (`session:9<TAB>alice<TAB>@1796000000000`). Both directions work on raw bytes in large chunks: no String per line,
// no line-by-line read(2), so a million keys load in a fraction of a second.

import Glibc

/// Reads and writes `database.txt`. Stateless; callable from any thread.
enum Snapshot {
    static let fileName = "database.txt"
    static let temporaryFileName = "database.txt.tmp"
    /// The header line's fixed prefix, followed by the key count and " keys".
    static let headerPrefix: [UInt8] = Array("# reactord snapshot, ".utf8)
    private static let at = UInt8(ascii: "@")

    private static let chunkBytes = 1 << 20
    private static let backslash = UInt8(ascii: "\\")
    private static let tab = UInt8(ascii: "\t")
    private static let newline = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")
    private static let hash = UInt8(ascii: "#")
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    // MARK: - Reading

    /// Loads the snapshot at `path` into `keyspace` (later lines win over earlier ones with the same key),
    /// deadlines included; dropping keys whose deadline passed is the caller's step, after the log replay.
    ///
    /// On read: lines may end in `\n` or `\r\n`, the last one may lack its newline, blank lines and lines
    /// starting with `#` are skipped, a value may contain raw tabs (the first tab ends the key). A line whose
    /// text after its last raw tab is `@` and digits carries a deadline (we always write tabs escaped, so
    /// only a hand-written value ending in a raw tab and `@digits` reads differently).
    /// - Returns: false when the file does not exist.
    /// - Throws: ``StoreError`` naming the path and line for a line without a tab or a bad escape, or
    ///   the errno of a failing open/read.
    ///
    /// With `diskValues` (compaction), a value whose escaped text is at least its threshold is not read
    /// into memory: its key is placed with the value's place in this file (DiskValues.swift), and a
    /// line longer than the read buffer is scanned a buffer-full at a time for its end. Such a value's
    /// escapes are checked when ``write(_:to:path:io:leavingOutExpiredAt:diskValues:stopIf:)`` copies it.
    static func load(
        path: String, io: StoreIO, into keyspace: Keyspace, diskValues: DiskValues? = nil
    ) throws(StoreError) -> Bool {
        let fd: CInt
        do {
            fd = try io.open(path, O_RDONLY, 0)
        } catch {
            if error.code == ENOENT {
                return false
            }
            throw StoreError(operation: "open", path: path, errno: error)
        }
        // With diskValues the file stays open until the compaction has copied its values (DiskValues
        // closes it).
        let file = diskValues?.addSource(path: path, fd: fd, escaped: true)
        defer { if file == nil { io.close(fd) } }

        var capacity = Self.chunkBytes
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var filled = 0
        var bufferOffset = 0  // file offset of buffer[0]
        var lineNumber = 0
        var pace = CPUYield()
        while true {
            if filled == capacity, let file, buffer.load(as: UInt8.self) != Self.hash,
                memchr(buffer, CInt(Self.tab), filled) != nil
            {
                // One line longer than the buffer, its key read: its value stays on disk. (A comment, or
                // a key longer than the buffer, is read whole as below.)
                lineNumber += 1
                let atEnd = try Self.skipLongLine(buffer: buffer, capacity: capacity, filled: &filled,
                                                  bufferOffset: &bufferOffset, fd: fd, path: path, io: io,
                                                  lineNumber: lineNumber, file: file, into: keyspace)
                if atEnd { return true }
                continue
            }
            if filled == capacity {
                // One line longer than the buffer: grow, keeping what was read.
                let bigger = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2, alignment: 16)
                bigger.copyMemory(from: buffer, byteCount: filled)
                buffer.deallocate()
                buffer = bigger
                capacity *= 2
            }
            let count: Int
            do {
                count = try io.read(fd, UnsafeMutableRawBufferPointer(start: buffer + filled, count: capacity - filled))
            } catch {
                throw StoreError(operation: "read", path: path, errno: error)
            }
            filled += count
            let atEnd = count == 0
            var lineStart = 0
            while lineStart < filled, let found = memchr(buffer + lineStart, CInt(Self.newline), filled - lineStart) {
                let lineEnd = buffer.distance(to: found)
                lineNumber += 1
                pace.tick()
                try Self.parseLine(
                    UnsafeMutableRawBufferPointer(start: buffer + lineStart, count: lineEnd - lineStart),
                    number: lineNumber, path: path, into: keyspace, file: file, offset: bufferOffset + lineStart)
                lineStart = lineEnd + 1
            }
            if atEnd {
                if lineStart < filled {
                    lineNumber += 1
                    try Self.parseLine(
                        UnsafeMutableRawBufferPointer(start: buffer + lineStart, count: filled - lineStart),
                        number: lineNumber, path: path, into: keyspace, file: file, offset: bufferOffset + lineStart)
                }
                return true
            }
            // Keep the partial last line at the front for the next read.
            if lineStart > 0 {
                (buffer).copyMemory(from: buffer + lineStart, byteCount: filled - lineStart)
                filled -= lineStart
                bufferOffset += lineStart
            }
        }
    }

    /// Parses one line (without its `\n`), unescaping it in place (unescaping never lengthens, and the
    /// output never overtakes the input: no second copy of a long line). `file`: where to place a value
    /// left on disk (compaction), the line being at `offset` of the file.
    private static func parseLine(
        _ rawLine: UnsafeMutableRawBufferPointer, number: Int, path: String, into keyspace: Keyspace,
        file: DiskValues.File?, offset lineOffset: Int
    ) throws(StoreError) {
        var line = UnsafeRawBufferPointer(rawLine)
        if let last = line.last, last == Self.carriageReturn {
            // Tolerate files edited on Windows: a raw CR before the newline is a line-end artefact (a CR in
            // data is always written escaped).
            line = UnsafeRawBufferPointer(rebasing: line.dropLast())
        }
        guard let first = line.first else {
            return  // blank line
        }
        if first == Self.hash {
            if number == 1, let hint = Self.keyCountHint(line) {
                keyspace.reserveCapacity(keyspace.count + hint)
            }
            return
        }
        guard let tabPointer = memchr(line.baseAddress!, CInt(Self.tab), line.count) else {
            throw StoreError(
                operation: "parse", path: path, detail: "line \(number): no tab between key and value")
        }
        let tabIndex = line.baseAddress!.distance(to: UnsafeRawPointer(tabPointer))
        var valueEnd = line.count
        var deadline: Int64?
        // A deadline field is at most 21 bytes (tab, `@`, 19 digits): look for its tab only that far back.
        let floor = max(tabIndex, line.count - 22)
        var lastTabIndex = line.count - 1
        while lastTabIndex > floor && line[lastTabIndex] != Self.tab { lastTabIndex -= 1 }
        if lastTabIndex > tabIndex && line[lastTabIndex] == Self.tab {
            if let parsed = Self.deadlineField(UnsafeRawBufferPointer(rebasing: line[(lastTabIndex + 1)...])) {
                deadline = parsed
                valueEnd = lastTabIndex
            }
        }
        let output = rawLine.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var ok = false
        if let keyLength = Self.unescape(UnsafeRawBufferPointer(rebasing: line[..<tabIndex]), into: output) {
            if let file, valueEnd - tabIndex - 1 >= file.values.threshold {
                file.place(UnsafeRawBufferPointer(start: output, count: keyLength), offset: lineOffset + tabIndex + 1,
                           length: valueEnd - tabIndex - 1, deadline: deadline, in: keyspace)
                ok = true
            } else if let valueLength = Self.unescape(UnsafeRawBufferPointer(rebasing: line[(tabIndex + 1)..<valueEnd]),
                                                      into: output + keyLength) {
                let key = UnsafeRawBufferPointer(start: output, count: keyLength)
                file?.values.forget(key)
                keyspace.set(key, UnsafeRawBufferPointer(start: output + keyLength, count: valueLength), deadline: deadline)
                ok = true
            }
        }
        guard ok else {
            throw StoreError(
                operation: "parse", path: path,
                detail: "line \(number): bad escape (use \\\\ \\n \\r \\t or \\xHH)")
        }
    }

    /// The line at the front of the full buffer (not a comment, its key's tab in the buffer) is longer
    /// than the buffer: reads on to its newline (or
    /// EOF), keeping only the key and the line's last bytes, and places its value on disk. Leaves what
    /// followed the newline at the front of the buffer. - Returns: true at EOF.
    private static func skipLongLine(
        buffer: UnsafeMutableRawPointer, capacity: Int, filled: inout Int, bufferOffset: inout Int, fd: CInt,
        path: String, io: StoreIO, lineNumber: Int, file: DiskValues.File, into keyspace: Keyspace
    ) throws(StoreError) -> Bool {
        let badEscape = StoreError(operation: "parse", path: path,
                                   detail: "line \(lineNumber): bad escape (use \\\\ \\n \\r \\t or \\xHH)")
        let tabPointer = memchr(buffer, CInt(Self.tab), filled)!  // the caller checked
        let tabIndex = buffer.distance(to: tabPointer)
        var key = [UInt8](repeating: 0, count: max(tabIndex, 1))
        guard let keyLength = key.withUnsafeMutableBufferPointer({ output in
            Self.unescape(UnsafeRawBufferPointer(start: buffer, count: tabIndex), into: output.baseAddress!)
        }) else {
            throw badEscape
        }
        key.removeLast(key.count - keyLength)
        let valueOffset = bufferOffset + tabIndex + 1
        // The line's last bytes: a deadline field and a CR are found there (at most 21 + 1 bytes).
        var tail: [UInt8] = []
        func keepTail(_ bytes: UnsafeRawBufferPointer) {
            tail.append(contentsOf: bytes.suffix(32))
            if tail.count > 32 { tail.removeFirst(tail.count - 32) }
        }
        keepTail(UnsafeRawBufferPointer(start: buffer + tabIndex + 1, count: filled - tabIndex - 1))
        var readOffset = bufferOffset + filled
        var lineEnd: Int
        var atEnd = false
        filled = 0
        while true {
            let count: Int
            do {
                count = try io.read(fd, UnsafeMutableRawBufferPointer(start: buffer, count: capacity))
            } catch {
                throw StoreError(operation: "read", path: path, errno: error)
            }
            if count == 0 {
                lineEnd = readOffset
                atEnd = true
                break
            }
            if let found = memchr(buffer, CInt(Self.newline), count) {
                let index = buffer.distance(to: found)
                keepTail(UnsafeRawBufferPointer(start: buffer, count: index))
                lineEnd = readOffset + index
                buffer.copyMemory(from: buffer + index + 1, byteCount: count - index - 1)
                filled = count - index - 1
                bufferOffset = lineEnd + 1
                break
            }
            keepTail(UnsafeRawBufferPointer(start: buffer, count: count))
            readOffset += count
        }
        var valueEnd = lineEnd
        if tail.last == Self.carriageReturn {
            tail.removeLast()
            valueEnd -= 1
        }
        var deadline: Int64?
        if let lastTab = tail.suffix(22).lastIndex(of: Self.tab),
            let parsed = tail.withUnsafeBytes({ Self.deadlineField(UnsafeRawBufferPointer(rebasing: $0[(lastTab + 1)...])) })
        {
            deadline = parsed
            valueEnd -= tail.count - lastTab
        }
        key.withUnsafeBytes { key in
            file.place(key, offset: valueOffset, length: valueEnd - valueOffset, deadline: deadline, in: keyspace)
        }
        return atEnd
    }

    /// `@` and 1 to 19 decimal digits, at most Int64.max: a deadline field. (Up to 18 digits until a
    /// fuzzer found that a PEXPIREAT past the year 33,658 (19 digits) came back from database.txt as
    /// part of the value.)
    private static func deadlineField(_ field: UnsafeRawBufferPointer) -> Int64? {
        guard field.count >= 2, field.count <= 20, field[0] == Self.at else { return nil }
        var value: Int64 = 0
        for byte in field[1...] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = times10.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = next
        }
        return value
    }

    /// The key count from our own header line, used only to size the dictionary once.
    private static func keyCountHint(_ line: UnsafeRawBufferPointer) -> Int? {
        guard line.count > Self.headerPrefix.count,
            line.starts(with: Self.headerPrefix)
        else {
            return nil
        }
        var count = 0
        for byte in line[Self.headerPrefix.count...] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { break }
            count = count &* 10 &+ Int(byte - UInt8(ascii: "0"))
            if count > 1 << 32 { return nil }
        }
        return count
    }

    /// Undoes the escaping into `output` (room for `bytes.count` bytes: unescaping never lengthens).
    /// `output` may be `bytes` itself or any place before it (each byte is read before its output is
    /// written).
    /// - Returns: the bytes written, or nil for a malformed escape.
    static func unescape(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutablePointer<UInt8>) -> Int? {
        guard let base = bytes.baseAddress, !bytes.isEmpty else {
            return 0
        }
        if memchr(base, CInt(Self.backslash), bytes.count) == nil {
            if UnsafeRawPointer(output) != base {
                memmove(output, base, bytes.count)  // may overlap: in-place unescaping
            }
            return bytes.count
        }
        // Whole escapes only: an escape cut short at the end is malformed here.
        guard let (written, consumed) = Self.unescapePrefix(bytes, into: output), consumed == bytes.count else {
            return nil
        }
        return written
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

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
    static func write(
        _ keyspace: Keyspace, to fd: CInt, path: String, io: StoreIO, leavingOutExpiredAt now: Int64? = nil,
        diskValues: DiskValues? = nil, stopIf cancelled: () -> Bool = { false }
    ) throws(StoreError) {
        if cancelled() { throw StoreError(operation: "compaction", path: path, detail: "cancelled by a stop") }
        var output = OutputBuffer(capacity: Self.chunkBytes + 4096)
        defer { output.deallocate() }
        // The two piece buffers values copied from disk pass through, made at the first such value.
        var pieces: CopyBuffers?
        defer { pieces?.deallocate() }
        func isExpired(_ index: Int) -> Bool {
            guard let now, let deadline = keyspace.deadline(at: index) else { return false }
            return now > deadline  // as everywhere in the store: a key lives through its deadline's millisecond
        }
        let count = now == nil ? keyspace.count : (0..<keyspace.count).count { !isExpired($0) }
        output.append(Array("# reactord snapshot, \(count) keys\n".utf8))
        var pace = CPUYield()
        for index in 0..<keyspace.count where !isExpired(index) {
            pace.tick()
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
    private static func escapeInPieces(
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
