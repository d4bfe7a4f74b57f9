// The on-disk record format of the write-ahead log (`database.wal` and its rotated segments), specified
// once here, with encode and decode. It must not change without a version bump: recovery reads old logs.
//
// A log file is a plain concatenation of frames; there is no file header. Integers are little-endian.
//
//     frame   = length:u32  crc:u32  payload[length]        crc = CRC-32C(payload), Castagnoli
//     payload = kind:u8  keyLength:u32  key[keyLength]  value[length - 5 - keyLength]
//
//     kind 1 set     key and value (either may be empty or hold any byte)
//     kind 2 delete  key; the value part must be empty
//     kind 3 clear   keyLength 0, no key, no value (length is exactly 5)
//
// Examples (hex, spaces added):
//
//     set "k" = "v1"   08000000 <crc 4 bytes> 01 01000000 6b 7631
//     delete "k"       06000000 <crc 4 bytes> 02 01000000 6b
//     clear            05000000 <crc 4 bytes> 03 00000000
//
// Why this framing: the length comes first so a reader knows where the next frame starts, and a frame
// whose declared length runs past the end of the file is recognisably torn (a crash mid-append). The
// CRC covers the whole payload, so a torn or bit-flipped payload fails the check. A length that is
// zero, below 5 or above `maximumPayloadBytes` is invalid at once (a zero-filled tail reads that way).
// Records carry no sequence number: replaying set/delete/clear is idempotent, which is all recovery needs.

/// One logged mutation.
enum Record: Equatable, Sendable {
    case set(key: [UInt8], value: [UInt8])
    case delete(key: [UInt8])
    case clear

    /// Bytes before the payload: length and CRC.
    static let frameHeaderBytes = 8
    /// Payload bytes before the key: kind and key length.
    static let payloadHeaderBytes = 5
    /// The largest payload accepted on decode (and produced on encode): 1 GiB, far above `--max-value`.
    static let maximumPayloadBytes = 1 << 30

    static let kindSet: UInt8 = 1
    static let kindDelete: UInt8 = 2
    static let kindClear: UInt8 = 3

    /// Appends one encoded frame to `buffer`, without intermediate allocations (the buffer's capacity is
    /// reused between loop iterations). - Precondition: the payload fits in `maximumPayloadBytes`.
    static func append(kind: UInt8, key: [UInt8], value: [UInt8], to buffer: inout [UInt8]) {
        let payloadLength = Self.payloadHeaderBytes + key.count + value.count
        precondition(payloadLength <= Self.maximumPayloadBytes, "log record too large")
        let frameStart = buffer.count
        Self.appendUInt32(UInt32(payloadLength), to: &buffer)
        Self.appendUInt32(0, to: &buffer)  // CRC, patched below once the payload is in place
        buffer.append(kind)
        Self.appendUInt32(UInt32(key.count), to: &buffer)
        buffer.append(contentsOf: key)
        buffer.append(contentsOf: value)
        buffer.withUnsafeMutableBytes { bytes in
            let payload = UnsafeRawBufferPointer(rebasing: bytes[(frameStart + Self.frameHeaderBytes)...])
            let crc = CRC32C.checksum(payload)
            bytes.storeBytes(of: crc.littleEndian, toByteOffset: frameStart + 4, as: UInt32.self)
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
    }

    /// Decodes the frame at the start of `bytes`.
    static func decode(_ bytes: UnsafeRawBufferPointer) -> Decoded {
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
        switch kind {
        case Self.kindSet:
            let key = [UInt8](payload[Self.payloadHeaderBytes..<keyEnd])
            let value = [UInt8](payload[keyEnd...])
            return .record(.set(key: key, value: value), size: size)
        case Self.kindDelete where keyEnd == length:
            return .record(.delete(key: [UInt8](payload[Self.payloadHeaderBytes..<keyEnd])), size: size)
        case Self.kindClear where length == Self.payloadHeaderBytes:
            return .record(.clear, size: size)
        default:
            return .invalid(reason: "bad record kind \(kind) for length \(length)")
        }
    }

    private static func appendUInt32(_ value: UInt32, to buffer: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
    }
}
