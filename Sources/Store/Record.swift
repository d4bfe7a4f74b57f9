// The on-disk record format of the write-ahead log (`database.wal` and its rotated segments), specified
// once here, with encode and decode. It must not change without a version bump: recovery reads old logs.
//
// A log file is a plain concatenation of frames; there is no file header. Integers are little-endian;
// deadlines are absolute Unix times in milliseconds (Int64), never relative times to live, so a replay at
// any later time gives the same expiries.
//
//     frame   = length:u32  crc:u32  payload[length]        crc = CRC-32C(payload), Castagnoli
//     payload = kind:u8  keyLength:u32  key[keyLength]  rest
//
//     kind 1 set           rest = value (to the end of the payload); clears any deadline
//     kind 2 delete        rest is empty (also how an expiry or an eviction is logged)
//     kind 3 clear         keyLength 0, rest empty (length is exactly 5)
//     kind 4 set+deadline  rest = deadline:i64  value            (SET key value PXAT deadline)
//     kind 5 expire        rest = deadline:i64 (exactly 8 bytes)  (sets the deadline of a present key)
//     kind 6 persist       rest is empty                          (clears the deadline of a present key)
//     kind 7 group         keyLength 0, rest = complete frames of kinds 1-6 and 8-11 (one MULTI/EXEC,
//                          or one whole collection value): the outer CRC covers them all, so a torn
//                          group is dropped whole at replay
//
// Typed values (hash, list, set, sorted set; Value.swift). Strings keep kinds 1 and 4 (a string is
// its whole value). A collection's records say which element changed, never which command ran:
//
//     kind 8 value         rest = type:u8 [deadline:i64]   (the key now holds an EMPTY value of
//                          `type`, replacing anything, with that deadline or none; the elements follow
//                          as kind 9 records in the same group: how a whole value is logged, e.g.
//                          COPY to another database, RESTORE, SORT … STORE)
//     kind 9 element       rest = type:u8 op:u8 position:i64 firstLength:u32 first second
//                          op 1 add: set member `first`, hash field `first` = `second`, sorted-set
//                          member `first` with score `second` (8 bytes, a little-endian Double), list
//                          item `first` inserted at `position` (0 the head, -1 after the tail);
//                          op 2 remove: member/field `first`, or the list item at `position`.
//                          An add to an absent key creates the value; a remove that empties it
//                          deletes the key (as Redis does). `type` guards against applying it to a
//                          key of another type (skipped: a log we wrote never asks that).
//                          Kinds 8 and 9 naming a type this server has no implementation of
//                          (``CollectionTypes``) are invalid records: recovery refuses them.
//     kind 10 rename       rest = destination key: the value and deadline of `key` move there,
//                          replacing what it held (RENAME, RENAMENX; a collection is not re-logged)
//     kind 11 copy         rest = destination key: a deep copy of `key`'s value and deadline there,
//                          replacing what it held (COPY without DB)
//
// Databases and functions:
//
//     kind 12 database     keyLength 0, rest = index:u32 then complete frames of the kinds above, all
//                          applying to database `index` (SELECT n; MOVE and SWAPDB are effects in two
//                          such frames, grouped)
//     kind 13 function     key = library name (never empty), rest = its code (FUNCTION LOAD [REPLACE]);
//                          rest empty: FUNCTION DELETE. A FUNCTION FLUSH is one per library, grouped.
//                          Never inside a kind 12 (functions belong to no database).
//     kind 14 swap         keyLength 0, rest = first:u32 second:u32 (exactly 8 bytes, two different
//                          indexes): databases `first` and `second` exchange their keys (SWAPDB).
//                          Never inside a kind 12.
//
// Typed examples (set "s" add "m"; hash "h" field "f" = "v"; rename "a" to "b"):
//
//     element set add "m"         15000000 <crc> 09 01000000 73 03 01 0000000000000000 01000000 6d
//     element hash "f"="v"        16000000 <crc> 09 01000000 68 01 01 0000000000000000 01000000 66 76
//     rename "a" -> "b"           07000000 <crc> 0a 01000000 61 62
//
// Examples (hex, spaces added; deadline 1796000000000 = 0x1a2_29f1_2800):
//
//     set "k" = "v1"              08000000 <crc> 01 01000000 6b 7631
//     delete "k"                  06000000 <crc> 02 01000000 6b
//     clear                       05000000 <crc> 03 00000000
//     set "k" = "v1" until 1796…  10000000 <crc> 04 01000000 6b 0028f129a2010000 7631
//     expire "k" at 1796…         0e000000 <crc> 05 01000000 6b 0028f129a2010000
//     persist "k"                 06000000 <crc> 06 01000000 6b
//     group { set "k"="v1", delete "j" }
//                                  23000000 <crc> 07 00000000 08000000 <crc> 01 01000000 6b 7631
//                                                             06000000 <crc> 02 01000000 6a
//
// Replay applies records in order and keeps deadlines as written; keys whose deadline has passed are
// dropped once the whole log is replayed (dropping them record by record would lose a later `persist`).
//
// Why this framing: the length comes first so a reader knows where the next frame starts, and a frame
// whose declared length runs past the end of the file is recognisably torn (a crash mid-append). The
// CRC covers the whole payload, so a torn or bit-flipped payload fails the check. A length that is
// zero, below 5 or above `maximumPayloadBytes` is invalid at once (a zero-filled tail reads that way).
// Records carry no sequence number: replaying them is idempotent, which is all recovery needs.

