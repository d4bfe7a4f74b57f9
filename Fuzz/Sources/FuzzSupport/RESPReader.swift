// An independent reader of RESP2 and RESP3 values, written from the protocol description
// (docs/protocol.md), not from the server's encoder: the fuzz targets check with it that what the
// server writes is well formed, and read back what an encoder wrote.

/// One RESP value.
public indirect enum RESPValue: Equatable {
    case simple([UInt8])
    case error([UInt8])
    case integer(Int64)
    case bulk([UInt8]?)
    case array([RESPValue]?)
    case null
    case double([UInt8])
    case boolean(Bool)
    case bigNumber([UInt8])
    case verbatim(format: [UInt8], text: [UInt8])
    case map([(RESPValue, RESPValue)])
    case set([RESPValue])
    case push([RESPValue])
    case blobError([UInt8])

    public static func == (a: RESPValue, b: RESPValue) -> Bool {
        switch (a, b) {
        case (.simple(let x), .simple(let y)), (.error(let x), .error(let y)), (.double(let x), .double(let y)),
            (.bigNumber(let x), .bigNumber(let y)), (.blobError(let x), .blobError(let y)):
            return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.bulk(let x), .bulk(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.null, .null): return true
        case (.boolean(let x), .boolean(let y)): return x == y
        case (.verbatim(let f, let t), .verbatim(let g, let u)): return f == g && t == u
        case (.map(let x), .map(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.set(let x), .set(let y)), (.push(let x), .push(let y)): return x == y
        default: return false
        }
    }
}

/// Reads RESP values from a byte buffer.
public struct RESPReader {
    /// What ``read(_:at:)`` found.
    public enum Outcome: Equatable {
        /// A complete value ending just before `next`.
        case value(RESPValue, next: Int)
        /// The bytes end inside a value.
        case incomplete
        /// The bytes cannot be RESP.
        case malformed(String)
    }

    /// Aggregates deeper than this are refused (the server never nests more than a few levels).
    public static let maxDepth = 64

    /// Reads every value of `bytes`. - Returns: the values, or why the bytes are not a whole number
    /// of well-formed values.
    public static func readAll<C: Collection>(_ bytes: C) -> Result<[RESPValue], ReadError> where C.Element == UInt8 {
        let buffer = Array(bytes)
        var values: [RESPValue] = []
        var offset = 0
        while offset < buffer.count {
            switch Self.read(buffer, at: offset) {
            case .value(let value, let next):
                values.append(value)
                offset = next
            case .incomplete:
                return .failure(ReadError(offset: offset, reason: "incomplete value"))
            case .malformed(let reason):
                return .failure(ReadError(offset: offset, reason: reason))
            }
        }
        return .success(values)
    }

    public struct ReadError: Error, CustomStringConvertible {
        public let offset: Int
        public let reason: String
        public var description: String { "at byte \(self.offset): \(self.reason)" }
    }

    /// Reads the value starting at `offset`.
    public static func read(_ bytes: [UInt8], at offset: Int, depth: Int = 0) -> Outcome {
        guard depth <= Self.maxDepth else { return .malformed("nested too deep") }
        guard offset < bytes.count else { return .incomplete }
        let type = bytes[offset]
        guard let (line, afterLine) = Self.line(bytes, from: offset + 1) else {
            // A line type without CRLF yet, or a bare CR/LF inside the line.
            return Self.hasBareLineBreak(bytes, from: offset + 1) ? .malformed("CR or LF inside a line") : .incomplete
        }
        switch type {
        case UInt8(ascii: "+"): return .value(.simple(line), next: afterLine)
        case UInt8(ascii: "-"): return .value(.error(line), next: afterLine)
        case UInt8(ascii: ":"):
            guard let n = Self.integer(line) else { return .malformed("bad integer \(printable(line))") }
            return .value(.integer(n), next: afterLine)
        case UInt8(ascii: "_"):
            guard line.isEmpty else { return .malformed("null with content") }
            return .value(.null, next: afterLine)
        case UInt8(ascii: "#"):
            if line == [UInt8(ascii: "t")] { return .value(.boolean(true), next: afterLine) }
            if line == [UInt8(ascii: "f")] { return .value(.boolean(false), next: afterLine) }
            return .malformed("bad boolean")
        case UInt8(ascii: ","):
            guard Self.isDouble(line) else { return .malformed("bad double \(printable(line))") }
            return .value(.double(line), next: afterLine)
        case UInt8(ascii: "("):
            guard Self.integerDigits(line) else { return .malformed("bad big number") }
            return .value(.bigNumber(line), next: afterLine)
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            guard let length = Self.integer(line), length >= -1 else { return .malformed("bad bulk length") }
            if length == -1 {
                guard type == UInt8(ascii: "$") else { return .malformed("null verbatim or blob error") }
                return .value(.bulk(nil), next: afterLine)
            }
            let end = afterLine + Int(length)
            guard end + 2 <= bytes.count else { return .incomplete }
            guard bytes[end] == 13, bytes[end + 1] == 10 else { return .malformed("bulk not followed by CRLF") }
            let data = Array(bytes[afterLine..<end])
            switch type {
            case UInt8(ascii: "$"): return .value(.bulk(data), next: end + 2)
            case UInt8(ascii: "!"): return .value(.blobError(data), next: end + 2)
            default:
                guard data.count >= 4, data[3] == UInt8(ascii: ":") else { return .malformed("verbatim without format") }
                return .value(.verbatim(format: Array(data[0..<3]), text: Array(data[4...])), next: end + 2)
            }
        case UInt8(ascii: "*"), UInt8(ascii: "%"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "|"):
            guard let count = Self.integer(line), count >= -1 else { return .malformed("bad aggregate length") }
            if count == -1 {
                guard type == UInt8(ascii: "*") else { return .malformed("null aggregate other than an array") }
                return .value(.array(nil), next: afterLine)
            }
            let isPairs = type == UInt8(ascii: "%") || type == UInt8(ascii: "|")
            let elements = isPairs ? 2 * Int(count) : Int(count)
            var items: [RESPValue] = []
            var next = afterLine
            for _ in 0..<elements {
                switch Self.read(bytes, at: next, depth: depth + 1) {
                case .value(let value, let after):
                    items.append(value)
                    next = after
                case let other:
                    return other
                }
            }
            switch type {
            case UInt8(ascii: "*"): return .value(.array(items), next: next)
            case UInt8(ascii: "~"): return .value(.set(items), next: next)
            case UInt8(ascii: ">"): return .value(.push(items), next: next)
            case UInt8(ascii: "%"):
                return .value(.map(stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }), next: next)
            default:
                // An attribute precedes the value it describes: read that value as this one.
                return Self.read(bytes, at: next, depth: depth + 1)
            }
        default:
            return .malformed("unknown type byte \(printable([type]))")
        }
    }

    /// The bytes from `start` to the next CRLF, and the index after it; nil without a CRLF or when
    /// a CR or LF appears alone first.
    private static func line(_ bytes: [UInt8], from start: Int) -> ([UInt8], Int)? {
        var i = start
        while i < bytes.count {
            if bytes[i] == 13 {
                guard i + 1 < bytes.count, bytes[i + 1] == 10 else { return nil }
                return (Array(bytes[start..<i]), i + 2)
            }
            if bytes[i] == 10 { return nil }
            i += 1
        }
        return nil
    }

    private static func hasBareLineBreak(_ bytes: [UInt8], from start: Int) -> Bool {
        var i = start
        while i < bytes.count {
            if bytes[i] == 10 { return true }
            if bytes[i] == 13 { return i + 1 < bytes.count && bytes[i + 1] != 10 }
            i += 1
        }
        return false
    }

    private static func integerDigits(_ line: [UInt8]) -> Bool {
        let digits = line.first == UInt8(ascii: "-") || line.first == UInt8(ascii: "+") ? line.dropFirst() : line[...]
        return !digits.isEmpty && digits.allSatisfy { $0 >= 48 && $0 <= 57 }
    }

    private static func integer(_ line: [UInt8]) -> Int64? {
        guard Self.integerDigits(line) else { return nil }
        return Int64(String(decoding: line, as: UTF8.self))
    }

    /// `inf`, `-inf`, `nan` or a decimal number with optional fraction and exponent.
    private static func isDouble(_ line: [UInt8]) -> Bool {
        let text = String(decoding: line, as: UTF8.self)
        if text == "inf" || text == "-inf" || text == "nan" { return true }
        return !text.isEmpty && Double(text) != nil && text.utf8.allSatisfy {
            ($0 >= 48 && $0 <= 57) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: ".")
                || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E")
        }
    }
}
