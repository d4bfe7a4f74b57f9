// The log record format and its checksum.

import Testing

@testable import Store

@Suite struct RecordTests {
    @Test func crc32cMatchesTheStandardTestVectors() {
        #expect(CRC32C.checksum(bytes("123456789")) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
    }

    @Test func crc32cSlicedLoopAgreesWithTheBytewiseTailAtEveryLength() {
        // Every length 0...40 exercises each split between the 8-byte loop and the byte loop.
        let data = (0..<40).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for length in 0...data.count {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in data[..<length] {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            }
            #expect(CRC32C.checksum(Array(data[..<length])) == ~crc, "length \(length)")
        }
    }

    static let binary: [UInt8] = [0x0D, 0x0A, 0x00, 0x09, 0x5C, 0xFF, 0x80, 0x41]

    @Test(arguments: [
        Record.set(key: bytes("k"), value: bytes("v1")),
        Record.set(key: RecordTests.binary, value: RecordTests.binary + RecordTests.binary),
        Record.set(key: [], value: []),
        Record.set(key: bytes("empty value"), value: []),
        Record.delete(key: RecordTests.binary),
        Record.delete(key: bytes("k")),
        Record.clear,
        Record.setWithDeadline(key: bytes("k"), value: bytes("v1"), deadline: 1_796_000_000_000),
        Record.setWithDeadline(key: RecordTests.binary, value: [], deadline: 0),
        Record.expire(key: bytes("k"), deadline: 1_796_000_000_000),
        Record.expire(key: [], deadline: -1),
        Record.persist(key: bytes("k")),
    ])
    func recordRoundTrips(_ record: Record) {
        var buffer: [UInt8] = [0xAA]  // appends after existing bytes
        record.encode(into: &buffer)
        let frame = Array(buffer.dropFirst())
        frame.withUnsafeBytes { raw in
            #expect(Record.decode(raw) == .record(record, size: frame.count))
            // Every proper prefix is incomplete, never mistaken for a record.
            for cut in 0..<frame.count {
                #expect(Record.decode(UnsafeRawBufferPointer(rebasing: raw[..<cut])) == .incomplete)
            }
        }
    }

    @Test func encodingMatchesTheDocumentedExample() {
        var buffer: [UInt8] = []
        Record.set(key: bytes("k"), value: bytes("v1")).encode(into: &buffer)
        #expect(Array(buffer[0..<4]) == [8, 0, 0, 0])
        #expect(Array(buffer[8...]) == [1, 1, 0, 0, 0, 0x6B, 0x76, 0x31])
        let crc = CRC32C.checksum(Array(buffer[8...]))
        #expect(Array(buffer[4..<8]) == [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)])
    }

    @Test func deadlineRecordsMatchTheDocumentedExamples() {
        var buffer: [UInt8] = []
        Record.setWithDeadline(key: bytes("k"), value: bytes("v1"), deadline: 1_796_000_000_000).encode(into: &buffer)
        #expect(Array(buffer[0..<4]) == [0x10, 0, 0, 0])
        #expect(Array(buffer[8...]) == [4, 1, 0, 0, 0, 0x6B, 0x00, 0x28, 0xF1, 0x29, 0xA2, 0x01, 0x00, 0x00, 0x76, 0x31])
        buffer = []
        Record.expire(key: bytes("k"), deadline: 1_796_000_000_000).encode(into: &buffer)
        #expect(Array(buffer[0..<4]) == [0x0E, 0, 0, 0])
        #expect(Array(buffer[8...]) == [5, 1, 0, 0, 0, 0x6B, 0x00, 0x28, 0xF1, 0x29, 0xA2, 0x01, 0x00, 0x00])
        buffer = []
        Record.persist(key: bytes("k")).encode(into: &buffer)
        #expect(Array(buffer[8...]) == [6, 1, 0, 0, 0, 0x6B])
        // An expire record must be exactly 8 bytes after its key; a persist record nothing.
        for payload: [UInt8] in [[5, 1, 0, 0, 0, 0x6B, 1, 2, 3], [6, 1, 0, 0, 0, 0x6B, 0], [4, 1, 0, 0, 0, 0x6B, 1]] {
            let crc = CRC32C.checksum(payload)
            let frame = withUnsafeBytes(of: UInt32(payload.count).littleEndian) { Array($0) }
                + withUnsafeBytes(of: crc.littleEndian) { Array($0) } + payload
            frame.withUnsafeBytes { raw in
                guard case .invalid = Record.decode(raw) else {
                    Issue.record("malformed deadline record accepted: \(payload)")
                    return
                }
            }
        }
    }

    @Test func aFlippedBitInAnyByteIsDetected() {
        var frame: [UInt8] = []
        Record.set(key: bytes("key"), value: bytes("value")).encode(into: &frame)
        for index in frame.indices {
            var damaged = frame
            damaged[index] ^= 0x10
            damaged.withUnsafeBytes { raw in
                if case .record = Record.decode(raw) {
                    Issue.record("flip at byte \(index) decoded as a record")
                }
            }
        }
    }

    @Test func impossibleLengthsAndKindsAreInvalid() {
        let zeros = [UInt8](repeating: 0, count: 16)
        zeros.withUnsafeBytes { raw in
            #expect(Record.decode(raw) == .invalid(reason: "impossible record length 0"))
        }
        // A valid checksum over a payload with an unknown kind.
        let payload: [UInt8] = [9, 0, 0, 0, 0]
        let crc = CRC32C.checksum(payload)
        let frame: [UInt8] = [5, 0, 0, 0] + withUnsafeBytes(of: crc.littleEndian) { Array($0) } + payload
        frame.withUnsafeBytes { raw in
            guard case .invalid = Record.decode(raw) else {
                Issue.record("unknown kind accepted")
                return
            }
        }
    }
}
