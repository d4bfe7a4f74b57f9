// INCRBYFLOAT's arithmetic as Redis does it: C `long double` (x87 80-bit, Swift's Float80 on
// x86-64 Linux), parsed as strtold would accept it and written as `%.17Lf` with trailing zeros
// cut. Services has no Glibc, so the fixed-point formatting is done here by exact integer
// arithmetic (the digits printf would give, rounded half to even on the exact binary value).

/// Redis's long-double helpers.
enum LongDouble {
    #if arch(x86_64) || arch(i386)
    typealias Value = Float80
    #else
    typealias Value = Double  // where C long double is not 80-bit, Redis's digits differ too
    #endif

    /// Parses `bytes` as Redis's `string2ld` does: no leading blank, the whole text a number,
    /// not NaN, and no overflow to infinity (an explicit `inf` is accepted).
    static func parse(_ bytes: ArraySlice<UInt8>) -> Value? {
        guard let first = bytes.first, bytes.count < 5 * 1024 else { return nil }
        guard first != ASCII.space, !(9...13).contains(first), !bytes.contains(0) else { return nil }
        guard let value = Value(String(decoding: bytes, as: UTF8.self)), !value.isNaN else { return nil }
        if value.isInfinite {
            // strtold reports an overflow (ERANGE), which Redis refuses; a written `inf` it takes.
            let lowered = bytes.map(ASCII.lowercased)
            guard lowered.starts(with: Array("inf".utf8)) || lowered.starts(with: Array("-inf".utf8))
                || lowered.starts(with: Array("+inf".utf8)) else { return nil }
        }
        return value
    }

    /// `value` as `%.17Lf` with trailing zeros (and a trailing point) cut, `-0` written `0`.
    /// - Precondition: `value` is finite.
    static func format(_ value: Value) -> [UInt8] {
        precondition(value.isFinite)
        var text: [UInt8] = []
        if value.sign == .minus { text.append(ASCII.minus) }
        let magnitude = value.magnitude
        if magnitude == 0 {
            text.append(ASCII.zero)
        } else {
            // magnitude = m * 2^k exactly, m an integer of at most 64 bits.
            let k = Int(magnitude.exponent) - (Value.significandBitCount)
            let m = UInt64(magnitude.significand * Value(sign: .plus, exponent: Value.Exponent(Value.significandBitCount), significand: 1))
            if k >= 0 {
                Self.appendInteger(m, shiftedLeft: k, to: &text)
            } else {
                Self.appendFraction(m, shiftedRight: -k, to: &text)
            }
        }
        if text == [ASCII.minus, ASCII.zero] { return [ASCII.zero] }
        return text
    }

    private static let scale: UInt128 = 100_000_000_000_000_000  // 10^17

    /// Writes round(m * 10^17 / 2^s) as `integer.fraction`, the fraction cut of trailing zeros.
    private static func appendFraction(_ m: UInt64, shiftedRight s: Int, to text: inout [UInt8]) {
        let product = UInt128(m) * Self.scale  // < 2^121
        var scaled: UInt128 = 0
        if s < 128 {
            scaled = product >> s
            let remainder = product & ((UInt128(1) << s) - 1)
            let half = UInt128(1) << (s - 1)
            if remainder > half || (remainder == half && scaled & 1 == 1) { scaled += 1 }
        }
        let integer = scaled / Self.scale
        var fraction = scaled % Self.scale
        text.appendDecimal(UInt64(integer))  // < 2^64: m / 2^s with s >= 1
        guard fraction != 0 else { return }
        var digits = [UInt8](repeating: ASCII.zero, count: 17)
        for i in stride(from: 16, through: 0, by: -1) {
            digits[i] = ASCII.zero + UInt8(fraction % 10)
            fraction /= 10
        }
        while digits.last == ASCII.zero { digits.removeLast() }
        text.append(UInt8(ascii: "."))
        text.append(contentsOf: digits)
    }

    /// Writes m * 2^k in decimal (an integer: no fraction to print), by base-10^9 limbs.
    private static func appendInteger(_ m: UInt64, shiftedLeft k: Int, to text: inout [UInt8]) {
        let base: UInt64 = 1_000_000_000
        var limbs: [UInt64] = [m % base, (m / base) % base, m / base / base]  // little-endian
        var remaining = k
        while remaining > 0 {
            let step = min(remaining, 30)
            var carry: UInt64 = 0
            for i in limbs.indices {
                let v = (limbs[i] << UInt64(step)) + carry
                limbs[i] = v % base
                carry = v / base
            }
            while carry > 0 {
                limbs.append(carry % base)
                carry /= base
            }
            remaining -= step
        }
        while limbs.count > 1 && limbs.last == 0 { limbs.removeLast() }
        text.appendDecimal(limbs.last!)
        for limb in limbs.dropLast().reversed() {
            var digits = [UInt8](repeating: ASCII.zero, count: 9)
            var v = limb
            for i in stride(from: 8, through: 0, by: -1) {
                digits[i] = ASCII.zero + UInt8(v % 10)
                v /= 10
            }
            text.append(contentsOf: digits)
        }
    }
}
