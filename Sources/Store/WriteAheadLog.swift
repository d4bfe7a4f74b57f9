// The write-ahead log files: `database.wal` (open for appending while the store runs) and rotated segments
// `database.wal.N` (they exist only while compacting, or after a compaction failed). Appending, cutting
// back after a failed write, and replay with the torn-tail rule live here. Frames are defined in Record.swift.

import Glibc
import Logging

/// The open `database.wal`. Owned by ``DurableStore``; loop thread only.
/// Invariant: `size` is the file's length as far as this process wrote it (every append lands at the end,
/// O_APPEND, and every cut is an ftruncate to a frame boundary).
struct WriteAheadLog {
    static let fileName = "database.wal"
    static let segmentPrefix = "database.wal."

    let path: String
    let fd: CInt
    /// Bytes in the file, always at a frame boundary.
    private(set) var size: Int

    /// Opens (creating if needed) the log for appending. Does not read it: see ``replay(path:fd:io:apply:)``.
    static func open(path: String, io: StoreIO) throws(StoreError) -> WriteAheadLog {
        do {
            let fd = try io.open(path, O_RDWR | O_CREAT | O_APPEND, 0o644)
            return WriteAheadLog(path: path, fd: fd, size: 0)
        } catch {
            throw StoreError(operation: "open", path: path, errno: error)
        }
    }

    /// Records that replay found `size` valid bytes (after cutting a torn tail).
    mutating func setRecoveredSize(_ size: Int) {
        self.size = size
    }

    /// Writes all of `bytes`, looping on short writes (EINTR is retried inside `io.write`).
    /// - Throws: the write error; `size` is then unchanged and the caller cuts the file back to it, so the
    ///   log never keeps a partial frame.
    mutating func append(_ bytes: UnsafeRawBufferPointer, io: StoreIO) throws(StoreError) {
        var offset = 0
        while offset < bytes.count {
            do throws(Errno) {
                let written = try io.write(self.fd, UnsafeRawBufferPointer(rebasing: bytes[offset...]))
                if written == 0 {
                    throw Errno(EIO)  // a regular file never legitimately accepts zero bytes
                }
                offset += written
            } catch {
                throw StoreError(operation: "write", path: self.path, errno: error,
                                 detail: offset > 0 ? "after \(offset) of \(bytes.count) bytes" : nil)
            }
        }
        self.size += bytes.count
    }

    /// Cuts the file back to `length` bytes (a frame boundary at or below `size`). `size` becomes `length`
    /// even when ftruncate fails: the caller then retries the cut before appending again.
    mutating func truncate(to length: Int, io: StoreIO) throws(StoreError) {
        self.size = length
        do {
            try io.ftruncate(self.fd, length)
        } catch {
            throw StoreError(operation: "ftruncate", path: self.path, errno: error, detail: "to \(length) bytes")
        }
    }

    // MARK: - Replay

    /// What ``replay(path:fd:io:apply:)`` found.
    struct ReplayResult {
        /// Bytes of valid frames from the start of the file.
        var validBytes: Int
        /// Valid records applied.
        var records: Int
        /// Bytes after `validBytes` that were dropped as a torn tail (0 when the file was clean).
        var tornBytes: Int
    }

    /// A set record whose value ``replay(path:fd:io:leavingOnDiskFrom:onDisk:apply:)`` checked but
    /// did not read into memory: its value is `valueLength` bytes at `valueOffset` of the file.
    struct OnDiskSet {
        let key: UnsafeRawBufferPointer
        /// Kind 4's deadline; nil for kind 1.
        let deadline: Int64?
        let valueOffset: Int
        let valueLength: Int
    }

    /// As ``replay(path:fd:io:apply:)``, but a top-level set record whose payload is at least
    /// `threshold` bytes is checked a megabyte at a time and handed to `onDisk` instead of `apply`, so
    /// memory stays at the read buffer whatever the record's size (compaction: see DiskValues.swift).
    /// Only for a rotated segment: such a record cut short is refused, never taken for a torn tail.
    static func replay(
        path: String, fd: CInt, io: StoreIO, leavingOnDiskFrom threshold: Int, onDisk: (OnDiskSet) -> Void,
        apply: (Record.View) -> Void
    ) throws(StoreError) -> ReplayResult {
        try Self.replay(path: path, fd: fd, io: io, threshold: threshold, onDisk: onDisk, apply: apply)
    }

