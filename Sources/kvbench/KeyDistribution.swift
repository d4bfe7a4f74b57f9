// Which key each request uses: uniform over the keyspace, or Zipf (key 0 the most popular, key r
// drawn with probability proportional to 1/(r+1)^S, by ZipfSampler). It must stay
// allocation-free: it runs once per request.

/// `--distribution uniform|zipf[:S]`.
enum KeyDistribution: Equatable, Sendable, CustomStringConvertible {
    case uniform
    /// Popularity of the key of rank r (1-based) proportional to r^-exponent.
    case zipf(exponent: Double)

    static let defaultZipfExponent = 0.99

    /// Parses `uniform`, `zipf` or `zipf:S` with 0 < S <= 10.
    init?(_ text: String) {
        if text == "uniform" {
            self = .uniform
            return
        }
        if text == "zipf" {
            self = .zipf(exponent: Self.defaultZipfExponent)
            return
        }
        guard text.hasPrefix("zipf:"), let s = Double(text.dropFirst(5)), s > 0, s <= 10 else { return nil }
        self = .zipf(exponent: s)
    }

    var description: String {
        switch self {
        case .uniform: return "uniform"
        case .zipf(let s): return "zipf:\(s)"
        }
    }
}

/// Draws key numbers in `0..<keyspace` from a ``KeyDistribution``. A value type: each connection
/// owns its copy and its own PRNG.
struct KeyChooser {
    private let keyspace: UInt64
    private let zipf: ZipfSampler?

    init(distribution: KeyDistribution, keyspace: Int) {
        self.keyspace = UInt64(keyspace)
        switch distribution {
        case .uniform: self.zipf = nil
        case .zipf(let s): self.zipf = ZipfSampler(count: keyspace, exponent: s)
        }
    }

    @inline(__always)
    func next(_ rng: inout WyRand) -> Int {
        if let zipf = self.zipf { return zipf.sample(&rng) - 1 }
        return Int(truncatingIfNeeded: rng.next(below: self.keyspace))
    }
}
