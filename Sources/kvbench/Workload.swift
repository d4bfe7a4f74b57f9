// What kvbench sends: a seedable PRNG, and request templates for the line protocol, RESP and the
// memcached text protocol that are copied into a connection's output buffer with the key's digits
// patched in place. No allocation per request; nothing here touches a socket.

/// The wire protocol to speak.
enum WireProtocol: String, CaseIterable, Sendable {
    case line, resp, memcache
}

/// wyrand (Wang Yi's PRNG): one multiply per number, passes BigCrush, trivially seedable.
/// Not cryptographic; it only has to be fast and reproducible.
struct WyRand {
    private var state: UInt64

    init(seed: UInt64) { self.state = seed }

    @inline(__always)
    mutating func next() -> UInt64 {
        self.state &+= 0xa076_1d64_78bd_642f
        let product = self.state.multipliedFullWidth(by: self.state ^ 0xe703_7ed1_a0b4_28db)
        return product.high ^ product.low
    }

    /// A number in `0..<bound`, by Lemire's multiply-shift (bias below 2^-40 for our bounds,
    /// which is far below what a benchmark can notice, and saves the division).
    @inline(__always)
    mutating func next(below bound: UInt64) -> UInt64 {
        self.next().multipliedFullWidth(by: bound).high
    }

    /// A uniform double in [0, 1) with 53 random bits.
    @inline(__always)
    mutating func nextUnit() -> Double {
        Double(self.next() >> 11) * 0x1p-53
    }
}

/// Builds requests from templates: `set kvbench:000123 <value>\n`, `get kvbench:000123\n`, their
/// RESP multibulk forms, or memcached's `set <key> 0 0 <bytes>\r\n<value>\r\n` and `get <key>\r\n`.
/// Keys are the prefix and a zero-padded number, at least six digits wide.
struct RequestEncoder {
    let keyDigits: Int
    let keyPrefix: [UInt8]
    private let setTemplate: [UInt8]
    private let setDigitsOffset: Int
    private let getTemplate: [UInt8]
    private let getDigitsOffset: Int

    /// - Parameters:
    ///   - wireProtocol: line, RESP or memcache.
    ///   - keyspace: keys are numbered `0..<keyspace`.
    ///   - valueSize: bytes in every SET value.
    ///   - keyPrefix: what every key begins with (`kvbench:` by default).
    init(wireProtocol: WireProtocol, keyspace: Int, valueSize: Int, keyPrefix: String = "kvbench:") {
        self.keyDigits = max(6, String(max(keyspace - 1, 0)).count)
        self.keyPrefix = Array(keyPrefix.utf8)
        let key = self.keyPrefix + [UInt8](repeating: UInt8(ascii: "0"), count: self.keyDigits)
        let value = Self.value(size: valueSize)
        let crlf = Array("\r\n".utf8)
        switch wireProtocol {
        case .line:
            let setHead = Array("set ".utf8)
            self.setDigitsOffset = setHead.count + self.keyPrefix.count
            // `set <key>` alone stores the empty value (docs/protocol.md), so no separator for size 0.
            self.setTemplate = setHead + key + (valueSize > 0 ? [UInt8(ascii: " ")] + value : []) + [0x0A]
            let getHead = Array("get ".utf8)
            self.getDigitsOffset = getHead.count + self.keyPrefix.count
            self.getTemplate = getHead + key + [0x0A]
        case .resp:
            let setHead = Array("*3\r\n$3\r\nSET\r\n$\(key.count)\r\n".utf8)
            self.setDigitsOffset = setHead.count + self.keyPrefix.count
            self.setTemplate = setHead + key + Array("\r\n$\(valueSize)\r\n".utf8) + value + crlf
            let getHead = Array("*2\r\n$3\r\nGET\r\n$\(key.count)\r\n".utf8)
            self.getDigitsOffset = getHead.count + self.keyPrefix.count
            self.getTemplate = getHead + key + crlf
        case .memcache:
            // Flags 0, no expiry, and never `noreply`: every request gets its reply, so latency is
            // measured the same way as for the other protocols.
            let setHead = Array("set ".utf8)
            self.setDigitsOffset = setHead.count + self.keyPrefix.count
            self.setTemplate = setHead + key + Array(" 0 0 \(valueSize)\r\n".utf8) + value + crlf
            let getHead = Array("get ".utf8)
            self.getDigitsOffset = getHead.count + self.keyPrefix.count
            self.getTemplate = getHead + key + crlf
        }
    }

    /// The request that authenticates a connection: RESP `AUTH password`, line `auth password`.
    /// memcached's text protocol has no password command of its own (nil).
    static func authRequest(password: String, wireProtocol: WireProtocol) -> [UInt8]? {
        let bytes = Array(password.utf8)
        switch wireProtocol {
        case .line: return Array("auth ".utf8) + bytes + [0x0A]
        case .resp: return Array("*2\r\n$4\r\nAUTH\r\n$\(bytes.count)\r\n".utf8) + bytes + Array("\r\n".utf8)
        case .memcache: return nil
        }
    }

    /// A printable value of `size` bytes that never begins with `ERR ` and holds no whitespace.
    static func value(size: Int) -> [UInt8] {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        return (0..<size).map { alphabet[$0 % alphabet.count] }
    }

    /// Appends one request for key number `key` to `output`.
    @inline(__always)
    func append(isGet: Bool, key: Int, to output: inout [UInt8]) {
        let start = output.count
        let template = isGet ? self.getTemplate : self.setTemplate
        output.append(contentsOf: template)
        var remaining = key
        let digitsStart = start + (isGet ? self.getDigitsOffset : self.setDigitsOffset)
        output.withUnsafeMutableBufferPointer { buffer in
            var index = digitsStart + self.keyDigits - 1
            while remaining > 0 && index >= digitsStart {
                buffer[index] = UInt8(truncatingIfNeeded: 48 + remaining % 10)
                remaining /= 10
                index -= 1
            }
        }
    }

    /// The key's text, e.g. `kvbench:000123` (for tests and messages).
    func keyText(_ key: Int) -> String {
        let digits = String(key)
        return String(decoding: self.keyPrefix, as: UTF8.self)
            + String(repeating: "0", count: max(0, self.keyDigits - digits.count)) + digits
    }
}