/// One logged mutation (the owned form, for tests and tools; replay uses ``View``).
enum Record: Equatable, Sendable {
    case set(key: [UInt8], value: [UInt8])
    case delete(key: [UInt8])
    case clear
    case setWithDeadline(key: [UInt8], value: [UInt8], deadline: Int64)
    case expire(key: [UInt8], deadline: Int64)
    case persist(key: [UInt8])
    /// Records that replay all or none (a transaction).
    case group([Record])
    /// The key now holds an empty value of `type` (a collection), with `deadline` or none.
    case value(key: [UInt8], type: ValueType, deadline: Int64?)
    /// One element of the collection at `key` changed.
    case element(key: [UInt8], type: ValueType, effect: ElementEffect)
    /// The value and deadline of `key` moved to `to`.
    case rename(key: [UInt8], to: [UInt8])
    /// A deep copy of the value and deadline of `key` went to `to`.
    case copy(key: [UInt8], to: [UInt8])
    /// Records applying to database `index` (never 0: database 0's records are never wrapped).
    case database(index: Int, [Record])
    /// A function library loaded (its code) or deleted (nil) (FunctionLibraries.swift).
    case function(name: [UInt8], code: [UInt8]?)
    /// Databases `first` and `second` (different) exchanged their keys.
    case swapDatabases(first: Int, second: Int)

    /// Bytes before the payload: length and CRC.
    static let frameHeaderBytes = 8
    /// Payload bytes before the key: kind and key length.
    static let payloadHeaderBytes = 5
    /// The largest payload accepted on decode (and produced on encode): 1 GiB, far above `--max-value`.
    static let maximumPayloadBytes = 1 << 30

    static let kindSet: UInt8 = 1
    static let kindDelete: UInt8 = 2
    static let kindClear: UInt8 = 3
    static let kindSetWithDeadline: UInt8 = 4
    static let kindExpire: UInt8 = 5
    static let kindPersist: UInt8 = 6
    static let kindGroup: UInt8 = 7
    static let kindValue: UInt8 = 8
    static let kindElement: UInt8 = 9
    static let kindRename: UInt8 = 10
    static let kindCopy: UInt8 = 11
    /// Records of a database other than 0 (Databases.swift).
    static let kindDatabase: UInt8 = 12
    /// A function library (FunctionLibraries.swift).
    static let kindFunction: UInt8 = 13
    /// Two databases exchanging their keys (SWAPDB; Databases.swift).
    static let kindSwapDatabases: UInt8 = 14
    /// Bytes of an element record's rest before its first field: type, op, position, first's length.
    static let elementHeaderBytes = 14
    /// Bytes of a group's own frame and payload header, before its inner frames.
    static let groupHeaderBytes = frameHeaderBytes + payloadHeaderBytes

    /// A decoded record pointing into the bytes it was decoded from (no allocation).
    struct View {
        let kind: UInt8
        let key: UnsafeRawBufferPointer
        /// Empty for kinds without a value.
        let value: UnsafeRawBufferPointer
        /// Kinds 4 and 5 only.
        let deadline: Int64
    }

