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
/// RESP multibulk forms, or memcached's `set <key> 0 0 <bytes>\r\n<value>\r\n` and `get <key>\r\n`;
/// for the collection workloads (RESP only) `HSET`/`HGET`, `SADD`/`SISMEMBER`, and `EVALSHA` of the
/// script workload. Keys are the prefix and a zero-padded number, at least six digits wide; every
/// number in a template is patched in place, so nothing is allocated per request.
struct RequestEncoder {
    let keyDigits: Int
    let keyPrefix: [UInt8]
    /// The GET-side request (HGET, SISMEMBER) and the SET-side one (HSET, SADD, EVALSHA).
    private let read: Template
    private let write: Template

    /// Request bytes with the places where numbers go.
    struct Template {
        var bytes: [UInt8]
        /// Where digits go: the byte offset of the first, and which number.
        var patches: [(offset: Int, number: Number)]
    }

    /// Which number of element `e` a patch writes: `e` itself (the kv workload's key, a set member,
    /// a hash field), or the collection it belongs to (`e / elementsPerKey`).
    enum Number {
        case element
        case collection
    }

    private let elementsPerKey: Int

    /// - Parameters:
    ///   - wireProtocol: line, RESP or memcache.
    ///   - workload: what the requests do (kv: SET/GET; the others RESP only).
    ///   - keyspace: elements are numbered `0..<keyspace` (keys for kv; fields or members otherwise).
    ///   - valueSize: bytes in every SET/HSET value and script argument.
    ///   - keyPrefix: what every key begins with (`kvbench:` by default).
    ///   - elementsPerKey: fields per hash, members per set.
    ///   - scriptSHA: the script workload's SHA1 (hex).
    init(wireProtocol: WireProtocol, workload: BenchWorkload = .kv, keyspace: Int, valueSize: Int,
         keyPrefix: String = "kvbench:", elementsPerKey: Int = 10, scriptSHA: String = "")
    {
        self.keyDigits = max(6, String(max(keyspace - 1, 0)).count)
        self.keyPrefix = Array(keyPrefix.utf8)
        self.elementsPerKey = max(1, elementsPerKey)
        let zeros = [UInt8](repeating: UInt8(ascii: "0"), count: self.keyDigits)
        let key = self.keyPrefix + zeros
        let value = Self.value(size: valueSize)
        let crlf = Array("\r\n".utf8)
        let prefixCount = self.keyPrefix.count
        let digits = self.keyDigits
        let zeroText = String(repeating: "0", count: digits)
        let keyText = keyPrefix + zeroText
        switch (wireProtocol, workload) {
        case (.line, _):
            let setHead = Array("set ".utf8)
            // `set <key>` alone stores the empty value (docs/protocol.md), so no separator for size 0.
            self.write = Template(bytes: setHead + key + (valueSize > 0 ? [UInt8(ascii: " ")] + value : []) + [0x0A],
                                  patches: [(setHead.count + prefixCount, .element)])
            let getHead = Array("get ".utf8)
            self.read = Template(bytes: getHead + key + [0x0A], patches: [(getHead.count + prefixCount, .element)])
        case (.resp, .kv), (.resp, .queue), (.resp, .scheduler), (.resp, .pubsub):  // the flows' requests are FlowRunner's
            self.write = Self.resp(["SET", keyText, ""], [2: value], numbers: [1: .element], digits: digits)
            self.read = Self.resp(["GET", keyText], numbers: [1: .element], digits: digits)
        case (.resp, .hash):
            let field = "f" + zeroText
            self.write = Self.resp(["HSET", keyText, field, ""], [3: value], numbers: [1: .collection, 2: .element], digits: digits)
            self.read = Self.resp(["HGET", keyText, field], numbers: [1: .collection, 2: .element], digits: digits)
        case (.resp, .set):
            let member = "m" + zeroText
            self.write = Self.resp(["SADD", keyText, member], numbers: [1: .collection, 2: .element], digits: digits)
            self.read = Self.resp(["SISMEMBER", keyText, member], numbers: [1: .collection, 2: .element], digits: digits)
        case (.resp, .script):
            self.write = Self.resp(["EVALSHA", scriptSHA, "1", keyText, ""], [4: value], numbers: [3: .element], digits: digits)
            self.read = self.write
        case (.memcache, _):
            // Flags 0, no expiry, and never `noreply`: every request gets its reply, so latency is
            // measured the same way as for the other protocols.
            let setHead = Array("set ".utf8)
            self.write = Template(bytes: setHead + key + Array(" 0 0 \(valueSize)\r\n".utf8) + value + crlf,
                                  patches: [(setHead.count + prefixCount, .element)])
            let getHead = Array("get ".utf8)
            self.read = Template(bytes: getHead + key + crlf, patches: [(getHead.count + prefixCount, .element)])
        }
    }

    /// A RESP multibulk template of `arguments`; each argument named in `numbers` ends in `digits`
    /// digits, patched per request.
    private static func resp(_ arguments: [String], _ values: [Int: [UInt8]] = [:], numbers: [Int: Number], digits: Int) -> Template {
        var bytes = Array("*\(arguments.count)\r\n".utf8)
        var patches: [(offset: Int, number: Number)] = []
        for (index, text) in arguments.enumerated() {
            let argument = values[index] ?? Array(text.utf8)
            bytes += Array("$\(argument.count)\r\n".utf8)
            if let number = numbers[index] { patches.append((bytes.count + argument.count - digits, number)) }
            bytes += argument + Array("\r\n".utf8)
        }
        return Template(bytes: bytes, patches: patches)
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

    /// Appends one request for element number `key` to `output`: the read (GET, HGET, SISMEMBER) or
    /// the write (SET, HSET, SADD, EVALSHA).
    @inline(__always)
    func append(isGet: Bool, key: Int, to output: inout [UInt8]) {
        let start = output.count
        let template = isGet ? self.read : self.write
        output.append(contentsOf: template.bytes)
        let digits = self.keyDigits
        output.withUnsafeMutableBufferPointer { buffer in
            for patch in template.patches {
                var remaining = patch.number == .element ? key : key / self.elementsPerKey
                let digitsStart = start + patch.offset
                var index = digitsStart + digits - 1
                while remaining > 0 && index >= digitsStart {
                    buffer[index] = UInt8(truncatingIfNeeded: 48 + remaining % 10)
                    remaining /= 10
                    index -= 1
                }
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
