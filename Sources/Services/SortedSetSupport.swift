// What the sorted-set commands share: scores parsed as Redis 7.0 parses them (strtod, with
// getDoubleFromObject's refusals for values and zslParseRange's looser rules for bounds), scores
// printed as Redis 7.0 prints them (`%.17g`, `inf`, `-inf`; RESP3 `,` doubles), the typed read of a
// key, and element effects for one member.

import Glibc
import Store

enum ScoreText {
    /// strtod over a NUL-terminated copy: the value, where it stopped, and errno.
    private static func strtod(_ bytes: some Collection<UInt8>) -> (value: Double, end: Int, rangeError: Bool, text: [UInt8]) {
        var text = [UInt8](bytes)
        text.append(0)
        return text.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                var end: UnsafeMutablePointer<CChar>?
                errno = 0
                let value = Glibc.strtod(chars.baseAddress!, &end)
                let rangeError = errno == ERANGE
                return (value, end.map { UnsafePointer($0) - chars.baseAddress! } ?? 0, rangeError, text)
            }
        }
    }

    /// A score or increment as ZADD reads it (Redis's getDoubleFromObject): the whole argument a
    /// number, no leading space, no overflow or underflow to zero, not NaN.
    static func value(_ bytes: ArraySlice<UInt8>) -> Double? {
        if let integer = Self.integer(bytes) { return integer }
        guard let first = bytes.first, isspace(Int32(first)) == 0 else { return nil }
        let (value, end, rangeError, _) = Self.strtod(bytes)
        guard end == bytes.count, !value.isNaN else { return nil }
        if rangeError && (value.isInfinite || value == 0) { return nil }
        return value
    }

    /// A plain decimal integer (an optional `-`, then 1 to 15 digits), or nil for any other text. Such
    /// a number is exact in a Double, so this is what strtod reads from it (`-0` included), without
    /// the NUL-terminated copy strtod needs: the common case of ZADD's scores and of range bounds.
    @inline(__always)
    static func integer(_ bytes: ArraySlice<UInt8>) -> Double? {
        // By pointer: a slice's subscript checks its bounds on every digit.
        bytes.withUnsafeBytes { Self.integer($0) }
    }

    /// ``integer(_:)`` of borrowed bytes.
    @inline(__always)
    static func integer(_ text: UnsafeRawBufferPointer) -> Double? {
        var index = 0
        let negative = text.count > 0 && text[0] == UInt8(ascii: "-")
        if negative { index = 1 }
        guard (1...15).contains(text.count - index) else { return nil }
        var n: Int64 = 0
        while index < text.count {
            let digit = text[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            n = n &* 10 &+ Int64(digit)
            index += 1
        }
        let value = Double(n)
        return negative ? -value : value
    }

    /// ``value(_:)`` of argument `index`: a plain integer read where it lies (no slice of the request
    /// made and released), anything else as ``value(_:)`` reads it.
    @inline(__always)
    static func value(_ arguments: ArgumentVector, _ index: Int) -> Double? {
        if let integer = arguments.withUnsafeBytes(index, { Self.integer($0) }) { return integer }
        return Self.value(arguments[index])
    }

    /// `+inf`, `-inf` or `inf` as written (the usual open end of a range), what strtod reads from them,
    /// without its NUL-terminated copy; nil for any other text (strtod's other spellings go to it).
    @inline(__always)
    static func infinity(_ bytes: ArraySlice<UInt8>) -> Double? {
        var index = bytes.startIndex
        var sign = 1.0
        if bytes.count == 4 {
            switch bytes[index] {
            case UInt8(ascii: "+"): break
            case UInt8(ascii: "-"): sign = -1
            default: return nil
            }
            index += 1
        } else if bytes.count != 3 {
            return nil
        }
        guard bytes[index] == UInt8(ascii: "i"), bytes[index + 1] == UInt8(ascii: "n"), bytes[index + 2] == UInt8(ascii: "f") else {
            return nil
        }
        return sign * .infinity
    }

    /// A range bound as ZRANGEBYSCORE reads it (zslParseRange): `(` makes it exclusive; strtod must stop
    /// at the end of the text; NaN is refused.
    static func bound(_ bytes: ArraySlice<UInt8>) -> (value: Double, exclusive: Bool)? {
        let exclusive = bytes.first == UInt8(ascii: "(")
        let text = exclusive ? bytes.dropFirst() : bytes
        if let integer = Self.integer(text) { return (integer, exclusive) }
        if let infinity = Self.infinity(text) { return (infinity, exclusive) }
        let (value, end, _, terminated) = Self.strtod(text)
        guard terminated[end] == 0, !value.isNaN else { return nil }
        return (value, exclusive)
    }

    /// A lexicographic bound (zslParseLexRangeItem): `-` and `+` alone, or `(`/`[` then the member.
    enum LexBound {
        case minusInfinity
        case plusInfinity
        case member([UInt8], exclusive: Bool)
    }

    static func lexBound(_ bytes: ArraySlice<UInt8>) -> LexBound? {
        guard let first = bytes.first else { return nil }
        switch first {
        case UInt8(ascii: "+"): return bytes.count == 1 ? .plusInfinity : nil
        case UInt8(ascii: "-"): return bytes.count == 1 ? .minusInfinity : nil
        case UInt8(ascii: "("): return .member(Array(bytes.dropFirst()), exclusive: true)
        case UInt8(ascii: "["): return .member(Array(bytes.dropFirst()), exclusive: false)
        default: return nil
        }
    }

    /// The score as Redis 7.0's addReplyDouble writes it: `%.17g`, `inf`, `-inf`.
    static func reply(_ value: Double) -> [UInt8] {
        Self.formatted(value)
    }

    /// The score as Redis 7.0's d2string writes it (ZSCAN's scores, for both encodings): integers
    /// exactly, else `%.17g`.
    static func stored(_ value: Double) -> [UInt8] {
        if value.isInfinite { return value < 0 ? Array("-inf".utf8) : Array("inf".utf8) }
        if value == 0 { return value.sign == .minus ? Array("-0".utf8) : Array("0".utf8) }
        // Redis's double2ll: within ±LLONG_MAX/2 and whole, printed as an integer.
        if value >= -4611686018427387903 && value <= 4611686018427387903 && value == value.rounded(.towardZero) {
            var text: [UInt8] = []
            text.appendDecimal(Int64(value))
            return text
        }
        return Self.formatted(value)
    }
}

