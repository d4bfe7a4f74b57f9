// Redis-style glob matching for KEYS and SCAN MATCH, over raw bytes: `*`, `?`, `[...]` (with `^`, ranges
// and `\` escapes), and `\x` for a literal x. Iterative with one backtrack point, so a hostile pattern such
// as `*a*a*a*a*b` costs O(pattern × string), never exponential time (Redis's own matcher recurses).

/// Glob patterns as Redis's `stringmatchlen` reads them: case-sensitive (KEYS, SCAN MATCH), or ASCII
/// case-insensitive (CONFIG GET, its `nocase`).
public enum Glob {
    private static let star = UInt8(ascii: "*")
    private static let question = UInt8(ascii: "?")
    private static let open = UInt8(ascii: "[")
    private static let close = UInt8(ascii: "]")
    private static let caret = UInt8(ascii: "^")
    private static let dash = UInt8(ascii: "-")
    private static let backslash = UInt8(ascii: "\\")

    /// Whether `string` matches `pattern`.
    ///
    /// Edge cases follow Redis: a `\` at the very end of the pattern is a literal backslash; an unterminated
    /// `[` class runs to the end of the pattern; in a class, `a-z` is a range (reversed ranges are swapped)
    /// and `\]` a literal `]`; `[^...]` negates.
    public static func matches(
        pattern: UnsafeRawBufferPointer, _ string: UnsafeRawBufferPointer, ignoringCase: Bool = false
    ) -> Bool {
        let pn = pattern.count
        let sn = string.count
        var p = 0
        var s = 0
        // Pattern index just after the last `*` seen, and the string index that star currently absorbs up to.
        var starP = -1
        var starS = 0
        while s < sn {
            if p < pn {
                let token = pattern[p]
                let c = Self.folded(string[s], ignoringCase)
                if token == Self.star {
                    while p < pn && pattern[p] == Self.star { p += 1 }
                    if p == pn { return true }
                    starP = p
                    starS = s
                    continue
                }
                var consumed = false
                var next = p + 1
                if token == Self.question {
                    consumed = true
                } else if token == Self.open {
                    let (matched, after) = Self.matchClass(pattern, from: p + 1, c, ignoringCase)
                    consumed = matched
                    next = after
                } else if token == Self.backslash && p + 1 < pn {
                    consumed = Self.folded(pattern[p + 1], ignoringCase) == c
                    next = p + 2
                } else {
                    consumed = Self.folded(token, ignoringCase) == c
                }
                if consumed {
                    p = next
                    s += 1
                    continue
                }
            }
            // Mismatch (or pattern exhausted): let the last star absorb one more byte.
            guard starP >= 0 else { return false }
            starS += 1
            s = starS
            p = starP
        }
        while p < pn && pattern[p] == Self.star { p += 1 }
        return p == pn
    }

    /// Convenience over arrays.
    public static func matches(pattern: [UInt8], _ string: [UInt8], ignoringCase: Bool = false) -> Bool {
        pattern.withUnsafeBytes { p in
            string.withUnsafeBytes { s in Self.matches(pattern: p, s, ignoringCase: ignoringCase) }
        }
    }

    /// `byte` lowercased when `ignoringCase` and it is an ASCII capital.
    @inline(__always)
    private static func folded(_ byte: UInt8, _ ignoringCase: Bool) -> UInt8 {
        ignoringCase && byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// Matches one byte against the class starting at `start` (just after `[`).
    /// - Returns: whether it matched, and the pattern index after the class.
    private static func matchClass(
        _ pattern: UnsafeRawBufferPointer, from start: Int, _ c: UInt8, _ ignoringCase: Bool
    ) -> (Bool, Int) {
        let pn = pattern.count
        var q = start
        var negate = false
        if q < pn && pattern[q] == Self.caret {
            negate = true
            q += 1
        }
        var matched = false
        while true {
            let remaining = pn - q
            if remaining >= 2 && pattern[q] == Self.backslash {
                q += 1
                if Self.folded(pattern[q], ignoringCase) == c { matched = true }
            } else if remaining == 0 {
                q -= 1  // unterminated: the class ends with the pattern
                break
            } else if pattern[q] == Self.close {
                break
            } else if remaining >= 3 && pattern[q + 1] == Self.dash {
                var low = Self.folded(pattern[q], ignoringCase)
                var high = Self.folded(pattern[q + 2], ignoringCase)
                if low > high { swap(&low, &high) }
                if c >= low && c <= high { matched = true }
                q += 2
            } else if Self.folded(pattern[q], ignoringCase) == c {
                matched = true
            }
            q += 1
        }
        return (negate ? !matched : matched, q + 1)
    }
}
