// Zipf variates by rejection-inversion (Hörmann and Derflinger, "Rejection-inversion to generate
// variates from monotone discrete distributions", 1996): O(1) per draw with no table, so a
// keyspace of 10^12 costs nothing to set up. No allocation; runs once per request.

#if canImport(Glibc)
import Glibc
#endif

/// Zipf on ranks `1...count` by rejection-inversion. The continuous hat function is x^-s; a
/// uniform draw is mapped through the inverse of its integral and rounded to a rank, and
/// accepted if it falls under the discrete probability (almost always: the expected number of
/// tries is close to 1 for every s and count).
struct ZipfSampler: Sendable {
    let count: Int
    let exponent: Double
    private let hIntegralX1: Double
    private let hIntegralN: Double
    /// Ranks within this distance of their continuous draw are accepted without the exact test.
    private let shortcut: Double

    init(count: Int, exponent: Double) {
        precondition(count >= 1 && exponent > 0)
        self.count = count
        self.exponent = exponent
        self.hIntegralX1 = Self.hIntegral(1.5, exponent) - 1
        self.hIntegralN = Self.hIntegral(Double(count) + 0.5, exponent)
        self.shortcut = 2 - Self.hIntegralInverse(Self.hIntegral(2.5, exponent) - Self.h(2, exponent), exponent)
    }

    /// A rank in `1...count`.
    @inline(__always)
    func sample(_ rng: inout WyRand) -> Int {
        while true {
            let u = self.hIntegralN + rng.nextUnit() * (self.hIntegralX1 - self.hIntegralN)
            let x = Self.hIntegralInverse(u, self.exponent)
            var k = Int(x + 0.5)
            if k < 1 { k = 1 } else if k > self.count { k = self.count }
            let kd = Double(k)
            if kd - x <= self.shortcut || u >= Self.hIntegral(kd + 0.5, self.exponent) - Self.h(kd, self.exponent) {
                return k
            }
        }
    }

    /// The integral of x^-s from 1 to x, written so s near 1 loses no precision:
    /// ((x^(1-s)) - 1) / (1-s), which is log(x) at s = 1.
    private static func hIntegral(_ x: Double, _ s: Double) -> Double {
        let logX = log(x)
        return Self.expm1OverX((1 - s) * logX) * logX
    }

    private static func h(_ x: Double, _ s: Double) -> Double { exp(-s * log(x)) }

    private static func hIntegralInverse(_ x: Double, _ s: Double) -> Double {
        var t = x * (1 - s)
        if t < -1 { t = -1 }  // rounding at the far end of the range; the limit of the domain
        return exp(Self.log1pOverX(t) * x)
    }

    /// log(1+x)/x, by its series near 0 where the quotient would cancel.
    private static func log1pOverX(_ x: Double) -> Double {
        abs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }

    /// (e^x - 1)/x, by its series near 0.
    private static func expm1OverX(_ x: Double) -> Double {
        abs(x) > 1e-8 ? expm1(x) / x : 1 + x * 0.5 * (1 + x / 3 * (1 + 0.25 * x))
    }
}
