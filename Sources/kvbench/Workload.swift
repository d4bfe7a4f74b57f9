// What kvbench sends: a seedable PRNG that picks keys and SET/GET, and request templates for the
// line protocol and RESP that are copied into a connection's output buffer with the key's digits
// patched in place. No allocation per request; nothing here touches a socket.

/// The kv wire protocol to speak.
enum WireProtocol: String, CaseIterable, Sendable {
    case line, resp
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
}

/// Builds requests from templates: `set key:000123 <value>\n`, `get key:000123\n`, or their RESP
/// multibulk forms. Keys are `key:` and a zero-padded number, at least six digits wide.
struct RequestEncoder {
    let keyDigits: Int
    private let setTemplate: [UInt8]
    private let setDigitsOffset: Int
    private let getTemplate: [UInt8]
    private let getDigitsOffset: Int

    /// - Parameters:
    ///   - wireProtocol: line or RESP.
    ///   - keyspace: keys are numbered `0..<keyspace`.
    ///   - valueSize: bytes in every SET value.
    init(wireProtocol: WireProtocol, keyspace: Int, valueSize: Int) {
        self.keyDigits = max(6, String(max(keyspace - 1, 0)).count)
        let key = Array("key:".utf8) + [UInt8](repeating: UInt8(ascii: "0"), count: self.keyDigits)
        let value = Self.value(size: valueSize)
        switch wireProtocol {
        case .line:
            let setHead = Array("set ".utf8)
            self.setDigitsOffset = setHead.count + 4
            // `set <key>` alone stores the empty value (docs/protocol.md), so no separator for size 0.
            self.setTemplate = setHead + key + (valueSize > 0 ? [UInt8(ascii: " ")] + value : []) + [0x0A]
            let getHead = Array("get ".utf8)
            self.getDigitsOffset = getHead.count + 4
            self.getTemplate = getHead + key + [0x0A]
        case .resp:
            let setHead = Array("*3\r\n$3\r\nSET\r\n$\(key.count)\r\n".utf8)
            self.setDigitsOffset = setHead.count + 4
            self.setTemplate = setHead + key + Array("\r\n$\(valueSize)\r\n".utf8) + value + Array("\r\n".utf8)
            let getHead = Array("*2\r\n$3\r\nGET\r\n$\(key.count)\r\n".utf8)
            self.getDigitsOffset = getHead.count + 4
            self.getTemplate = getHead + key + Array("\r\n".utf8)
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

    /// The key's text, e.g. `key:000123` (for tests and messages).
    func keyText(_ key: Int) -> String {
        let digits = String(key)
        return "key:" + String(repeating: "0", count: max(0, self.keyDigits - digits.count)) + digits
    }
}
