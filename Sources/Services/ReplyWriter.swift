// The reply encoders: one typed call per reply (status, bulk, null, integer, aggregate header,
// double, boolean, error), written straight into the connection's output in the connection's
// protocol (line, RESP2, RESP3), as Redis's addReply* functions do. No reply tree is built and
// nothing is allocated per reply; commands never write protocol bytes themselves.

/// The reply format of a kv connection.
public enum ReplyEncoding: Equatable, Sendable {
    /// The line protocol: one line per reply, `ERR <reason>` for errors and for a missing value.
    case line
    /// RESP2, what a RESP connection speaks until `HELLO 3`.
    case resp2
    /// RESP3: `_` nulls, `%` maps, `~` sets, `,` doubles, `#` booleans.
    case resp3
}

/// How the line protocol shows a command's integer reply (the line protocol's own rows in the
/// command table choose; RESP always sends the integer).
enum LineIntegerReply: Equatable, Sendable {
    /// The number, alone on the line (`count`).
    case number
    /// A positive count is `OK`, zero is `ERR not found` (`del`).
    case okOrNotFound
}

/// Writes replies into an output buffer in one protocol.
struct ReplyWriter {
    /// The bytes written so far (the connection's unsent output).
    var output: [UInt8]
    /// The protocol written.
    var encoding: ReplyEncoding
    /// How an integer reply is shown on the line protocol, set per command.
    var lineIntegers = LineIntegerReply.number
    /// An error reply was written since the dispatcher last cleared it (command statistics).
    var wroteError = false
    /// The code of the last error reply written (INFO errorstats).
    var lastErrorCode: StaticString = "ERR"

    /// - Parameters:
    ///   - encoding: the protocol to write.
    ///   - output: bytes already queued; replies are appended.
    init(encoding: ReplyEncoding, output: [UInt8] = []) {
        self.encoding = encoding
        self.output = output
    }

    private var isLine: Bool { self.encoding == .line }

    /// The line terminator of the protocol.
    mutating func endLine() {
        if self.isLine { self.output.append(ASCII.lf) } else { self.output.append("\r\n") }
    }

    /// `+OK` / `OK`. One literal per protocol: the commonest reply costs one append.
    mutating func ok() {
        if self.isLine { self.output.append("OK\n") } else { self.output.append("+OK\r\n") }
    }

    /// A status reply: `+<text>` / `<text>`. `text` holds no CR or LF.
    mutating func status(_ text: StaticString) {
        if !self.isLine { self.output.append(UInt8(ascii: "+")) }
        self.output.append(text)
        self.endLine()
    }

    /// A status reply built at run time; CR and LF become spaces so it stays one line.
    mutating func status<C: Collection>(bytes: C) where C.Element == UInt8 {
        if !self.isLine { self.output.append(UInt8(ascii: "+")) }
        self.output.appendSingleLine(bytes)
        self.endLine()
    }

