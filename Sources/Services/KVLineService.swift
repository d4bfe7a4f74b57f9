// The kv line protocol (SPEC.md "kv service") as a state machine: buffered bytes in, reply bytes
// out, mutations through ``KeyValueStorage``. It parses in place on the framer's buffer and
// writes replies straight into the caller's output; it never touches sockets, clocks or files.

/// The kv service's line protocol for one connection.
///
/// Feed received bytes with ``receive(_:)``, then call ``process(storage:output:outputLimit:)``,
/// which answers every complete buffered request in order. Event-loop thread only.
public struct KVLineService {
    /// The longest value `put`/`set` accept; longer: `ERR value too large`.
    public let maxValueBytes: Int
    /// The longest key accepted; longer: `ERR key too long`.
    public static let maxKeyBytes = 1024

    private var framer: LineFramer
    // Set once `.close` has been returned; nothing more is processed afterwards.
    private var closed = false

    /// - Parameters:
    ///   - maxLineBytes: the longest request line, terminator not counted (`--max-line`).
    ///   - maxValueBytes: the longest value (`--max-value`).
    public init(maxLineBytes: Int = 65536, maxValueBytes: Int = 1 << 20) {
        precondition(maxValueBytes >= 0)
        self.framer = LineFramer(maxLineBytes: maxLineBytes)
        self.maxValueBytes = maxValueBytes
    }

    /// Bytes received but not yet answered.
    public var bufferedByteCount: Int { self.framer.bufferedByteCount }

    /// Buffers received bytes; nothing is answered until ``process(storage:output:outputLimit:)``.
    public mutating func receive(_ bytes: UnsafeRawBufferPointer) {
        guard !self.closed else { return }
        self.framer.append(bytes)
    }

    /// Answers buffered complete requests in order, appending the replies to `output`.
    ///
    /// - Parameters:
    ///   - storage: the shared store.
    ///   - output: the connection's unsent bytes; replies are appended.
    ///   - outputLimit: once `output.count` reaches it, processing stops (backpressure).
    /// - Returns: `.close` after `bye` or an over-long line (flush `output`, then close);
    ///   `.outputFull` when the limit was reached with input still buffered (call again after
    ///   draining); otherwise `.needMoreData`.
    public mutating func process(
        storage: some KeyValueStorage,
        output: inout [UInt8],
        outputLimit: Int
    ) -> ProcessResult {
        if self.closed { return .close }
        while true {
            if output.count >= outputLimit {
                return self.framer.bufferedByteCount > 0 ? .outputFull : .needMoreData
            }
            switch self.framer.next() {
            case .needMoreData:
                self.framer.releaseIfEmpty()
                return .needMoreData
            case .tooLong:
                output.append("ERR line too long\n")
                self.closed = true
                return .close
            case .line(let line):
                if Self.handle(line.content, maxValueBytes: self.maxValueBytes, storage: storage, output: &output) {
                    self.closed = true
                    return .close
                }
            }
        }
    }

    private enum Command: CaseIterable {
        case put, set, get, del, count, ping, stats, help, bye

        var name: StaticString {
            switch self {
            case .put: "put"
            case .set: "set"
            case .get: "get"
            case .del: "del"
            case .count: "count"
            case .ping: "ping"
            case .stats: "stats"
            case .help: "help"
            case .bye: "bye"
            }
        }

        // `allCases` builds a new array on every call; this one is built once.
        static let all = Command.allCases

        static func named(_ word: ArraySlice<UInt8>) -> Command? {
            for command in Command.all where ASCII.equalsIgnoringCase(word, command.name) { return command }
            return nil
        }
    }

