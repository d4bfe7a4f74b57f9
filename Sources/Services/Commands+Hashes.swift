// The hash commands (HSET … HSCAN), as Redis 7.0 answers them, over the store's typed reads and
// element effects (Sources/Services/DataStore.swift). Reads look at the ``HashValue`` the store holds
// (Sources/Store/Types/HashValue.swift); every change is an element effect — add sets a field, remove
// deletes one —, the store recording the effect that undoes it, and a command that changes several
// fields makes them one unit in the log.

import Store

extension CommandTable {
    /// The hash family's rows (arity and flags as Redis 7.0 declares them).
    static let hashes: [CommandSpec] = [
        CommandSpec("hset", arity: -4, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.hset),
        CommandSpec("hsetnx", arity: 4, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.hsetnx),
        CommandSpec("hget", arity: 3, flags: [.readOnly, .fast], keys: .one, run: Commands.hget),
        CommandSpec("hmset", arity: -4, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.hmset),
        CommandSpec("hmget", arity: -3, flags: [.readOnly, .fast], keys: .one, run: Commands.hmget),
        CommandSpec("hdel", arity: -3, flags: [.write, .fast], keys: .one, run: Commands.hdel),
        CommandSpec("hlen", arity: 2, flags: [.readOnly, .fast], keys: .one, run: Commands.hlen),
        CommandSpec("hstrlen", arity: 3, flags: [.readOnly, .fast], keys: .one, run: Commands.hstrlen),
        CommandSpec("hkeys", arity: 2, flags: [.readOnly], keys: .one, run: Commands.hkeys),
        CommandSpec("hvals", arity: 2, flags: [.readOnly], keys: .one, run: Commands.hvals),
        CommandSpec("hgetall", arity: 2, flags: [.readOnly], keys: .one, run: Commands.hgetall),
        CommandSpec("hexists", arity: 3, flags: [.readOnly, .fast], keys: .one, run: Commands.hexists),
        CommandSpec("hincrby", arity: 4, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.hincrby),
        CommandSpec("hincrbyfloat", arity: 4, flags: [.write, .mayAddMemory, .fast], keys: .one,
                    run: Commands.hincrbyfloat),
        CommandSpec("hrandfield", arity: -2, flags: [.readOnly], keys: .one, run: Commands.hrandfield),
        CommandSpec("hscan", arity: -3, flags: [.readOnly], keys: .one, run: Commands.hscan),
    ]
}

/// What a hash command found at its key.
enum HashRead {
    case missing
    case found(HashValue)
    /// The key holds another type: WRONGTYPE has been answered.
    case answeredWrongType
}

extension CommandCall {
    /// The hash at `key` (read between store calls only: nothing may change it while it is held), or
    /// missing; another type answers WRONGTYPE.
    mutating func readHash(_ key: [UInt8]) -> HashRead {
        switch self.store.collection(forKey: key, type: .hash, now: self.nowMilliseconds) {
        case .missing: return .missing
        case .found(let hash): return .found(hash as! HashValue)
        case .wrongType:
            self.reply.error(.wrongType)
            return .answeredWrongType
        }
    }

    /// Sets `field` of the hash at `key` to `value` (the store records what undoes it). - Returns: what
    /// the write did (`.changed` with `replaced` false: a new field; `.unchanged`: the field held that
    /// value), or nil once a storage error (or WRONGTYPE) has been answered.
    mutating func setHashField(_ key: [UInt8], _ field: [UInt8], _ value: [UInt8]) -> ElementWrite? {
        self.apply(ElementEffect(.add, field, value), to: key, type: .hash)
    }
}

/// HRANDFIELD's generator: SplitMix64 seeded once from the kernel. Loop thread only.
struct HashRandom: RandomNumberGenerator {
    nonisolated(unsafe) static var shared = HashRandom()
    private var state: UInt64

