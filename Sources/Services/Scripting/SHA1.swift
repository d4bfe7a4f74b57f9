// SHA-1 (FIPS 180-4), for the names of cached scripts and `redis.sha1hex`: Redis names a script by
// the lower-case hex SHA-1 of its body. Not used for anything that needs collision resistance.

enum SHA1 {
    /// The 40 lower-case hex digits of the SHA-1 of `message`.
    static func hex<C: Collection>(_ message: C) -> [UInt8] where C.Element == UInt8 {
        var state: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
        var block = [UInt8]()
        block.reserveCapacity(64)
        var length: UInt64 = 0
        for byte in message {
            block.append(byte)
            length &+= 1
            if block.count == 64 {
                Self.compress(block, &state)
                block.removeAll(keepingCapacity: true)
            }
        }
        block.append(0x80)
        if block.count > 56 {
            while block.count < 64 { block.append(0) }
            Self.compress(block, &state)
            block.removeAll(keepingCapacity: true)
        }
        while block.count < 56 { block.append(0) }
        let bits = length &* 8
        for shift in stride(from: 56, through: 0, by: -8) { block.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        Self.compress(block, &state)
        var digits = [UInt8]()
        digits.reserveCapacity(40)
        for word in [state.0, state.1, state.2, state.3, state.4] {
            for shift in stride(from: 28, through: 0, by: -4) {
                let nibble = UInt8((word >> UInt32(shift)) & 0xF)
                digits.append(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
            }
        }
        return digits
    }

    private static func compress(_ block: [UInt8], _ state: inout (UInt32, UInt32, UInt32, UInt32, UInt32)) {
        var w = [UInt32](repeating: 0, count: 80)
        for i in 0..<16 {
            w[i] = UInt32(block[4 * i]) << 24 | UInt32(block[4 * i + 1]) << 16 | UInt32(block[4 * i + 2]) << 8
                | UInt32(block[4 * i + 3])
        }
        for i in 16..<80 {
            let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
            w[i] = x << 1 | x >> 31
        }
        var (a, b, c, d, e) = state
        for i in 0..<80 {
            let f: UInt32
            let k: UInt32
            switch i {
            case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
            case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
            case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
            default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
            }
            let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
            e = d
            d = c
            c = b << 30 | b >> 2
            b = a
            a = temp
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d, state.4 &+ e)
    }
}
