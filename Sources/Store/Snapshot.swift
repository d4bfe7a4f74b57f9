// database.txt, the text snapshot: read at start-up, written by compaction. Format (docs/file-formats.md "database.txt"):
// optional `#` lines, then `key<TAB>value` a line, with `\\` `\n` `\r` `\t` escaped and any other byte below
// 0x20 as `\xHH`; bytes >= 0x80 raw. A key with a deadline has a third field, `<TAB>@<unix ms>`
// (`session:9<TAB>alice<TAB>@1796000000000`). A collection is a block: `#!<type><TAB>key[<TAB>@<unix ms>]`, one
// line per element (a tab, then its fields, tab-separated), `#!end` (Snapshot+Typed.swift). Both directions work
// on raw bytes in large chunks: no String per line, no line-by-line read(2), so a million keys load in a
// fraction of a second.

import Glibc

/// Reads and writes `database.txt`. Stateless; callable from any thread.
enum Snapshot {
    static let fileName = "database.txt"
    static let temporaryFileName = "database.txt.tmp"
    /// The header line's fixed prefix, followed by the key count and " keys".
    static let headerPrefix: [UInt8] = Array("# reactord snapshot, ".utf8)
    static let at = UInt8(ascii: "@")

    static let chunkBytes = 1 << 20
    static let backslash = UInt8(ascii: "\\")
    static let tab = UInt8(ascii: "\t")
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
    static let hash = UInt8(ascii: "#")
    static let bang = UInt8(ascii: "!")
    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

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
        var covered = 0
        return try Self.load(path: path, io: io, into: keyspace, diskValues: diskValues, coveredSegments: &covered)
    }

    /// ``load(path:io:into:diskValues:)``, also giving the file's `#!segments` number (0 without one):
    /// the rotated log segments it already holds (Snapshot+Typed.swift).
    static func load(
        path: String, io: StoreIO, into keyspace: Keyspace, diskValues: DiskValues?, coveredSegments: inout Int
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
        var block = TypedBlock()
        while true {
            if filled == capacity, let file, block.isClosed, block.database == 0, buffer.load(as: UInt8.self) != Self.hash,
                memchr(buffer, CInt(Self.tab), filled) != nil
            {
                // One line longer than the buffer, its key read: its value stays on disk. (A comment, or
                // a key longer than the buffer, is read whole as below.)
                lineNumber += 1
                let atEnd = try Self.skipLongLine(buffer: buffer, capacity: capacity, filled: &filled,
                                                  bufferOffset: &bufferOffset, fd: fd, path: path, io: io,
                                                  lineNumber: lineNumber, file: file, into: keyspace)
                if atEnd {
                    coveredSegments = block.coveredSegments
                    return true
                }
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
                    number: lineNumber, path: path, into: keyspace, file: file, offset: bufferOffset + lineStart,
                    block: &block)
                lineStart = lineEnd + 1
            }
            if atEnd {
                if lineStart < filled {
                    lineNumber += 1
                    try Self.parseLine(
                        UnsafeMutableRawBufferPointer(start: buffer + lineStart, count: filled - lineStart),
                        number: lineNumber, path: path, into: keyspace, file: file, offset: bufferOffset + lineStart,
                        block: &block)
                }
                try block.finish(path: path)
                coveredSegments = block.coveredSegments
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
        file: DiskValues.File?, offset lineOffset: Int, block: inout TypedBlock
    ) throws(StoreError) {
        // `keyspace` is database 0's; the lines after `#!db<TAB>n` go to database n (Databases.swift),
        // whose values are never left on disk.
        let root = keyspace
        let keyspace = root.database(block.database)
        let file = block.database == 0 ? file : nil
        var line = UnsafeRawBufferPointer(rawLine)
        if let last = line.last, last == Self.carriageReturn {
            // Tolerate files edited on Windows: a raw CR before the newline is a line-end artefact (a CR in
            // data is always written escaped).
            line = UnsafeRawBufferPointer(rebasing: line.dropLast())
        }
        guard let first = line.first else {
            return  // blank line
        }
        if first == Self.hash && line.count >= 2 && line[1] == Self.bang {
            return try block.directive(line, number: number, path: path, into: root, values: file?.values)
        }
        if !block.isClosed && first != Self.hash {
            return try block.element(rawLine, line.count, number: number, path: path, into: keyspace)
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
    static func deadlineField(_ field: UnsafeRawBufferPointer) -> Int64? {
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

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

}