    /// Answers one request line. - Returns: whether the connection must close.
    private static func handle(
        _ line: ArraySlice<UInt8>,
        maxValueBytes: Int,
        storage: some KeyValueStorage,
        output: inout [UInt8]
    ) -> Bool {
        var words = WordScanner(line)
        guard let word = words.next() else { return false }  // empty or blank line: ignored
        guard let command = Command.named(word) else {
            output.append("ERR unknown command '")
            output.append(contentsOf: word)
            output.append("'\n")
            return false
        }
        switch command {
        case .count, .ping, .stats, .help, .bye:
            guard words.next() == nil else { return Self.arityError(command, &output) }
            switch command {
            case .count:
                output.appendDecimal(storage.count)
                output.append(ASCII.lf)
            case .ping:
                output.append("PONG\n")
            case .stats:
                var first = true
                for (name, value) in storage.statistics() {
                    if !first { output.append(ASCII.space) }
                    first = false
                    output.append(contentsOf: name.utf8)
                    output.append(UInt8(ascii: "="))
                    output.append(contentsOf: value.utf8)
                }
                output.append(ASCII.lf)
            case .help:
                output.append(
                    "commands: put <key> <value> | set <key> [value] | get <key> | del <key> | count | ping | stats | help | bye\n"
                )
            default:
                output.append("Goodbye\n")
                return true
            }
        case .get, .del:
            guard let key = words.next(), words.next() == nil else { return Self.arityError(command, &output) }
            guard key.count <= Self.maxKeyBytes else {
                output.append("ERR key too long\n")
                return false
            }
            if command == .get {
                guard let value = storage.value(forKey: Array(key)) else {
                    output.append("ERR not found\n")
                    return false
                }
                if !Self.isRepresentable(value) {
                    output.append("ERR value not representable; use RESP\n")
                } else {
                    output.append(contentsOf: value)
                    output.append(ASCII.lf)
                }
            } else {
                do throws(StorageError) {
                    if try storage.removeValue(forKey: Array(key)) {
                        output.append("OK\n")
                    } else {
                        output.append("ERR not found\n")
                    }
                } catch {
                    Self.storageError(error, &output)
                }
            }
        case .put, .set:
            guard let key = words.next() else { return Self.arityError(command, &output) }
            // The value is everything after the key and the one separator that follows it.
            let value = words.rest(afterSeparator: true)
            guard command == .set || !value.isEmpty else { return Self.arityError(command, &output) }
            guard key.count <= Self.maxKeyBytes else {
                output.append("ERR key too long\n")
                return false
            }
            guard value.count <= maxValueBytes else {
                output.append("ERR value too large\n")
                return false
            }
            if Self.beginsWithERR(value) {
                output.append("ERR value may not begin with ERR\n")
                return false
            }
            let keyBytes = Array(key)
            if command == .put && storage.value(forKey: keyBytes) != nil {
                output.append("ERR key exists\n")
                return false
            }
            do throws(StorageError) {
                try storage.set(Array(value), forKey: keyBytes)
                output.append("OK\n")
            } catch {
                Self.storageError(error, &output)
            }
        }
        return false
    }

    private static func arityError(_ command: Command, _ output: inout [UInt8]) -> Bool {
        output.append("ERR wrong number of arguments for '")
        output.append(command.name)
        output.append("'\n")
        return false
    }

    private static func storageError(_ error: StorageError, _ output: inout [UInt8]) {
        output.append("ERR ")
        output.appendSingleLine(error.reason.utf8)
        output.append(ASCII.lf)
    }

    private static func beginsWithERR<C: Collection>(_ value: C) -> Bool where C.Element == UInt8 {
        var iterator = value.makeIterator()
        return iterator.next() == UInt8(ascii: "E") && iterator.next() == UInt8(ascii: "R")
            && iterator.next() == UInt8(ascii: "R") && iterator.next() == ASCII.space
    }

    /// Whether `value` can be sent as one reply line and not be mistaken for an error: no CR or
    /// LF (stored through RESP), and not beginning `ERR ` (which only RESP can store).
    private static func isRepresentable(_ value: [UInt8]) -> Bool {
        !value.contains(where: { $0 == ASCII.cr || $0 == ASCII.lf }) && !Self.beginsWithERR(value)
    }
}

/// Splits a request line into words separated by runs of spaces and tabs, without copying.
struct WordScanner {
    private let line: ArraySlice<UInt8>
    private var index: Int

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

    /// What follows the last word, after skipping exactly one separator when `afterSeparator`.
    mutating func rest(afterSeparator: Bool) -> ArraySlice<UInt8> {
        let end = self.line.endIndex
        if afterSeparator && self.index < end { self.index += 1 }
        defer { self.index = end }
        return self.line[self.index..<end]
    }
}