extension ReplyWriter {
    /// A score: `,<d>` (RESP3) or a bulk string (RESP2), as Redis 7.0's addReplyDouble.
    mutating func score(_ value: Double) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: ScoreText.formattedCapacity) { buffer in
            let text = UnsafeBufferPointer(start: buffer.baseAddress!, count: ScoreText.format(value, into: buffer.baseAddress!))
            guard self.encoding == .resp3 else { return self.bulk(text) }
            self.output.append(UInt8(ascii: ","))
            self.output.append(contentsOf: text)
            self.output.append("\r\n")
        }
    }

    /// Members (and scores): a flat array in RESP2, pairs in RESP3 when scores are shown.
    mutating func sortedSetElements(_ elements: [([UInt8], Double)], withScores: Bool) {
        self.sortedSetHeader(elements.count, withScores: withScores)
        for (member, score) in elements { self.sortedSetElement(member, score, withScores: withScores) }
    }

    mutating func sortedSetHeader(_ count: Int, withScores: Bool) {
        self.arrayHeader(withScores && self.encoding != .resp3 ? 2 * count : count)
    }

    mutating func sortedSetElement<C: Collection<UInt8>>(_ member: C, _ score: Double, withScores: Bool) {
        guard withScores else { return self.bulk(member) }
        if self.encoding == .resp3 { self.arrayHeader(2) }
        self.bulk(member)
        self.score(score)
    }
}

/// What a sorted-set command found at its key.
enum SortedSetRead {
    case missing
    case found(SortedSetValue)
    /// The key holds another type: WRONGTYPE has been answered.
    case answered
}

extension CommandCall {
    /// The sorted set at `key` (WRONGTYPE answered for another type). The value must be used before
    /// the store is changed.
    mutating func readSortedSet(_ key: [UInt8]) -> SortedSetRead {
        // The store's non-generic read: a `TypedLookup<SortedSetValue>` would have its metadata looked up
        // at run time on every call (the enum is generic and defined in another module).
        switch self.store.collection(forKey: key, type: .zset, now: self.nowMilliseconds) {
        case .missing: return .missing
        case .found(let value): return .found(value as! SortedSetValue)
        case .wrongType:
            self.reply.error(.wrongType)
            return .answered
        }
    }

    /// Sets `member`'s score (adding it when absent). - Returns: what happened, or nil once an error has
    /// been answered.
    mutating func setScore(_ member: [UInt8], _ score: Double, in key: [UInt8]) -> ElementWrite? {
        self.apply(withUnsafeBytes(of: score) { ElementEffect(.add, member, [UInt8]($0)) }, to: key, type: .zset)
    }

    /// Removes `member`. - Returns: what happened, or nil once an error has been answered.
    mutating func removeMember(_ member: [UInt8], from key: [UInt8]) -> ElementWrite? {
        self.apply(ElementEffect(.remove, member), to: key, type: .zset)
    }

    /// Removes every member in `members` (ZPOP, ZREMRANGE…) as one unit. - Returns: false once an error
    /// has been answered.
    mutating func removeMembers(_ members: [([UInt8], Double)], from key: [UInt8]) -> Bool {
        var failed = false
        let store = self.store
        store.atomically {
            for (member, _) in members where self.removeMember(member, from: key) == nil {
                failed = true
                return
            }
        }
        return !failed
    }
}