    /// The bytes of the frame for a record of `kind` with these key and value sizes.
    /// - Precondition: the payload fits in `maximumPayloadBytes`.
    @inline(__always)
    static func frameBytes(kind: UInt8, keyCount: Int, valueCount: Int) -> Int {
        let hasDeadline = kind == Self.kindSetWithDeadline || kind == Self.kindExpire
        let payloadLength = Self.payloadHeaderBytes + keyCount + (hasDeadline ? 8 : 0) + valueCount
        precondition(payloadLength <= Self.maximumPayloadBytes, "log record too large")
        return Self.frameHeaderBytes + payloadLength
    }

    /// Writes one encoded frame at `frame`, which must have room for exactly
    /// ``frameBytes(kind:keyCount:valueCount:)`` bytes. `deadline` is written for kinds 4 and 5 only.
    @inline(__always)
    static func encode(
        kind: UInt8, key: UnsafeRawBufferPointer, deadline: Int64, value: UnsafeRawBufferPointer,
        into frame: UnsafeMutableRawPointer
    ) {
        let hasDeadline = kind == Self.kindSetWithDeadline || kind == Self.kindExpire
        let payloadLength = Self.payloadHeaderBytes + key.count + (hasDeadline ? 8 : 0) + value.count
        frame.storeBytes(of: UInt32(payloadLength).littleEndian, as: UInt32.self)
        let payload = frame + Self.frameHeaderBytes
        payload.storeBytes(of: kind, as: UInt8.self)
        payload.storeBytes(of: UInt32(key.count).littleEndian, toByteOffset: 1, as: UInt32.self)
        var offset = Self.payloadHeaderBytes
        if let base = key.baseAddress {
            (payload + offset).copyMemory(from: base, byteCount: key.count)
        }
        offset += key.count
        if hasDeadline {
            payload.storeBytes(of: deadline.littleEndian, toByteOffset: offset, as: Int64.self)
            offset += 8
        }
        if let base = value.baseAddress {
            (payload + offset).copyMemory(from: base, byteCount: value.count)
        }
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: payload, count: payloadLength))
        frame.storeBytes(of: crc.littleEndian, toByteOffset: 4, as: UInt32.self)
    }

    /// Appends one encoded frame to the store's log buffer: room for it is reserved (amortised, no
    /// zero-fill) and the frame written through one pointer.
    @inline(__always)
    static func append(
        kind: UInt8, key: UnsafeRawBufferPointer, deadline: Int64 = 0, value: UnsafeRawBufferPointer,
        to buffer: inout LogBuffer
    ) {
        let bytes = Self.frameBytes(kind: kind, keyCount: key.count, valueCount: value.count)
        Self.encode(kind: kind, key: key, deadline: deadline, value: value, into: buffer.extend(by: bytes))
    }

    /// Appends one encoded frame to an array (tests and tools; the store uses ``LogBuffer``).
    static func append(
        kind: UInt8, key: UnsafeRawBufferPointer, deadline: Int64 = 0, value: UnsafeRawBufferPointer,
        to buffer: inout [UInt8]
    ) {
        let frameStart = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: Self.frameBytes(kind: kind, keyCount: key.count,
                                                                          valueCount: value.count)))
        buffer.withUnsafeMutableBytes { bytes in
            Self.encode(kind: kind, key: key, deadline: deadline, value: value, into: bytes.baseAddress! + frameStart)
        }
    }

    /// Turns the `groupHeaderBytes` reserved at `start` (frames appended after them) into a group
    /// frame over those frames. - Precondition: the payload fits in `maximumPayloadBytes`.
    static func closeGroup(startingAt start: Int, in buffer: inout [UInt8]) {
        buffer.withUnsafeMutableBytes { bytes in
            Self.closeGroup(frame: bytes.baseAddress! + start, frameBytes: bytes.count - start)
        }
    }

    /// Turns the `groupHeaderBytes` reserved at `start` of the store's log buffer into a group frame
    /// over the frames that follow them.
    static func closeGroup(startingAt start: Int, in buffer: inout LogBuffer) {
        Self.closeGroup(frame: buffer.mutableBytes(from: start), frameBytes: buffer.count - start)
    }

    /// Writes a group's frame and payload header at `frame`, whose `frameBytes` bytes hold the header
    /// room then the member frames.
    private static func closeGroup(frame: UnsafeMutableRawPointer, frameBytes: Int) {
        let payloadLength = frameBytes - Self.frameHeaderBytes
        precondition(payloadLength <= Self.maximumPayloadBytes, "log record too large")
        frame.storeBytes(of: UInt32(payloadLength).littleEndian, as: UInt32.self)
        let payload = frame + Self.frameHeaderBytes
        payload.storeBytes(of: Self.kindGroup, as: UInt8.self)
        payload.storeBytes(of: UInt32(0).littleEndian, toByteOffset: 1, as: UInt32.self)
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: payload, count: payloadLength))
        frame.storeBytes(of: crc.littleEndian, toByteOffset: 4, as: UInt32.self)
    }

    /// Calls `body` with each member of a group's payload (`view.value` of a kind-7 record).
    /// - Returns: how many members, or nil when one does not decode (corruption: the outer CRC held).
    static func forEachMember(of group: UnsafeRawBufferPointer, _ body: (View) -> Void) -> Int? {
        var rest = group
        var count = 0
        while !rest.isEmpty {
            guard case .record(let member, let used) = Self.decodeView(rest), member.kind != Self.kindGroup else {
                return nil
            }
            body(member)
            count += 1
            rest = UnsafeRawBufferPointer(rebasing: rest[used...])
        }
        return count
    }

    /// Convenience over arrays.
    static func append(kind: UInt8, key: [UInt8], deadline: Int64 = 0, value: [UInt8], to buffer: inout [UInt8]) {
        key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in Self.append(kind: kind, key: k, deadline: deadline, value: v, to: &buffer) }
        }
    }

    /// Appends this record's frame to `buffer`.
    func encode(into buffer: inout [UInt8]) {
        switch self {
        case .set(let key, let value):
            Self.append(kind: Self.kindSet, key: key, value: value, to: &buffer)
        case .delete(let key):
            Self.append(kind: Self.kindDelete, key: key, value: [], to: &buffer)
        case .clear:
            Self.append(kind: Self.kindClear, key: [], value: [], to: &buffer)
        case .setWithDeadline(let key, let value, let deadline):
            Self.append(kind: Self.kindSetWithDeadline, key: key, deadline: deadline, value: value, to: &buffer)
        case .expire(let key, let deadline):
            Self.append(kind: Self.kindExpire, key: key, deadline: deadline, value: [], to: &buffer)
        case .persist(let key):
            Self.append(kind: Self.kindPersist, key: key, value: [], to: &buffer)
        case .group(let records):
            let start = buffer.count
            buffer.append(contentsOf: repeatElement(0, count: Self.groupHeaderBytes))
            for record in records { record.encode(into: &buffer) }
            Self.closeGroup(startingAt: start, in: &buffer)
        case .value(let key, let type, let deadline):
            Self.append(kind: Self.kindValue, key: key, value: Self.valueRest(type: type, deadline: deadline), to: &buffer)
        case .element(let key, let type, let effect):
            Self.append(kind: Self.kindElement, key: key, value: Self.elementRest(type: type, effect), to: &buffer)
        case .rename(let key, let destination):
            Self.append(kind: Self.kindRename, key: key, value: destination, to: &buffer)
        case .copy(let key, let destination):
            Self.append(kind: Self.kindCopy, key: key, value: destination, to: &buffer)
        case .function(let name, let code):
            Self.append(kind: Self.kindFunction, key: name, value: code ?? [], to: &buffer)
        case .database(let index, let records):
            var inner: [UInt8] = []
            withUnsafeBytes(of: UInt32(index).littleEndian) { inner.append(contentsOf: $0) }
            for record in records { record.encode(into: &inner) }
            Self.append(kind: Self.kindDatabase, key: [], value: inner, to: &buffer)
        case .swapDatabases(let first, let second):
            Self.append(kind: Self.kindSwapDatabases, key: [], value: Self.swapRest(first, second), to: &buffer)
        }
    }

    /// What ``decode(_:)`` found at the start of its input.
    enum Decoded: Equatable {
        /// A valid record occupying `size` bytes.
        case record(Record, size: Int)
        /// The input ends inside this frame's header or payload.
        case incomplete
        /// The frame is complete but bad (checksum, impossible length, unknown kind).
        case invalid(reason: String)
        /// The frame is complete and valid, but names a type this server has no implementation of (a
        /// log written by a server with more types): never a torn tail, replay refuses it.
        case unsupported(reason: String)
    }

    /// What ``decodeView(_:)`` found: as ``Decoded``, with the record as a view into the input.
    enum DecodedView {
        case record(View, size: Int)
        case incomplete
        case invalid(reason: String)
        case unsupported(reason: String)
    }

    /// Decodes the frame at the start of `bytes` into an owned record.
    static func decode(_ bytes: UnsafeRawBufferPointer) -> Decoded {
        switch Self.decodeView(bytes) {
        case .incomplete: return .incomplete
        case .invalid(let reason): return .invalid(reason: reason)
        case .unsupported(let reason): return .unsupported(reason: reason)
        case .record(let view, let size):
            let key = [UInt8](view.key)
            let record: Record
            switch view.kind {
            case Self.kindSet: record = .set(key: key, value: [UInt8](view.value))
            case Self.kindDelete: record = .delete(key: key)
            case Self.kindClear: record = .clear
            case Self.kindSetWithDeadline:
                record = .setWithDeadline(key: key, value: [UInt8](view.value), deadline: view.deadline)
            case Self.kindExpire: record = .expire(key: key, deadline: view.deadline)
            case Self.kindGroup:
                var inner: [Record] = []
                var rest = view.value
                while !rest.isEmpty {
                    guard case .record(let member, let used) = Self.decode(rest) else {
                        return .invalid(reason: "bad record inside a group")
                    }
                    inner.append(member)
                    rest = UnsafeRawBufferPointer(rebasing: rest[used...])
                }
                record = .group(inner)
            case Self.kindValue:
                let (type, deadline) = Self.valueFields(view)
                record = .value(key: key, type: type, deadline: deadline)
            case Self.kindElement:
                let element = Self.elementFields(view)
                record = .element(key: key, type: element.type, effect: ElementEffect(
                    element.operation, position: element.position, [UInt8](element.first), [UInt8](element.second)))
            case Self.kindRename: record = .rename(key: key, to: [UInt8](view.value))
            case Self.kindCopy: record = .copy(key: key, to: [UInt8](view.value))
            case Self.kindFunction: record = .function(name: key, code: view.value.isEmpty ? nil : [UInt8](view.value))
            case Self.kindDatabase:
                var inner: [Record] = []
                var rest = UnsafeRawBufferPointer(rebasing: view.value[4...])
                while !rest.isEmpty {
                    guard case .record(let member, let used) = Self.decode(rest) else {
                        return .invalid(reason: "bad record inside a database record")
                    }
                    inner.append(member)
                    rest = UnsafeRawBufferPointer(rebasing: rest[used...])
                }
                record = .database(index: Int(view.deadline), inner)
            case Self.kindSwapDatabases:
                record = .swapDatabases(first: Int(view.deadline), second: Self.swapSecond(view))
            default: record = .persist(key: key)
            }
            return .record(record, size: size)
        }
    }

    /// Decodes the frame at the start of `bytes` without copying it.
    static func decodeView(_ bytes: UnsafeRawBufferPointer) -> DecodedView {
        guard bytes.count >= Self.frameHeaderBytes else {
            return .incomplete
        }
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        guard length >= Self.payloadHeaderBytes, length <= Self.maximumPayloadBytes else {
            return .invalid(reason: "impossible record length \(length)")
        }
        guard bytes.count >= Self.frameHeaderBytes + length else {
            return .incomplete
        }
        let storedCRC = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let payload = UnsafeRawBufferPointer(
            rebasing: bytes[Self.frameHeaderBytes..<(Self.frameHeaderBytes + length)])
        guard CRC32C.checksum(payload) == storedCRC else {
            return .invalid(reason: "checksum mismatch")
        }
        let kind = payload[0]
        let keyLength = Int(UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: 1, as: UInt32.self)))
        guard keyLength <= length - Self.payloadHeaderBytes else {
            return .invalid(reason: "key length \(keyLength) exceeds record")
        }
        let keyEnd = Self.payloadHeaderBytes + keyLength
        let size = Self.frameHeaderBytes + length
        let key = UnsafeRawBufferPointer(rebasing: payload[Self.payloadHeaderBytes..<keyEnd])
        let empty = UnsafeRawBufferPointer(rebasing: payload[length...])
        switch kind {
        case Self.kindSet:
            return .record(View(kind: kind, key: key, value: UnsafeRawBufferPointer(rebasing: payload[keyEnd...]),
                                deadline: 0), size: size)
        case Self.kindDelete where keyEnd == length, Self.kindPersist where keyEnd == length:
            return .record(View(kind: kind, key: key, value: empty, deadline: 0), size: size)
        case Self.kindGroup where keyLength == 0:
            return .record(View(kind: kind, key: key, value: UnsafeRawBufferPointer(rebasing: payload[keyEnd...]),
                                deadline: 0), size: size)
        case Self.kindClear where length == Self.payloadHeaderBytes:
            return .record(View(kind: kind, key: key, value: empty, deadline: 0), size: size)
        case Self.kindValue where Self.isValidValueRest(payload[keyEnd...]),
            Self.kindElement where Self.isValidElementRest(payload[keyEnd...]):
            let type = ValueType(rawValue: payload[keyEnd])!
            guard CollectionTypes.isRegistered(type) else {
                return .unsupported(reason: "a record of kind \(kind) for a \(type.name) value, a type this server has no implementation of")
            }
            return .record(View(kind: kind, key: key, value: UnsafeRawBufferPointer(rebasing: payload[keyEnd...]),
                                deadline: 0), size: size)
        case Self.kindDatabase where keyLength == 0 && length - keyEnd >= 4:
            let index = UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: keyEnd, as: UInt32.self))
            let members = UnsafeRawBufferPointer(rebasing: payload[(keyEnd + 4)...])
            guard index != 0, index <= Self.maximumDatabaseIndex, Self.isValidDatabaseBody(members) else {
                return .invalid(reason: "bad database record")
            }
            // `value` keeps the index in front of the members (``databaseMembers(_:)``).
            return .record(View(kind: kind, key: key, value: UnsafeRawBufferPointer(rebasing: payload[keyEnd...]),
                                deadline: Int64(index)), size: size)
        case Self.kindSwapDatabases where keyLength == 0 && length - keyEnd == 8:
            let first = UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: keyEnd, as: UInt32.self))
            let second = UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: keyEnd + 4, as: UInt32.self))
            guard first != second, first <= Self.maximumDatabaseIndex, second <= Self.maximumDatabaseIndex else {
                return .invalid(reason: "bad database swap record")
            }
            // `deadline` carries the first index, `value` both (``swapSecond(_:)``).
            return .record(View(kind: kind, key: key, value: UnsafeRawBufferPointer(rebasing: payload[keyEnd...]),
                                deadline: Int64(first)), size: size)
        case Self.kindRename, Self.kindCopy, Self.kindFunction where keyLength > 0:
            return .record(View(kind: kind, key: key, value: UnsafeRawBufferPointer(rebasing: payload[keyEnd...]),
                                deadline: 0), size: size)
        case Self.kindSetWithDeadline where length - keyEnd >= 8, Self.kindExpire where length - keyEnd == 8:
            let deadline = Int64(littleEndian: payload.loadUnaligned(fromByteOffset: keyEnd, as: Int64.self))
            return .record(View(kind: kind, key: key, value: UnsafeRawBufferPointer(rebasing: payload[(keyEnd + 8)...]),
                                deadline: deadline), size: size)
        default:
            return .invalid(reason: "bad record kind \(kind) for length \(length)")
        }
    }
}

