// The one byte-level toolkit of every protocol here: ASCII case folding, word splitting, decimal
// formatting and parsing, and appending straight into the caller's output buffer.
// Nothing here builds a String on the request path; every helper works on bytes.

/// A memory size as redis.conf and CONFIG SET read one (``ASCII/parseMemory(_:)``), for the
/// executable's flags and the config file: one parser for every place a size is read.
public enum MemorySize {
    public static func bytes(_ text: String) -> Int? { ASCII.parseMemory(ArraySlice(text.utf8)) }
}

/// ASCII constants and byte predicates, case folding and integer parsing.
enum ASCII {
    /// A memory size as Redis's CONFIG SET and redis.conf read one: digits, then optionally a unit in
    /// any case (`k` 1000, `kb` 1024, `m` 1000², `mb` 1024², `g` 1000³, `gb` 1024³). Nil for anything
    /// else, negative numbers and overflow.
    static func parseMemory(_ text: ArraySlice<UInt8>) -> Int? {
        let digits = text.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard !digits.isEmpty, digits.count <= 19 else { return nil }
        var number = 0
        for digit in digits {
            let (times10, o1) = number.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
            guard !o1 && !o2 else { return nil }
            number = sum
        }
        let unit = text.dropFirst(digits.count).map(Self.lowercased)
        let multiplier: Int
        switch String(decoding: unit, as: UTF8.self) {
        case "": multiplier = 1
        case "k": multiplier = 1000
        case "kb": multiplier = 1024
        case "m": multiplier = 1000 * 1000
        case "mb": multiplier = 1024 * 1024
        case "g": multiplier = 1000 * 1000 * 1000
        case "gb": multiplier = 1024 * 1024 * 1024
        default: return nil
        }
        let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    static let tab = UInt8(ascii: "\t")
    static let lf = UInt8(ascii: "\n")
    static let cr = UInt8(ascii: "\r")
    static let space = UInt8(ascii: " ")
    static let minus = UInt8(ascii: "-")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    @inline(__always)
    static func isBlank(_ byte: UInt8) -> Bool { byte == ASCII.space || byte == ASCII.tab }

    /// Whether `bytes` equals `lowercaseName` ignoring ASCII case. `lowercaseName` must be lower case.
    static func equalsIgnoringCase<C: Collection>(_ bytes: C, _ lowercaseName: StaticString) -> Bool
    where C.Element == UInt8 {
        guard bytes.count == lowercaseName.utf8CodeUnitCount else { return false }
        let name = lowercaseName.utf8Start
        var i = 0
        for byte in bytes {
            if ASCII.lowercased(byte) != name[i] { return false }
            i += 1
        }
        return true
    }

    /// Parses a canonical signed decimal integer as Redis's `string2ll` does: an optional `-`,
    /// no `+`, no blanks, no leading zeros (except `0` itself), within `Int64`.
    static func parseInteger<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes) -> Int64? where Bytes.Index == Int {
        var i = bytes.startIndex
        let end = bytes.endIndex
        guard i < end else { return nil }
        if bytes.count == 1 && bytes[i] == ASCII.zero { return 0 }
        let negative = bytes[i] == ASCII.minus
        if negative { i += 1 }
        guard i < end, bytes[i] > ASCII.zero, bytes[i] <= ASCII.nine else { return nil }
        // Accumulate the magnitude as UInt64 so that Int64.min parses.
        var magnitude: UInt64 = 0
        while i < end {
            let byte = bytes[i]
            guard byte >= ASCII.zero && byte <= ASCII.nine else { return nil }
            let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (m2, o2) = m1.addingReportingOverflow(UInt64(byte - ASCII.zero))
            if o1 || o2 { return nil }
            magnitude = m2
            i += 1
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// Parses a non-negative decimal of at most 18 digits (leading zeros allowed, no sign, no
    /// blanks), as the line protocols' numeric arguments are written.
    static func parseNonNegative(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= ASCII.zero && byte <= ASCII.nine else { return nil }
            value = value * 10 + Int(byte - ASCII.zero)
        }
        return value
    }
}

/// Splits a request line into words separated by runs of spaces and tabs, without copying.
struct WordScanner {
    private let line: ArraySlice<UInt8>
    private var index: Int

    /// - Parameter line: the line's content, terminator excluded.
    init(_ line: ArraySlice<UInt8>) {
        self.line = line
        self.index = line.startIndex
    }

    /// The next word, or nil at the end of the line.
    mutating func next() -> ArraySlice<UInt8>? {
        let end = self.line.endIndex
        while self.index < end && ASCII.isBlank(self.line[self.index]) { self.index += 1 }
        guard self.index < end else { return nil }
        let start = self.index
        while self.index < end && !ASCII.isBlank(self.line[self.index]) { self.index += 1 }
        return self.line[start..<self.index]
    }

    /// Every word of `line`, in order.
    static func split(_ line: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var scanner = WordScanner(line)
        var words: [ArraySlice<UInt8>] = []
        while let word = scanner.next() { words.append(word) }
        return words
    }

    /// Everything after the last word and exactly one separator (if any), internal blanks kept.
    mutating func rest() -> ArraySlice<UInt8> {
        let end = self.line.endIndex
        if self.index < end { self.index += 1 }
        defer { self.index = end }
        return self.line[self.index..<end]
    }
}

extension Array where Element == UInt8 {
    /// Appends the bytes of a literal without going through `String`.
    @inline(__always)
    mutating func append(_ literal: StaticString) {
        self.append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Appends `value` in decimal.
    mutating func appendDecimal<T: BinaryInteger>(_ value: T) {
        if value < 0 { self.append(ASCII.minus) }
        var magnitude = UInt64(value.magnitude)
        // Digits come out last first: write them backwards into 20 bytes on the stack (UInt64.max
        // has 20 digits), then append them in one go. Reversing in place through `self[start...]`
        // cost a temporary array per call, on every RESP length header.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var index = 20
            repeat {
                index -= 1
                digits[index] = ASCII.zero + UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            self.append(contentsOf: UnsafeBufferPointer(rebasing: digits[index...]))
        }
    }

    /// Appends `bytes` with CR and LF replaced by spaces, so that an error text stays one line.
    mutating func appendSingleLine<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        for byte in bytes { self.append(byte == ASCII.cr || byte == ASCII.lf ? ASCII.space : byte) }
    }
}
