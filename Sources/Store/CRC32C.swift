// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), for log record checksums. Where the processor
// has the CRC-32C instruction (SSE 4.2 on x86-64; Sources/CChecksum) it computes it, checked once at
// start; elsewhere slicing-by-8 in software: eight 256-entry tables fold eight input bytes per step.
// Both give the same values (Tests/StoreTests/CRC32CTests.swift): the on-disk format does not change.

import CChecksum

/// CRC-32C over a byte range. Test vector: `"123456789"` gives `0xE306_9283`.
enum CRC32C {
    /// `tables[k * 256 + b]`: the CRC of byte `b` followed by `k` zero bytes. Built once, immutable.
    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
            }
            tables[byte] = crc
        }
        for slice in 1..<8 {
            for byte in 0..<256 {
                let previous = tables[(slice - 1) * 256 + byte]
                tables[slice * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    /// The CRC-32C of `bytes`.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        ~Self.update(Self.initialState, with: bytes)
    }

    /// The running state before any byte: feed pieces to ``update(_:with:)`` in order, and the
    /// checksum of their concatenation is `~state` (a 512 MiB record is checked a megabyte at a time).
    static let initialState: UInt32 = 0xFFFF_FFFF

    /// Whether this processor computes CRC-32C itself (read once).
    static let hardwareAvailable = reactord_crc32c_hardware_available() != 0

    /// Folds `bytes` into a running state (see ``initialState``).
    @inline(__always)
    static func update(_ state: UInt32, with bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard Self.hardwareAvailable else { return Self.softwareUpdate(state, with: bytes) }
        return Self.hardwareUpdate(state, with: bytes)
    }

    /// ``update(_:with:)`` by the processor's instruction. - Precondition: ``hardwareAvailable``.
    static func hardwareUpdate(_ state: UInt32, with bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return state }
        return reactord_crc32c_update(state, base, bytes.count)
    }

    /// ``update(_:with:)`` by tables, on any processor.
    static func softwareUpdate(_ state: UInt32, with bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard var pointer = bytes.baseAddress else {
            return state
        }
        var remaining = bytes.count
        var crc = state
        Self.tables.withUnsafeBufferPointer { table in
            while remaining >= 8 {
                let low = UInt32(littleEndian: pointer.loadUnaligned(as: UInt32.self)) ^ crc
                let high = UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                crc = table[7 * 256 + Int(low & 0xFF)] ^ table[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ table[5 * 256 + Int((low >> 16) & 0xFF)] ^ table[4 * 256 + Int(low >> 24)]
                    ^ table[3 * 256 + Int(high & 0xFF)] ^ table[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ table[1 * 256 + Int((high >> 16) & 0xFF)] ^ table[Int(high >> 24)]
                pointer += 8
                remaining -= 8
            }
            while remaining > 0 {
                let byte = pointer.load(as: UInt8.self)
                crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
                pointer += 1
                remaining -= 1
            }
        }
        return crc
    }

    /// The CRC-32C of `bytes`.
    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { Self.checksum($0) }
    }
}
