// A score's text as C's `%.17g` writes it (what Redis 7.0's addReplyDouble sends), written by pointer
// without printf. printf through Swift's varargs costs an argument-list allocation and a locale-aware
// conversion per score; a range reply with scores writes hundreds of them. Two exact fast paths cover
// what sorted sets hold: whole numbers below 10^17 (printed whole by `%.17g`) and other values from
// 10^-4 up to 2^53, whose 17 significant digits are computed exactly in 128-bit integers (the score is
// m·2^-s with m below 2^53, so m·10^k fits for the k needed) and rounded half to even, as glibc's
// printf rounds the exact binary value. Anything else (exponent notation) goes to vsnprintf.

import Glibc

extension ScoreText {
    /// The most bytes ``format(_:into:)`` writes (`-1.2345678901234567e-308` and printf's NUL).
    static let formattedCapacity = 32

    /// Writes `value` as `%.17g` (`inf` / `-inf` for infinities, as Redis spells them) at `text`, which
    /// has room for ``formattedCapacity`` bytes. - Returns: the length written (no NUL counted).
    static func format(_ value: Double, into text: UnsafeMutablePointer<UInt8>) -> Int {
        if value.isInfinite {
            return value < 0 ? Self.copy("-inf", to: text) : Self.copy("inf", to: text)
        }
        var cursor = text
        if value.sign == .minus {
            cursor.pointee = UInt8(ascii: "-")
            cursor += 1
        }
        let magnitude = value.magnitude
        // Below 10^17 the conversion to an integer is exact for a whole magnitude (no call to trunc).
        if magnitude < 1e17, Double(UInt64(magnitude)) == magnitude {
            return cursor - text + Self.writeDecimal(UInt64(magnitude), to: cursor)
        }
        if magnitude >= 1e-4 && magnitude < 9_007_199_254_740_992, let written = Self.fixed(magnitude, into: cursor) {
            return cursor - text + written
        }
        return Self.printf(value, into: text)
    }

    /// A non-integral magnitude in [10^-4, 2^53) in `%.17g`'s fixed notation, or nil when its decimal
    /// exponent after rounding is below -4 (exponent notation, left to printf).
    private static func fixed(_ magnitude: Double, into text: UnsafeMutablePointer<UInt8>) -> Int? {
        // magnitude = m / 2^s exactly; s ≥ 1 (not an integer) and at most 52 + 14 here.
        let m = UInt128(magnitude.significandBitPattern | (1 << 52))
        let s = 52 - Int(magnitude.exponent)
        // The decimal exponent x: 17 digits are round(m·10^(16-x) / 2^s), in [10^16, 10^17).
        var x = Int(floor(log10(magnitude)))
        var digits: UInt64 = 0
        for _ in 0..<3 {
            let k = 16 - x
            guard k >= 0 && k < Self.powersOfTen.count else { return nil }
            let product = m * Self.powersOfTen[k]
            var q = product >> s
            let remainder = product & ((1 << s) - 1)
            let half = UInt128(1) << (s - 1)
            if remainder > half || (remainder == half && q & 1 == 1) { q += 1 }
            if q >= 100_000_000_000_000_000 {
                x += 1
            } else if q < 10_000_000_000_000_000 {
                x -= 1
            } else {
                digits = UInt64(q)
                break
            }
        }
        guard digits != 0, x >= -4 else { return nil }
        // The 17 digits, most significant first.
        var all: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of room for 17 digits
        return withUnsafeMutableBytes(of: &all) { raw in
            let d = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            var rest = digits
            for i in stride(from: 16, through: 0, by: -1) {
                d[i] = UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            }
            var last = 16
            while last > 0 && d[last] == 0 { last -= 1 }
            var cursor = text
            if x >= 0 {
                for i in 0...x {
                    cursor.pointee = UInt8(ascii: "0") &+ d[i]
                    cursor += 1
                }
                if last > x {
                    cursor.pointee = UInt8(ascii: ".")
                    cursor += 1
                    for i in (x + 1)...last {
                        cursor.pointee = UInt8(ascii: "0") &+ d[i]
                        cursor += 1
                    }
                }
            } else {
                cursor[0] = UInt8(ascii: "0")
                cursor[1] = UInt8(ascii: ".")
                cursor += 2
                for _ in 0..<(-x - 1) {
                    cursor.pointee = UInt8(ascii: "0")
                    cursor += 1
                }
                for i in 0...last {
                    cursor.pointee = UInt8(ascii: "0") &+ d[i]
                    cursor += 1
                }
            }
            return cursor - text
        }
    }

    /// 10^0 … 10^21: m·10^k stays below 2^53·2^70.
    private static let powersOfTen: [UInt128] = {
        var powers: [UInt128] = [1]
        for _ in 1...21 { powers.append(powers.last! * 10) }
        return powers
    }()

    /// `n` in decimal at `text`. - Returns: the digits written.
    @inline(__always)
    static func writeDecimal(_ n: UInt64, to text: UnsafeMutablePointer<UInt8>) -> Int {
        var digits = 1
        var rest = n
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        rest = n
        var index = digits - 1
        repeat {
            text[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
            index -= 1
        } while index >= 0
        return digits
    }

    private static func copy(_ literal: StaticString, to text: UnsafeMutablePointer<UInt8>) -> Int {
        text.update(from: literal.utf8Start, count: literal.utf8CodeUnitCount)
        return literal.utf8CodeUnitCount
    }

    /// The C library's `%.17g`, for what the fast paths leave.
    static func printf(_ value: Double, into text: UnsafeMutablePointer<UInt8>) -> Int {
        let length = text.withMemoryRebound(to: CChar.self, capacity: Self.formattedCapacity) { chars in
            withVaList([value]) { vsnprintf(chars, Self.formattedCapacity, "%.17g", $0) }
        }
        return Int(length)
    }

    /// ``format(_:into:)`` as an array.
    static func formatted(_ value: Double) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.formattedCapacity) { buffer, count in
            count = Self.format(value, into: buffer.baseAddress!)
        }
    }
}
