// SipHash-1-3 over raw bytes with a 128-bit key: the keyspace's hash. Eight bytes per step (the old
// `Dictionary<[UInt8], _>` fed `Hasher` one byte at a time). Pure arithmetic: no allocation, no clock.
//
// Why a keyed PRF rather than a faster unkeyed mix: the keys of the table come from the network. SipHash is
// designed so that, without the 128-bit key, outputs cannot be predicted or made to collide better than by
// chance; the key comes from getrandom(2) (``SystemRandomNumberGenerator``) once per process and never
// leaves it. A client that floods the table therefore sees its keys spread uniformly over the buckets, and
// with a load factor at most 1 every chain stays O(1) in expectation whatever keys it sends.

/// SipHash-1-3 (one compression round, three finalisation rounds), keyed.
struct SipHash13: Sendable {
    let k0: UInt64
    let k1: UInt64

    /// The process-wide key, drawn once from the kernel's CSPRNG.
    static let processKey: SipHash13 = {
        var generator = SystemRandomNumberGenerator()
        return SipHash13(k0: generator.next(), k1: generator.next())
    }()

    @inline(__always)
    private static func round(_ v0: inout UInt64, _ v1: inout UInt64, _ v2: inout UInt64, _ v3: inout UInt64) {
        v0 &+= v1
        v1 = v1.rotatedLeft(13)
        v1 ^= v0
        v0 = v0.rotatedLeft(32)
        v2 &+= v3
        v3 = v3.rotatedLeft(16)
        v3 ^= v2
        v0 &+= v3
        v3 = v3.rotatedLeft(21)
        v3 ^= v0
        v2 &+= v1
        v1 = v1.rotatedLeft(17)
        v1 ^= v2
        v2 = v2.rotatedLeft(32)
    }

    /// The 64-bit SipHash-1-3 of `count` bytes at `bytes` (which may be nil when `count` is 0).
    @inline(__always)
    func hash(_ bytes: UnsafeRawPointer?, count: Int) -> UInt64 {
        var v0 = self.k0 ^ 0x736f_6d65_7073_6575
        var v1 = self.k1 ^ 0x646f_7261_6e64_6f6d
        var v2 = self.k0 ^ 0x6c79_6765_6e65_7261
        var v3 = self.k1 ^ 0x7465_6462_7974_6573
        var offset = 0
        let whole = count & ~7
        if let bytes {
            while offset < whole {
                let m = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                v3 ^= m
                Self.round(&v0, &v1, &v2, &v3)
                v0 ^= m
                offset += 8
            }
        }
        var last = UInt64(truncatingIfNeeded: count) << 56
        let tail = count - whole
        if tail > 0, let bytes {
            if count >= 8 {
                // The last 8 bytes overlap bytes already consumed: shift those out.
                let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self))
                last |= word >> UInt64((8 - tail) * 8)
            } else {
                for index in 0..<tail {
                    last |= UInt64(bytes.load(fromByteOffset: index, as: UInt8.self)) << UInt64(index * 8)
                }
            }
        }
        v3 ^= last
        Self.round(&v0, &v1, &v2, &v3)
        v0 ^= last
        v2 ^= 0xff
        Self.round(&v0, &v1, &v2, &v3)
        Self.round(&v0, &v1, &v2, &v3)
        Self.round(&v0, &v1, &v2, &v3)
        return v0 ^ v1 ^ v2 ^ v3
    }
}

extension UInt64 {
    @inline(__always)
    func rotatedLeft(_ count: UInt64) -> UInt64 {
        (self << count) | (self >> (64 &- count))
    }
}