    /// Reads the log file `fd` from offset 0 in 1 MiB chunks, calling `apply` for each valid record (a view
    /// into the read buffer, valid only during the call).
    ///
    /// The torn-tail rule tells data a power cut or crash left unsynced from damage to data a sync made
    /// durable (docs/file-formats.md "Recovery"). A bad frame is a torn tail when the file ends inside it or
    /// right at its end (an append cut short), or when it covers a sector that reads as zeros (a page or
    /// sector that never reached the disk, whatever persisted after it): everything from it to the end of
    /// the file is unsynced, and is reported in `tornBytes` for the caller to drop. Any other bad frame is
    /// corruption. Segments follow the same rule; whether a torn tail may be dropped there depends on what
    /// later files hold, which the caller knows (Recovery.swift). A corrupt length field that points past
    /// EOF is indistinguishable from a torn append, and damage that zeroes a whole sector of synced data
    /// from a hole: that is the limit of a length-prefixed format without sync marks.
    /// - Throws: ``StoreError`` naming `path` and the byte offset of the bad record.
    static func replay(
        path: String, fd: CInt, io: StoreIO, apply: (Record.View) -> Void
    ) throws(StoreError) -> ReplayResult {
        try Self.replay(path: path, fd: fd, io: io, threshold: nil, onDisk: { _ in }, apply: apply)
    }

    private static func replay(
        path: String, fd: CInt, io: StoreIO, threshold: Int?, onDisk: (OnDiskSet) -> Void,
        apply: (Record.View) -> Void
    ) throws(StoreError) -> ReplayResult {
        var capacity = 1 << 20
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var filled = 0
        var consumed = 0  // file offset of buffer[0]
        var records = 0
        var atEnd = false
        while true {
            // Parse every complete frame in the buffer.
            var start = 0
            parsing: while true {
                let available = UnsafeRawBufferPointer(start: buffer + start, count: filled - start)
                switch Record.decodeView(available) {
                case .record(let record, let size):
                    if record.kind == Record.kindGroup {
                        // A transaction: its members replay in order, all of them (the frame is whole).
                        guard let members = Record.forEachMember(of: record.value, apply) else {
                            throw Self.corruption(path: path, offset: consumed + start, reason: "bad record inside a group")
                        }
                        records += members
                    } else if let threshold, size - Record.frameHeaderBytes >= threshold,
                        record.kind == Record.kindSet || record.kind == Record.kindSetWithDeadline
                    {
                        // Whole in the buffer, but as large as the rule says: left on disk all the same.
                        let valueStart = (buffer + start).distance(to: UnsafeMutableRawPointer(mutating: record.value.baseAddress!))
                        onDisk(OnDiskSet(key: record.key, deadline: record.kind == Record.kindSetWithDeadline ? record.deadline : nil,
                                         valueOffset: consumed + start + valueStart, valueLength: record.value.count))
                        records += 1
                    } else {
                        apply(record)
                        records += 1
                    }
                    start += size
                case .incomplete:
                    if let threshold, !atEnd,
                        let header = Self.largeSetHeader(available, threshold: threshold)
                    {
                        try Self.stream(header, in: available, fileOffset: consumed + start, fd: fd,
                                        buffer: buffer, capacity: capacity, path: path, io: io, onDisk: onDisk)
                        records += 1
                        consumed += start + Record.frameHeaderBytes + header.payloadLength
                        start = 0
                        filled = 0
                        break parsing
                    }
                    if atEnd {
                        if available.isEmpty {
                            return ReplayResult(validBytes: consumed + start, records: records, tornBytes: 0)
                        }
                        // The file ends inside a frame: an append a crash or a power cut cut short.
                        return ReplayResult(validBytes: consumed + start, records: records, tornBytes: available.count)
                    }
                    break parsing
                case .unsupported(let reason):
                    // Complete and checksum-valid: written by a server with more types. Never a torn tail
                    // (cutting it would throw away acknowledged data), in any file.
                    throw StoreError(operation: "unsupported log record in", path: path,
                                     detail: "at byte offset \(consumed + start): \(reason); refusing to start "
                                         + "(start a server that has this type)")
                case .invalid(let reason):
                    let validBytes = consumed + start
                    // Judge the frame whole, with the rest of its last sector (or up to the end of the file).
                    let frameEnd = Self.declaredFrameEnd(available) ?? Record.frameHeaderBytes
                    let needed = (validBytes + frameEnd + Self.sectorBytes - 1) / Self.sectorBytes * Self.sectorBytes
                        - validBytes
                    while !atEnd && filled - start < needed {
                        if filled == capacity {
                            Self.compact(&buffer, &filled, &start, &consumed, &capacity)
                        }
                        let count = try Self.read(fd, into: buffer + filled, count: capacity - filled, path: path, io: io)
                        if count == 0 { atEnd = true } else { filled += count }
                    }
                    let judged = UnsafeRawBufferPointer(start: buffer + start, count: filled - start)
                    let reachesEnd = atEnd && filled - start <= frameEnd
                    guard reachesEnd || Self.coversZeroSector(judged, frameBytes: frameEnd, at: validBytes) else {
                        throw Self.corruption(path: path, offset: validBytes, reason: reason)
                    }
                    // Unsynced from here on: everything to the end of the file is dropped. Counted, not kept.
                    var tornBytes = filled - start
                    while !atEnd {
                        let count = try Self.read(fd, into: buffer, count: capacity, path: path, io: io)
                        if count == 0 { atEnd = true } else { tornBytes += count }
                    }
                    return ReplayResult(validBytes: validBytes, records: records, tornBytes: tornBytes)
                }
            }
            if atEnd {
                continue
            }
            // Move the unparsed remainder to the front, growing when one frame exceeds the buffer.
            Self.compact(&buffer, &filled, &start, &consumed, &capacity)
            let count = try Self.read(fd, into: buffer + filled, count: capacity - filled, path: path, io: io)
            if count == 0 { atEnd = true } else { filled += count }
        }
    }