    /// A binary-safe string: `$<n>\r\n<bytes>\r\n`. On the line protocol the bytes alone on the
    /// line, or `ERR value not representable; use RESP` when they hold CR or LF or begin `ERR `
    /// (a reply that could be taken for an error or for two replies).
    mutating func bulk<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if self.isLine {
            guard LineRules.isRepresentable(bytes) else { return self.error(.valueNotRepresentable) }
            self.output.append(contentsOf: bytes)
            self.output.append(ASCII.lf)
            return
        }
        if bytes.count <= Self.shortBulkBytes, bytes.withContiguousStorageIfAvailable({ self.shortBulk(UnsafeRawBufferPointer($0)) }) != nil {
            return
        }
        if bytes.count >= 1 << 20 {
            // A large value: one exact allocation instead of doubling (and copying) up to it.
            self.output.reserveCapacity(self.output.count + bytes.count + 24)
        }
        self.output.append(UInt8(ascii: "$"))
        self.output.appendDecimal(bytes.count)
        self.output.append("\r\n")
        self.output.append(contentsOf: bytes)
        self.output.append("\r\n")
    }

    /// Text a human reads (INFO, CLIENT LIST): a verbatim string `=<n>\r\ntxt:<text>` in RESP3, a
    /// bulk string in RESP2, the text on the line protocol.
    mutating func verbatim(_ text: [UInt8]) {
        guard self.encoding == .resp3 else { return self.bulk(text) }
        self.output.append(UInt8(ascii: "="))
        self.output.appendDecimal(text.count + 4)
        self.output.append("\r\ntxt:")
        self.output.append(contentsOf: text)
        self.output.append("\r\n")
    }

    /// A bulk string of a literal.
    mutating func bulk(_ literal: StaticString) {
        self.bulk(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// No value: `$-1` (RESP2), `_` (RESP3), `ERR not found` (line).
    mutating func null() {
        switch self.encoding {
        case .line: self.error(.notFound)
        case .resp2: self.output.append("$-1\r\n")
        case .resp3: self.output.append("_\r\n")
        }
    }

    /// No array (EXEC aborted by WATCH): `*-1` (RESP2), `_` (RESP3), `ERR not found` (line).
    mutating func nullArray() {
        switch self.encoding {
        case .line: self.error(.notFound)
        case .resp2: self.output.append("*-1\r\n")
        case .resp3: self.output.append("_\r\n")
        }
    }

    /// An integer: `:<n>`; on the line protocol as ``lineIntegers`` says.
    mutating func integer<T: BinaryInteger>(_ value: T) {
        switch self.encoding {
        case .line:
            switch self.lineIntegers {
            case .number:
                self.output.appendDecimal(value)
                self.output.append(ASCII.lf)
            case .okOrNotFound:
                if value > 0 { self.ok() } else { self.error(.notFound) }
            }
        case .resp2, .resp3:
            // 0 to 9 (the counts and flags most integer replies are) as one four-byte append:
            // `:`, the digit, CR, LF, in memory order.
            if value >= 0 && value < 10 {
                let reply = UInt32(UInt8(ascii: ":")) | UInt32(ASCII.zero &+ UInt8(truncatingIfNeeded: value)) << 8
                    | 0x0D << 16 | 0x0A << 24
                withUnsafeBytes(of: reply.littleEndian) { self.output.append(contentsOf: $0) }
                return
            }
            if let value = Int64(exactly: value) { return self.integerReply(value) }
            self.output.append(UInt8(ascii: ":"))
            self.output.appendDecimal(value)
            self.output.append("\r\n")
        }
    }

    /// A double: `,<d>` (RESP3), a bulk string of the same text (RESP2), the text (line).
    /// Shortest round-trip digits; `inf`, `-inf`, `nan` as Redis spells them.
    mutating func double(_ value: Double) {
        var text: [UInt8] = []
        if value.isNaN {
            text.append("nan")
        } else if value.isInfinite {
            text.append(value < 0 ? "-inf" : "inf")
        } else if value == value.rounded() && abs(value) < 1e17 {
            if value.sign == .minus && value == 0 { text.append(ASCII.minus) }
            text.appendDecimal(Int64(value))
        } else {
            text.append(contentsOf: value.description.utf8)
        }
        guard self.encoding == .resp3 else { return self.bulk(text) }
        self.output.append(UInt8(ascii: ","))
        self.output.append(contentsOf: text)
        self.output.append("\r\n")
    }

    /// A boolean: `#t`/`#f` (RESP3), `:1`/`:0` (RESP2), `1`/`0` (line).
    mutating func boolean(_ value: Bool) {
        guard self.encoding == .resp3 else { return self.integer(value ? 1 : 0) }
        self.output.append(value ? "#t\r\n" : "#f\r\n")
    }

    /// An array of `count` elements, written next: `*<n>`. The line protocol has no aggregates:
    /// there the header writes nothing and each element is its own line.
    mutating func arrayHeader(_ count: Int) {
        self.aggregateHeader(UInt8(ascii: "*"), count)
    }

    /// A map of `count` key/value pairs, written next as key, value, …: `%<n>` (RESP3), a flat
    /// array of `2n` elements (RESP2).
    mutating func mapHeader(_ count: Int) {
        if self.encoding == .resp3 {
            self.aggregateHeader(UInt8(ascii: "%"), count)
        } else {
            self.aggregateHeader(UInt8(ascii: "*"), 2 * count)
        }
    }

    /// A set of `count` elements, written next: `~<n>` (RESP3), an array (RESP2).
    mutating func setHeader(_ count: Int) {
        self.aggregateHeader(self.encoding == .resp3 ? UInt8(ascii: "~") : UInt8(ascii: "*"), count)
    }

    private mutating func aggregateHeader(_ type: UInt8, _ count: Int) {
        guard !self.isLine else { return }
        self.output.append(type)
        self.output.appendDecimal(count)
        self.output.append("\r\n")
    }

    /// An error reply, worded for the protocol (see ``CommandError``).
    mutating func error(_ error: CommandError) {
        self.wroteError = true
        self.lastErrorCode = error.code
        error.write(to: &self.output, encoding: self.encoding)
    }
}