    init() {
        var system = SystemRandomNumberGenerator()
        self.state = system.next()
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Commands {
    /// HSET key field value [field value …]: the number of fields created.
    static func hset(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.setFields(arguments, &call, name: "hset", answersCount: true)
    }

    /// HMSET key field value [field value …]: HSET answering OK.
    static func hmset(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.setFields(arguments, &call, name: "hmset", answersCount: false)
    }

    private static func setFields(_ arguments: ArgumentVector, _ call: inout CommandCall, name: StaticString, answersCount: Bool) {
        guard arguments.count % 2 == 0 else { return call.reply.error(.wrongArity(name)) }
        let key = arguments.copy(1)
        let created: Int?
        // One field is one record: no unit to open (the commonest HSET).
        if arguments.count == 4 {
            created = Self.setPairs(arguments, key, &call)
        } else {
            var result: Int?
            call.store.atomically { result = Self.setPairs(arguments, key, &call) }
            created = result
        }
        guard let created else { return }
        call.notify(.hash, "hset", key)
        if answersCount { call.reply.integer(created) } else { call.reply.ok() }
    }

    /// Sets the field/value pairs from argument 2 in the hash at `key`. No read first: the write answers
    /// WRONGTYPE (before changing anything) and says whether the field was new. - Returns: the fields
    /// created, or nil once an error has been answered.
    private static func setPairs(_ arguments: ArgumentVector, _ key: [UInt8], _ call: inout CommandCall) -> Int? {
        var created = 0
        for i in stride(from: 2, to: arguments.count, by: 2) {
            let write = arguments[i].withUnsafeBytes { field in
                arguments[i + 1].withUnsafeBytes { value in call.apply(.add, Element(field, value), to: key, type: .hash) }
            }
            guard let write else { return nil }
            if case .changed(_, _, replaced: false) = write { created += 1 }
        }
        return created
    }

    /// HSETNX key field value: 1 when the field was created, 0 when it existed.
    static func hsetnx(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let key = arguments.copy(1)
        switch call.readHash(key) {
        case .answeredWrongType: return
        case .found(let hash) where hash.contains(arguments[2]): return call.reply.integer(0)
        case .missing, .found: break
        }
        guard call.setHashField(key, arguments.copy(2), arguments.copy(3)) != nil else { return }
        call.notify(.hash, "hset", key)
        call.reply.integer(1)
    }

    /// HGET key field: the value, or null.
    static func hget(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch call.readHash(arguments.copy(1)) {
        case .answeredWrongType: return
        case .missing: call.reply.null()
        case .found(let hash):
            arguments[2].withUnsafeBytes { field in
                hash.withValue(of: field) { value in
                    if let value { call.reply.bulk(value) } else { call.reply.null() }
                }
            }
        }
    }

    /// HMGET key field [field …]: each value or null.
    static func hmget(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var hash: HashValue?
        switch call.readHash(arguments.copy(1)) {
        case .answeredWrongType: return
        case .missing: break
        case .found(let found): hash = found
        }
        call.reply.arrayHeader(arguments.count - 2)
        for i in 2..<arguments.count {
            guard let hash else {
                call.reply.null()
                continue
            }
            arguments[i].withUnsafeBytes { field in
                hash.withValue(of: field) { value in
                    if let value { call.reply.bulk(value) } else { call.reply.null() }
                }
            }
        }
    }

    /// HDEL key field [field …]: the number of fields removed (the key goes with its last field).
    static func hdel(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let key = arguments.copy(1)
        switch call.readHash(key) {
        case .answeredWrongType: return
        case .missing: return call.reply.integer(0)
        case .found: break
        }
        var removed = 0
        var failed = false
        var emptied = false
        func run(_ call: inout CommandCall) {
            for i in 2..<arguments.count where !emptied {
                // An absent field (or one named twice) changes nothing and is not counted.
                let write = arguments[i].withUnsafeBytes { field in call.apply(.remove, Element(field), to: key, type: .hash) }
                guard let write else {
                    failed = true
                    return
                }
                guard case .changed(_, let keyRemoved, _) = write else { continue }
                removed += 1
                if keyRemoved { emptied = true }
            }
        }
        if arguments.count == 3 {
            run(&call)
        } else {
            call.store.atomically { run(&call) }
        }
        call.notify(.hash, "hdel", key, ifChanged: !failed && removed > 0)
        if !failed { call.reply.integer(removed) }
    }

    /// HLEN key: the number of fields (0 for a missing key).
    static func hlen(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch call.readHash(arguments.copy(1)) {
        case .answeredWrongType: return
        case .missing: call.reply.integer(0)
        case .found(let hash): call.reply.integer(hash.count)
        }
    }

    /// HSTRLEN key field: the value's length (0 when absent).
    static func hstrlen(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch call.readHash(arguments.copy(1)) {
        case .answeredWrongType: return
        case .missing: call.reply.integer(0)
        case .found(let hash): call.reply.integer(arguments[2].withUnsafeBytes { hash.withValue(of: $0) { $0?.count ?? 0 } })
        }
    }

    /// HEXISTS key field: 1 or 0.
    static func hexists(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch call.readHash(arguments.copy(1)) {
        case .answeredWrongType: return
        case .missing: call.reply.integer(0)
        case .found(let hash): call.reply.integer(hash.contains(arguments[2]) ? 1 : 0)
        }
    }

    /// HKEYS key: every field.
    static func hkeys(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.listHash(arguments, &call, fields: true, values: false)
    }

    /// HVALS key: every value.
    static func hvals(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.listHash(arguments, &call, fields: false, values: true)
    }

    /// HGETALL key: every field and value (a map in RESP3).
    static func hgetall(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.listHash(arguments, &call, fields: true, values: true)
    }

    private static func listHash(_ arguments: ArgumentVector, _ call: inout CommandCall, fields: Bool, values: Bool) {
        let both = fields && values
        switch call.readHash(arguments.copy(1)) {
        case .answeredWrongType: return
        case .missing: both ? call.reply.mapHeader(0) : call.reply.arrayHeader(0)
        case .found(let hash):
            both ? call.reply.mapHeader(hash.count) : call.reply.arrayHeader(hash.count)
            call.reply.bulkRun(expected: both ? 2 * hash.count : hash.count) { write in
                hash.forEachElement { element in
                    if fields { write(element.first) }
                    if values { write(element.second) }
                    return true
                }
            }
        }
    }

    /// HINCRBY key field increment: the new value of an integer field (a missing field counts as 0).
    static func hincrby(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let increment = call.integerArgument(arguments, 3) else { return }
        let key = arguments.copy(1)
        var old: [UInt8]?
        switch call.readHash(key) {
        case .answeredWrongType: return
        case .missing: break
        case .found(let hash): old = hash.value(of: arguments[2])
        }
        var current: Int64 = 0
        if let old {
            guard let parsed = ASCII.parseInteger(old[...]) else {
                return call.reply.error(.redis(code: "ERR", "hash value is not an integer"))
            }
            current = parsed
        }
        let (next, overflow) = current.addingReportingOverflow(increment)
        guard !overflow else { return call.reply.error(.redis(code: "ERR", "increment or decrement would overflow")) }
        var digits: [UInt8] = []
        digits.appendDecimal(next)
        guard call.setHashField(key, arguments.copy(2), digits) != nil else { return }
        call.notify(.hash, "hincrby", key)
        call.reply.integer(next)
    }

    /// HINCRBYFLOAT key field increment: the new value, computed and written as INCRBYFLOAT does
    /// (80-bit long double, `%.17Lf` with trailing zeros cut).
    static func hincrbyfloat(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let increment = LongDouble.parse(arguments[3]) else { return call.reply.error(.notFloat) }
        guard increment.isFinite else { return call.reply.error(.redis(code: "ERR", "value is NaN or Infinity")) }
        let key = arguments.copy(1)
        var old: [UInt8]?
        switch call.readHash(key) {
        case .answeredWrongType: return
        case .missing: break
        case .found(let hash): old = hash.value(of: arguments[2])
        }
        var current: LongDouble.Value = 0
        if let old {
            guard let parsed = LongDouble.parse(old[...]) else {
                return call.reply.error(.redis(code: "ERR", "hash value is not a float"))
            }
            current = parsed
        }
        let sum = current + increment
        guard sum.isFinite else { return call.reply.error(.nanOrInfinity) }
        let text = LongDouble.format(sum)
        guard call.setHashField(key, arguments.copy(2), text) != nil else { return }
        call.notify(.hash, "hincrbyfloat", key)
        call.reply.bulk(text)
    }

    /// HRANDFIELD key [count [WITHVALUES]]: one random field (or null); with a count, that many
    /// distinct fields (negative: that many draws, repeats allowed), with their values on request
    /// (RESP3: each pair its own two-element array).
    static func hrandfield(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count >= 3 else {
            switch call.readHash(arguments.copy(1)) {
            case .answeredWrongType: return
            case .missing: return call.reply.null()
            case .found(let hash):
                hash.randomElements(1, distinct: false, using: &HashRandom.shared) { call.reply.bulk($0.first) }
                return
            }
        }
        guard let requested = call.integerArgument(arguments, 2) else { return }
        guard requested != .min else {
            return call.reply.error(.redis(
                code: "ERR", "value is out of range, value must between -9223372036854775807 and 9223372036854775807"))
        }
        var withValues = false
        if arguments.count > 4 || (arguments.count == 4 && !arguments.argument(3, is: "withvalues")) {
            return call.reply.error(.syntax)
        } else if arguments.count == 4 {
            withValues = true
            guard requested >= -(Int64.max / 2) && requested <= Int64.max / 2 else {
                return call.reply.error(.redis(code: "ERR", "value is out of range"))
            }
        }
        let hash: HashValue
        switch call.readHash(arguments.copy(1)) {
        case .answeredWrongType: return
        case .missing: return call.reply.arrayHeader(0)
        case .found(let found): hash = found
        }
        let distinct = requested >= 0
        let count = Int(requested.magnitude)
        let replied = distinct ? min(count, hash.count) : count
        let nested = withValues && call.reply.encoding == .resp3
        call.reply.arrayHeader(withValues && !nested ? replied * 2 : replied)
        hash.randomElements(count, distinct: distinct, using: &HashRandom.shared) { element in
            if nested { call.reply.arrayHeader(2) }
            call.reply.bulk(element.first)
            if withValues { call.reply.bulk(element.second) }
        }
    }

    /// HSCAN key cursor [MATCH pattern] [COUNT count]: the next cursor and a batch of fields and
    /// values (a compact hash answers whole, with cursor 0, as Redis's listpack does).
    static func hscan(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let cursor = Self.parseCursor(arguments[2]) else { return call.reply.error(.invalidCursor) }
        let hash: HashValue
        switch call.readHash(arguments.copy(1)) {
        case .answeredWrongType: return
        case .missing:
            call.reply.arrayHeader(2)
            call.reply.bulk("0")
            return call.reply.arrayHeader(0)
        case .found(let found): hash = found
        }
        guard let (count, pattern) = Self.scanOptions(arguments, from: 3, &call) else { return }
        var found: [[UInt8]] = []
        let next = hash.scan(cursor: cursor, count: count) { element in
            if let pattern, !pattern.withUnsafeBytes({ Glob.matches(pattern: $0, element.first) }) { return }
            found.append([UInt8](element.first))
            found.append([UInt8](element.second))
        }
        call.reply.arrayHeader(2)
        var digits: [UInt8] = []
        digits.appendDecimal(next)
        call.reply.bulk(digits)
        call.reply.arrayHeader(found.count)
        for bytes in found { call.reply.bulk(bytes) }
    }
}
