// Incremental parser for memcached text-protocol replies to `set` and `get`: `STORED`, `END`
// (a miss), `VALUE <key> <flags> <bytes> [<cas>]` + data block + ... + `END` (a hit), and the
// error lines. Data blocks are skipped by count, never copied. Matching replies to requests is
// the caller's job.

#if canImport(Glibc)
import Glibc
#endif

/// Parses memcached text-protocol replies (`\r\n`-terminated lines and counted data blocks).
struct MemcacheReplyParser {
    private enum State {
        case line
        /// Data block bytes still to skip, its trailing `\r\n` included.
        case data(remaining: Int)
    }

    private var state = State.line
    // Room for a whole VALUE line: memcached keys are at most 250 bytes.
    private var head = LineHead(capacity: 320)
    /// A VALUE was seen since the last END: the GET was a hit.
    private var sawValue = false
    private(set) var lastError: String?

    /// Feeds bytes; calls `emit` once per complete reply, in order.
    /// - Throws: ``ProtocolViolation`` on a VALUE line without a valid byte count.
    mutating func parse(_ bytes: UnsafeRawBufferPointer, _ emit: (Reply) -> Void) throws(ProtocolViolation) {
        guard let raw = bytes.baseAddress, bytes.count > 0 else { return }
        let base = raw.assumingMemoryBound(to: UInt8.self)
        let count = bytes.count
        var index = 0
        while index < count {
            switch self.state {
            case .line:
                guard let found = memchr(base + index, 0x0A, count - index) else {
                    self.head.absorb(base + index, count - index)
                    return
                }
                let end = UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - base
                self.head.absorb(base + index, end - index)
                index = end + 1
                try self.finishLine(emit)
                self.head.reset()
            case .data(let remaining):
                let taken = min(remaining, count - index)
                index += taken
                self.state = taken == remaining ? .line : .data(remaining: remaining - taken)
            }
        }
    }

    private mutating func finishLine(_ emit: (Reply) -> Void) throws(ProtocolViolation) {
        if self.head.equals("STORED") {
            emit(.ok)
        } else if self.head.equals("END") {
            emit(self.sawValue ? .value : .null)
            self.sawValue = false
        } else if self.head.hasPrefix("VALUE ") {
            let words = self.head.content.split(separator: UInt8(ascii: " "))
            guard words.count >= 4, words[3].count <= 18,
                  let length = Int(String(decoding: words[3], as: UTF8.self)), length >= 0 else {
                throw ProtocolViolation(message: "bad memcached VALUE line '\(String(decoding: self.head.content, as: UTF8.self))'")
            }
            self.sawValue = true
            self.state = .data(remaining: length + 2)
        } else if self.head.equals("ERROR") || self.head.hasPrefix("CLIENT_ERROR") || self.head.hasPrefix("SERVER_ERROR")
                    || self.head.equals("NOT_STORED") {
            self.lastError = String(decoding: self.head.content, as: UTF8.self)
            emit(.error)
        } else {
            emit(.value)
        }
    }
}