    /// The start of a frame too large to hold, as far as ``stream(_:in:fileOffset:fd:buffer:capacity:path:io:onDisk:)`` needs it.
    private struct LargeSetHeader {
        let payloadLength: Int
        let storedCRC: UInt32
        let keyLength: Int
        let deadline: Int64?
        /// Payload bytes before the value: kind, key length, key, deadline.
        let valueStart: Int
    }

    /// The header of the set record starting `bytes`, when its payload is at least `threshold` bytes and
    /// `bytes` holds everything before its value (a key is at most 512 MiB in theory, a few bytes in
    /// practice; a record whose key does not fit in the buffer is simply read whole).
    private static func largeSetHeader(_ bytes: UnsafeRawBufferPointer, threshold: Int) -> LargeSetHeader? {
        let fixed = Record.frameHeaderBytes + Record.payloadHeaderBytes
        guard bytes.count >= fixed else { return nil }
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        guard length >= threshold, length <= Record.maximumPayloadBytes else { return nil }
        let kind = bytes[Record.frameHeaderBytes]
        guard kind == Record.kindSet || kind == Record.kindSetWithDeadline else { return nil }
        let keyLength = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: fixed - 4, as: UInt32.self)))
        let deadlineBytes = kind == Record.kindSetWithDeadline ? 8 : 0
        let valueStart = Record.payloadHeaderBytes + keyLength + deadlineBytes
        guard valueStart <= length, bytes.count >= Record.frameHeaderBytes + valueStart else { return nil }
        let deadline = kind == Record.kindSetWithDeadline
            ? Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: fixed + keyLength, as: Int64.self)) : nil
        return LargeSetHeader(
            payloadLength: length, storedCRC: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)),
            keyLength: keyLength, deadline: deadline, valueStart: valueStart)
    }

    /// Reads the rest of the large frame at the front of `available` (whose bytes end where the file's
    /// read position is) through `buffer` a buffer-full at a time, checks its CRC, and hands it to `onDisk`.
    /// Leaves the file position at the frame's end.
    private static func stream(
        _ header: LargeSetHeader, in available: UnsafeRawBufferPointer, fileOffset: Int, fd: CInt,
        buffer: UnsafeMutableRawPointer, capacity: Int, path: String, io: StoreIO, onDisk: (OnDiskSet) -> Void
    ) throws(StoreError) {
        let inBuffer = available.count - Record.frameHeaderBytes
        let keyStart = Record.frameHeaderBytes + Record.payloadHeaderBytes
        let key = [UInt8](UnsafeRawBufferPointer(rebasing: available[keyStart..<(keyStart + header.keyLength)]))
        var crc = CRC32C.update(CRC32C.initialState,
                                with: UnsafeRawBufferPointer(rebasing: available[Record.frameHeaderBytes...]))
        var remaining = header.payloadLength - inBuffer
        while remaining > 0 {
            // `available` lives in `buffer`: everything needed from it was taken above.
            let count = try Self.read(fd, into: buffer, count: min(capacity, remaining), path: path, io: io)
            guard count > 0 else {
                throw Self.corruption(path: path, offset: fileOffset, reason: "record cut short in a rotated segment")
            }
            crc = CRC32C.update(crc, with: UnsafeRawBufferPointer(start: buffer, count: count))
            remaining -= count
        }
        guard ~crc == header.storedCRC else {
            throw Self.corruption(path: path, offset: fileOffset, reason: "checksum mismatch")
        }
        key.withUnsafeBytes { key in
            onDisk(OnDiskSet(key: key, deadline: header.deadline,
                             valueOffset: fileOffset + Record.frameHeaderBytes + header.valueStart,
                             valueLength: header.payloadLength - header.valueStart))
        }
    }

    /// The unit a disk writes atomically, at best: a power cut leaves each one of an unsynced page old or new.
    static let sectorBytes = 512

    /// Whether the bad frame at the front of `bytes` (file offset `offset`, `frameBytes` long as its header
    /// says, or its header alone when the length is impossible) covers a sector that reads as zeros from
    /// the frame's start, or the sector's start, to the sector's end (or the end of the file; `bytes` holds
    /// that much). Data a sync made durable never reads so; an unsynced page or sector a power cut did not
    /// persist does (a hole), whatever persisted after it.
    static func coversZeroSector(_ bytes: UnsafeRawBufferPointer, frameBytes: Int, at offset: Int) -> Bool {
        var sector = offset - offset % Self.sectorBytes
        while sector < offset + min(frameBytes, bytes.count) {
            let from = max(offset, sector) - offset
            let to = min(sector + Self.sectorBytes - offset, bytes.count)
            if to > from && UnsafeRawBufferPointer(rebasing: bytes[from..<to]).allSatisfy({ $0 == 0 }) {
                return true
            }
            sector += Self.sectorBytes
        }
        return false
    }

    /// The frame size a frame header declares, or nil when the header is missing or its length impossible.
    private static func declaredFrameEnd(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 4 else { return nil }
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        guard length >= Record.payloadHeaderBytes, length <= Record.maximumPayloadBytes else { return nil }
        return Record.frameHeaderBytes + length
    }

    /// Drops consumed bytes from the front of the buffer and grows it when it is still full: to the
    /// size the frame at its front declares when that is larger (a 512 MiB record costs 512 MiB
    /// here, not a doubling to 1 GiB beside the half-size copy), otherwise to twice its size.
    private static func compact(
        _ buffer: inout UnsafeMutableRawPointer, _ filled: inout Int, _ start: inout Int,
        _ consumed: inout Int, _ capacity: inout Int
    ) {
        if start > 0 {
            buffer.copyMemory(from: buffer + start, byteCount: filled - start)
            filled -= start
            consumed += start
            start = 0
        }
        if filled == capacity {
            let declared = Self.declaredFrameEnd(UnsafeRawBufferPointer(start: buffer, count: filled)) ?? 0
            let newCapacity = declared > capacity ? declared : capacity * 2
            let bigger = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            bigger.copyMemory(from: buffer, byteCount: filled)
            buffer.deallocate()
            buffer = bigger
            capacity = newCapacity
        }
    }

    private static func read(
        _ fd: CInt, into pointer: UnsafeMutableRawPointer, count: Int, path: String, io: StoreIO
    ) throws(StoreError) -> Int {
        do {
            return try io.read(fd, UnsafeMutableRawBufferPointer(start: pointer, count: count))
        } catch {
            throw StoreError(operation: "read", path: path, errno: error)
        }
    }

    private static func corruption(path: String, offset: Int, reason: String) -> StoreError {
        StoreError(operation: "corrupt log record in", path: path,
                   detail: "at byte offset \(offset): \(reason); refusing to start (move the file aside to "
                       + "recover up to that point by hand)")
    }
}