// MARK: - Typed records (kinds 8-11)

extension Record {
    /// The rest of a kind-8 record.
    static func valueRest(type: ValueType, deadline: Int64?) -> [UInt8] {
        var rest = [type.rawValue]
        if let deadline { withUnsafeBytes(of: deadline.littleEndian) { rest.append(contentsOf: $0) } }
        return rest
    }

    /// The rest of a kind-9 record.
    static func elementRest(type: ValueType, _ effect: ElementEffect) -> [UInt8] {
        var rest = [type.rawValue, effect.operation.rawValue]
        withUnsafeBytes(of: effect.position.littleEndian) { rest.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(effect.first.count).littleEndian) { rest.append(contentsOf: $0) }
        rest.append(contentsOf: effect.first)
        rest.append(contentsOf: effect.second)
        return rest
    }

    /// Appends a kind-9 record to the store's log buffer, writing the fields in place (no copy of them
    /// beyond the frame's).
    static func appendElement(
        key: UnsafeRawBufferPointer, type: ValueType, _ operation: ElementOperation, position: Int64, _ element: Element,
        to buffer: inout LogBuffer
    ) {
        let restCount = Self.elementHeaderBytes + element.first.count + element.second.count
        let bytes = Self.frameBytes(kind: Self.kindElement, keyCount: key.count, valueCount: restCount)
        let frame = buffer.extend(by: bytes)
        let payload = frame + Self.frameHeaderBytes
        let rest = payload + Self.payloadHeaderBytes + key.count
        rest.storeBytes(of: type.rawValue, as: UInt8.self)
        rest.storeBytes(of: operation.rawValue, toByteOffset: 1, as: UInt8.self)
        rest.storeBytes(of: position.littleEndian, toByteOffset: 2, as: Int64.self)
        rest.storeBytes(of: UInt32(element.first.count).littleEndian, toByteOffset: 10, as: UInt32.self)
        if let base = element.first.baseAddress { (rest + 14).copyMemory(from: base, byteCount: element.first.count) }
        if let base = element.second.baseAddress {
            (rest + 14 + element.first.count).copyMemory(from: base, byteCount: element.second.count)
        }
        // The header, key and CRC as for any record: `encode` rewrites the rest over itself unchanged.
        Self.encode(kind: Self.kindElement, key: key, deadline: 0,
                    value: UnsafeRawBufferPointer(start: rest, count: restCount), into: frame)
    }

