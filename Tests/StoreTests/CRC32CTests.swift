// The two ways CRC32C.swift computes CRC-32C (the processor's instruction, the tables) must give the
// same values for every length and alignment: records written by one are read back by the other on
// another machine, and the log's format (docs/file-formats.md) does not depend on which ran.

import Testing

@testable import Store

@Suite struct CRC32CTests {
    /// A reference computed bit by bit, slow and obviously the definition (reflected 0x82F63B78).
    private static func bitwise(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }

    @Test func softwareMatchesTheBitwiseDefinitionAtEveryLengthAndOffset() {
        var generator = SystemRandomNumberGenerator()
        let data = (0..<300).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for offset in 0..<9 {
            for length in 0...(data.count - offset) {
                let slice = Array(data[offset..<(offset + length)])
                let software = slice.withUnsafeBytes { ~CRC32C.softwareUpdate(CRC32C.initialState, with: $0) }
                #expect(software == Self.bitwise(slice), "offset \(offset) length \(length)")
            }
        }
    }

    @Test(.enabled(if: CRC32C.hardwareAvailable, "this processor has no CRC-32C instruction"))
    func hardwareMatchesSoftwareAtEveryLengthAndOffset() {
        var generator = SystemRandomNumberGenerator()
        let data = (0..<1_100).map { _ in UInt8.random(in: 0...255, using: &generator) }
        data.withUnsafeBytes { all in
            for offset in 0..<9 {
                for length in 0...(all.count - offset) {
                    let bytes = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    let hardware = CRC32C.hardwareUpdate(CRC32C.initialState, with: bytes)
                    let software = CRC32C.softwareUpdate(CRC32C.initialState, with: bytes)
                    #expect(hardware == software, "offset \(offset) length \(length)")
                }
            }
        }
        #expect(Array("123456789".utf8).withUnsafeBytes { ~CRC32C.hardwareUpdate(CRC32C.initialState, with: $0) }
                == 0xE306_9283)
    }

    @Test(.enabled(if: CRC32C.hardwareAvailable, "this processor has no CRC-32C instruction"))
    func hardwareAndSoftwareStatesChainTheSameWay() {
        // A large record is checked a piece at a time (WriteAheadLog.swift): the running states must
        // agree after each piece, whichever way computed the one before.
        let data = (0..<4_096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        data.withUnsafeBytes { all in
            var hardware = CRC32C.initialState
            var software = CRC32C.initialState
            var start = 0
            for piece in [1, 7, 8, 9, 63, 64, 1_000, 2_044] where start + piece <= all.count {
                let bytes = UnsafeRawBufferPointer(rebasing: all[start..<(start + piece)])
                hardware = CRC32C.hardwareUpdate(hardware, with: bytes)
                software = CRC32C.softwareUpdate(software, with: bytes)
                #expect(hardware == software, "after \(start + piece) bytes")
                start += piece
            }
        }
    }
}
