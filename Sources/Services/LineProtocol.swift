// The kv line protocol's framing and its own rules (docs/protocol.md "kv service"): a request line becomes
// an ArgumentVector over the framer's buffer (words, then the rest of the line as one argument
// where the command's LineSyntax says so), and the limits only this protocol has. Replies and
// commands are not here: the command table and the line encoder answer.

import LineFraming

/// Frames line-protocol requests into argument vectors. Blank lines are skipped.
struct LineCommandFramer: RequestFramer {
    private var lines: LineFramer
    // Reused for every request: no allocation per line once it has grown.
    private var ranges: [Range<Int>] = []

    /// - Parameter maxLineBytes: the longest request line, terminator not counted (`--max-line`).
    init(maxLineBytes: Int) {
        self.lines = LineFramer(maxLineBytes: maxLineBytes)
    }

    /// Bytes received and not yet handed out as a request.
    var bufferedByteCount: Int { self.lines.bufferedByteCount }

    /// Buffers received bytes.
    mutating func append(_ bytes: UnsafeRawBufferPointer) { self.lines.append(bytes) }

    /// Gives back the buffer once idle, and the argument ranges if one long line grew them.
    mutating func releaseIfIdle() {
        self.lines.releaseIfEmpty()
        if self.ranges.capacity > 1024 { self.ranges = [] }
    }

    /// The next request: its words up to the command's `restFrom`, then the rest of the line.
    mutating func next() -> Framed<ArgumentVector> {
        while true {
            switch self.lines.next() {
            case .needMoreData: return .needMoreData
            case .tooLong: return .failed(.lineTooLong)
            case .line(let line):
                var words = WordScanner(line.content)
                guard let name = words.next() else { continue }  // empty or blank line: ignored
                self.ranges.removeAll(keepingCapacity: true)
                self.ranges.append(name.startIndex..<name.endIndex)
                let restFrom = CommandTable.lineNames.find(name)?.line?.restFrom ?? Int.max
                while self.ranges.count < restFrom, let word = words.next() {
                    self.ranges.append(word.startIndex..<word.endIndex)
                }
                if self.ranges.count == restFrom {
                    let rest = words.rest()
                    self.ranges.append(rest.startIndex..<rest.endIndex)
                }
                return .request(ArgumentVector(bytes: line.content, ranges: self.ranges))
            }
        }
    }
}

/// The line protocol's own limits and reply rules.
enum LineRules {
    /// The longest key accepted; longer: `ERR key too long`.
    static let maxKeyBytes = 1024

    /// The line protocol's checks before a command runs, in the order they answer: arity (a rest
    /// that may not be empty counts as missing), key length, then the value's size and its
    /// `ERR ` prefix. - Returns: the error to answer, or nil.
    static func check(
        _ arguments: ArgumentVector, command: CommandSpec, syntax: LineSyntax, maxValueBytes: Int
    ) -> CommandError? {
        let count = arguments.count
        let name = syntax.name ?? command.name
        guard CommandSpec.accepts(arity: syntax.arity ?? command.arity, count) else { return .wrongArity(name) }
        if let restFrom = syntax.restFrom, !syntax.emptyRest, count > restFrom, arguments[restFrom].isEmpty {
            return .wrongArity(name)
        }
        let keys = command.keys
        if keys.first > 0 {
            let last = keys.last < 0 ? count - 1 : min(keys.last, count - 1)
            for i in stride(from: keys.first, through: last, by: keys.step)
            where arguments[i].count > Self.maxKeyBytes {
                return .keyTooLong
            }
        }
        if let restFrom = syntax.restFrom, count > restFrom {
            let value = arguments[restFrom]
            if value.count > maxValueBytes { return .valueTooLarge }
            if Self.beginsWithERR(value) { return .valueBeginsWithERR }
        }
        return nil
    }

    /// Whether `value` can be sent as one reply line and not be mistaken for an error: no CR or
    /// LF (stored through RESP), and not beginning `ERR ` (which only RESP can store).
    static func isRepresentable<C: Collection>(_ value: C) -> Bool where C.Element == UInt8 {
        !value.contains(where: { $0 == ASCII.cr || $0 == ASCII.lf }) && !Self.beginsWithERR(value)
    }

    private static func beginsWithERR<C: Collection>(_ value: C) -> Bool where C.Element == UInt8 {
        var iterator = value.makeIterator()
        return iterator.next() == UInt8(ascii: "E") && iterator.next() == UInt8(ascii: "R")
            && iterator.next() == UInt8(ascii: "R") && iterator.next() == ASCII.space
    }
}
