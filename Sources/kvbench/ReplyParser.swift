// Incremental reply parsers for the kv line protocol and RESP2 (memcached's: MemcacheReplyParser). A reply may be split across reads
// and many replies arrive in one read: the parsers keep only the first bytes of the current line
// (enough to classify it and quote an error) and a count of bulk bytes still to skip, so a large
// GET value is never copied. They classify replies; matching them to requests is the caller's job.

#if canImport(Glibc)
import Glibc
#endif

/// What one reply said, before it is matched with its request.
enum Reply: Equatable {
    /// `OK` / `+OK`.
    case ok
    /// A value (a line, a bulk string, an integer, an array).
    case value
    /// `ERR not found` on the line protocol.
    case notFound
    /// `$-1` (or `*-1`) in RESP.
    case null
    /// `ERR …` / `-ERR …`.
    case error
}

/// The server sent something that is not a reply in the expected protocol.
struct ProtocolViolation: Error {
    let message: String
}

/// The first bytes of the line being received, its full length and its last byte.
struct LineHead {
    /// How many bytes of a line are kept (enough to classify it and quote an error).
    let capacity: Int
    var bytes: [UInt8] = []
    var length = 0
    var lastByte: UInt8 = 0

    init(capacity: Int = 64) {
        self.capacity = capacity
        self.bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    mutating func absorb(_ base: UnsafePointer<UInt8>, _ count: Int) {
        guard count > 0 else { return }
        let room = self.capacity - self.bytes.count
        if room > 0 {
            self.bytes.append(contentsOf: UnsafeBufferPointer(start: base, count: min(room, count)))
        }
        self.length += count
        self.lastByte = base[count - 1]
    }

    /// The line's length without a trailing `\r`.
    var contentLength: Int { self.lastByte == 0x0D && self.length > 0 ? self.length - 1 : self.length }

    /// The kept bytes without a trailing `\r` (a prefix of the line if it was long).
    var content: ArraySlice<UInt8> { self.bytes.prefix(self.contentLength) }

    func equals(_ text: StaticString) -> Bool {
        guard self.contentLength == text.utf8CodeUnitCount else { return false }
        return text.withUTF8Buffer { self.bytes.prefix(self.contentLength).elementsEqual($0) }
    }

    func hasPrefix(_ text: StaticString) -> Bool {
        text.withUTF8Buffer { self.content.starts(with: $0) }
    }

    mutating func reset() {
        self.bytes.removeAll(keepingCapacity: true)
        self.length = 0
        self.lastByte = 0
    }
}

/// Parses kv line-protocol replies: one line each, ending in `\n`.
struct LineReplyParser {
    private var head = LineHead()
    /// The text of the last error reply seen (truncated), for the report.
    private(set) var lastError: String?

    /// Feeds bytes; calls `emit` once per complete reply, in order.
    mutating func parse(_ bytes: UnsafeRawBufferPointer, _ emit: (Reply) -> Void) {
        guard let raw = bytes.baseAddress, bytes.count > 0 else { return }
        let base = raw.assumingMemoryBound(to: UInt8.self)
        let count = bytes.count
        var index = 0
        while index < count {
            guard let found = memchr(base + index, 0x0A, count - index) else {
                self.head.absorb(base + index, count - index)
                return
            }
            let end = UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - base
            self.head.absorb(base + index, end - index)
            emit(self.classify())
            self.head.reset()
            index = end + 1
        }
    }

    private mutating func classify() -> Reply {
        if self.head.equals("OK") { return .ok }
        if self.head.equals("ERR not found") { return .notFound }
        if self.head.equals("ERR") || self.head.hasPrefix("ERR ") {
            self.lastError = String(decoding: self.head.content, as: UTF8.self)
            return .error
        }
        return .value
    }
}

/// Parses RESP2 replies: `+`, `-`, `:`, `$` bulk (binary-safe, skipped not copied) and `*`
/// arrays (nested; a whole array is one reply).
struct RESPReplyParser {
    private enum State {
        case type
        case line(UInt8)
        case bulk(remaining: Int)
    }

    private var state = State.type
    // Room for a whole error line such as Redis's AUTH refusals (about 100 bytes).
    private var head = LineHead(capacity: 160)
    /// Elements still expected by each open array, innermost last.
    private var openArrays: [Int] = []
    private(set) var lastError: String?

    /// Feeds bytes; calls `emit` once per complete reply, in order.
    /// - Throws: ``ProtocolViolation`` on a byte that cannot start a RESP reply or a bad length.
    mutating func parse(_ bytes: UnsafeRawBufferPointer, _ emit: (Reply) -> Void) throws(ProtocolViolation) {
        guard let raw = bytes.baseAddress, bytes.count > 0 else { return }
        let base = raw.assumingMemoryBound(to: UInt8.self)
        let count = bytes.count
        var index = 0
        while index < count {
            switch self.state {
            case .type:
                let byte = base[index]
                switch byte {
                case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "$"), UInt8(ascii: "*"):
                    self.state = .line(byte)
                    index += 1
                default:
                    throw ProtocolViolation(message: "not a RESP reply (byte 0x\(String(byte, radix: 16)))")
                }
            case .line(let type):
                guard let found = memchr(base + index, 0x0A, count - index) else {
                    self.head.absorb(base + index, count - index)
                    return
                }
                let end = UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - base
                self.head.absorb(base + index, end - index)
                index = end + 1
                try self.finishLine(type: type, emit)
                self.head.reset()
            case .bulk(let remaining):
                let taken = min(remaining, count - index)
                index += taken
                if taken == remaining {
                    self.state = .type
                    self.complete(.value, emit)
                } else {
                    self.state = .bulk(remaining: remaining - taken)
                }
            }
        }
    }

    private mutating func finishLine(type: UInt8, _ emit: (Reply) -> Void) throws(ProtocolViolation) {
        self.state = .type
        switch type {
        case UInt8(ascii: "+"):
            self.complete(self.head.equals("OK") ? .ok : .value, emit)
        case UInt8(ascii: "-"):
            self.lastError = String(decoding: self.head.content, as: UTF8.self)
            self.complete(.error, emit)
        case UInt8(ascii: ":"):
            self.complete(.value, emit)
        case UInt8(ascii: "$"):
            let length = try self.length()
            if length < 0 {
                self.complete(.null, emit)
            } else {
                self.state = .bulk(remaining: length + 2)  // the data and its CRLF
            }
        default:  // "*"
            let elements = try self.length()
            if elements < 0 {
                self.complete(.null, emit)
            } else if elements == 0 {
                self.complete(.value, emit)
            } else {
                self.openArrays.append(elements)
            }
        }
    }

    private func length() throws(ProtocolViolation) -> Int {
        let text = String(decoding: self.head.content, as: UTF8.self)
        guard self.head.contentLength <= 18, let value = Int(text), value >= -1 else {
            throw ProtocolViolation(message: "bad RESP length '\(text)'")
        }
        return value
    }

    /// One element is complete: it is a reply, or it fills in the innermost open array.
    private mutating func complete(_ reply: Reply, _ emit: (Reply) -> Void) {
        var reply = reply
        while let last = self.openArrays.last {
            if last > 1 {
                self.openArrays[self.openArrays.count - 1] = last - 1
                return
            }
            self.openArrays.removeLast()
            reply = .value  // a finished array is one element of its parent, or the reply
        }
        emit(reply)
    }
}
