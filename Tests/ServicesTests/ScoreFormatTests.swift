// ScoreText.format (Sources/Services/ScoreFormat.swift) against the C library's `%.17g`, byte for byte:
// random bit patterns over every exponent, whole numbers around 10^17, decimals as people write them,
// values around the fixed/exponent switch (10^-4) and the 17-digit carry (…999 rounding up), exact ties
// at the 18th digit (rounded half to even), signs and zeros. And the sorted-set range run
// (ReplyWriter+SortedSetRuns.swift) writes what one header, bulk and score call per element writes.

import Glibc
@testable import Services
import Testing

@Suite struct ScoreFormatTests {
    static func reference(_ value: Double) -> [UInt8] {
        if value.isInfinite { return Array((value < 0 ? "-inf" : "inf").utf8) }
        var buffer = [CChar](repeating: 0, count: 64)
        let length = withVaList([value]) { vsnprintf(&buffer, 64, "%.17g", $0) }
        return buffer[0..<Int(length)].map { UInt8(bitPattern: $0) }
    }

    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (state >> 32) << 32 | ((state &* 0x9E37_79B9_7F4A_7C15) >> 32)
        }
    }

    static func samples() -> [Double] {
        var g = Generator(state: 25)
        var values: [Double] = [0, -0.0, 1, -1, 0.5, 0.1, 0.2, 0.3, 1.5, 2.5, 1e-4, 9.99999999999999e-5, 1e-5, 1e17, 1e17 - 16,
                                99_999_999_999_999_984, 1e16, 9_007_199_254_740_991.0, 9_007_199_254_740_992.0,
                                4_503_599_627_370_495.5, 0.999_999_999_999_999_9, 9.999_999_999_999_999_9,
                                .greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude, .infinity,
                                -.infinity, 3.141_592_653_589_793, 1_700_000_000.123, 123_456.789]
        for _ in 0..<40_000 {
            // Any finite bit pattern.
            let bits = g.next()
            let any = Double(bitPattern: bits)
            if any.isFinite { values.append(any) }
            // A magnitude in the fast path's range and around it: 10^-6 … 10^18.
            let exponent = Int(g.next() % 80) - 20
            values.append(Double(sign: bits & 1 == 0 ? .plus : .minus, exponent: exponent,
                                 significand: 1 + Double(g.next() % (1 << 52)) / 4_503_599_627_370_496))
            // Decimals as written: n / 10^d.
            let d = Int(g.next() % 12)
            values.append(Double(Int64(bitPattern: g.next()) % 10_000_000_000) / pow(10, Double(d)))
            // Few binary digits after the point: exact ties at the 18th significant digit happen here.
            let m = Double(g.next() % (1 << 30) | 1)
            values.append(m / Double(1 << Int(g.next() % 50 + 1)))
        }
        return values
    }

    @Test func matchesPrintf() {
        var mismatches: [(Double, String, String)] = []
        for value in Self.samples() {
            let ours = ScoreText.formatted(value)
            let theirs = Self.reference(value)
            if ours != theirs && mismatches.count < 10 {
                mismatches.append((value, String(decoding: ours, as: UTF8.self), String(decoding: theirs, as: UTF8.self)))
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    @Test func tiesRoundHalfToEven() {
        // 2^-k for k in 14...40 have exact decimal expansions; those with 18 significant digits end
        // in 5 and are ties at 17 digits.
        var ties = 0
        for k in 1...60 {
            for m in stride(from: 1.0, through: 4_001, by: 2) {
                let value = m / pow(2, Double(k))
                #expect(ScoreText.formatted(value) == Self.reference(value), "\(m) / 2^\(k)")
                var exact = [CChar](repeating: 0, count: 128)
                let length = withVaList([value]) { vsnprintf(&exact, 128, "%.40g", $0) }
                let digits = exact[0..<Int(length)].map { UInt8(bitPattern: $0) }.filter { (48...57).contains($0) }
                let significant = digits.drop { $0 == 48 }.count
                if significant == 18 { ties += 1 }
            }
        }
        #expect(ties > 0)
    }

    @Test(arguments: [ReplyEncoding.line, .resp2, .resp3], [false, true])
    func rangeRunWritesWhatOneCallPerElementWrites(encoding: ReplyEncoding, withScores: Bool) {
        var g = Generator(state: withScores ? 3 : 4)
        var elements: [([UInt8], Double)] = []
        for i in 0..<300 {
            let member = (0..<Int(g.next() % (i == 0 ? 1 : 70))).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            let score: Double
            switch i % 4 {
            case 0: score = Double(Int64(bitPattern: g.next()) % 1_000_000_000_000)
            case 1: score = Double(g.next() % 100_000) / 1_000
            case 2: score = Double(bitPattern: g.next())
            default: score = i % 8 == 3 ? .infinity : -.infinity
            }
            elements.append((member, score.isNaN ? 0 : score))
        }
        for count in [0, 1, 300] {
            var one = ReplyWriter(encoding: encoding, output: Array("+queued\r\n".utf8))
            var run = one
            one.sortedSetElements(Array(elements.prefix(count)), withScores: withScores)
            run.sortedSetRun(withScores: withScores) { header, element in
                header(count)
                for (member, score) in elements.prefix(count) { member.withUnsafeBytes { element($0, score) } }
            }
            #expect(run.output == one.output)
        }
    }
}