    private static func isValidValueRest(_ rest: Slice<UnsafeRawBufferPointer>) -> Bool {
        guard rest.count == 1 || rest.count == 9, let type = ValueType(rawValue: rest.first!) else { return false }
        return type != .string  // a valid record even if no type is registered for it (decodeView says so)
    }

    private static func isValidElementRest(_ rest: Slice<UnsafeRawBufferPointer>) -> Bool {
        guard rest.count >= Self.elementHeaderBytes, let type = ValueType(rawValue: rest.first!), type != .string,
            ElementOperation(rawValue: rest[rest.startIndex + 1]) != nil
        else { return false }
        let firstLength = Int(UInt32(littleEndian: rest.base.loadUnaligned(fromByteOffset: rest.startIndex + 10,
                                                                            as: UInt32.self)))
        return firstLength <= rest.count - Self.elementHeaderBytes
    }

    /// The fields of a (validated) kind-8 view.
    static func valueFields(_ view: View) -> (type: ValueType, deadline: Int64?) {
        let type = ValueType(rawValue: view.value[0])!
        guard view.value.count == 9 else { return (type, nil) }
        return (type, Int64(littleEndian: view.value.loadUnaligned(fromByteOffset: 1, as: Int64.self)))
    }

    /// The fields of a (validated) kind-9 view, pointing into it.
    static func elementFields(_ view: View) -> (type: ValueType, operation: ElementOperation, position: Int64,
                                                 first: UnsafeRawBufferPointer, second: UnsafeRawBufferPointer) {
        let rest = view.value
        let firstLength = Int(UInt32(littleEndian: rest.loadUnaligned(fromByteOffset: 10, as: UInt32.self)))
        let firstEnd = Self.elementHeaderBytes + firstLength
        return (ValueType(rawValue: rest[0])!, ElementOperation(rawValue: rest[1])!,
                Int64(littleEndian: rest.loadUnaligned(fromByteOffset: 2, as: Int64.self)),
                UnsafeRawBufferPointer(rebasing: rest[Self.elementHeaderBytes..<firstEnd]),
                UnsafeRawBufferPointer(rebasing: rest[firstEnd...]))
    }
}
