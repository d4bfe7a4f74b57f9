// The keyspace-wide commands: KEYS, SCAN (with the store's guarantee: a key present for the
// whole scan comes back at least once), RANDOMKEY, OBJECT and MEMORY USAGE. Patterns are Redis's
// globs, matched by the store.

import Store

extension Commands {
    /// KEYS pattern: every live key matching it (O(keys), as in Redis).
    static func keys(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let keys = call.store.keys(matching: arguments.copy(1), now: call.nowMilliseconds)
        call.reply.arrayHeader(keys.count)
        for key in keys { call.reply.bulk(key) }
    }

    /// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]: the next cursor and a batch of keys.
    static func scan(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let cursor = Self.parseCursor(arguments[1]) else { return call.reply.error(.invalidCursor) }
        var count = 10
        var pattern: [UInt8]?
        var type: ValueType?
        var unknownType = false
        var i = 2
        while i < arguments.count {
            guard i + 1 < arguments.count else { return call.reply.error(.syntax) }
            if arguments.argument(i, is: "count") {
                guard let n = call.integerArgument(arguments, i + 1) else { return }
                guard n >= 1 else { return call.reply.error(.syntax) }
                count = Int(min(n, Int64(Int32.max)))
            } else if arguments.argument(i, is: "match") {
                pattern = arguments[i + 1].elementsEqual("*".utf8) ? nil : arguments.copy(i + 1)
            } else if arguments.argument(i, is: "type") {
                // Redis compares the name without regard to case; a name no type has matches nothing.
                type = ValueType(name: arguments[i + 1].map(ASCII.lowercased))
                unknownType = type == nil
            } else {
                return call.reply.error(.syntax)
            }
            i += 2
        }
        let (next, keys) = call.store.scan(cursor: cursor, count: count, pattern: pattern, type: type, now: call.nowMilliseconds)
        call.reply.arrayHeader(2)
        var digits: [UInt8] = []
        digits.appendDecimal(next)
        call.reply.bulk(digits)
        let shown = unknownType ? [] : keys
        call.reply.arrayHeader(shown.count)
        for key in shown { call.reply.bulk(key) }
    }

    /// The MATCH pattern and COUNT options of HSCAN, SSCAN and ZSCAN from argument `first` on, checked
    /// as Redis checks them (a pattern of `*` is no pattern). - Returns: nil once an error has been
    /// answered.
    static func scanOptions(
        _ arguments: ArgumentVector, from first: Int, _ call: inout CommandCall
    ) -> (count: Int, pattern: [UInt8]?)? {
        var count = 10
        var pattern: [UInt8]?
        var i = first
        while i < arguments.count {
            guard i + 1 < arguments.count else {
                call.reply.error(.syntax)
                return nil
            }
            if arguments.argument(i, is: "count") {
                guard let n = call.integerArgument(arguments, i + 1) else { return nil }
                guard n >= 1 else {
                    call.reply.error(.syntax)
                    return nil
                }
                count = Int(min(n, Int64(Int32.max)))
            } else if arguments.argument(i, is: "match") {
                pattern = arguments[i + 1].elementsEqual("*".utf8) ? nil : arguments.copy(i + 1)
            } else {
                call.reply.error(.syntax)
                return nil
            }
            i += 2
        }
        return (count, pattern)
    }

    /// A cursor as Redis's strtoul reads it: an optional sign, decimal digits, within 64 bits
    /// (a minus wraps around, as strtoul's does).
    static func parseCursor(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        var digits = bytes
        let negative = digits.first == ASCII.minus
        if negative || digits.first == UInt8(ascii: "+") { digits = digits.dropFirst() }
        guard !digits.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in digits {
            guard byte >= ASCII.zero && byte <= ASCII.nine else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(byte - ASCII.zero))
            guard !o1 && !o2 else { return nil }
            value = s
        }
        return negative ? 0 &- value : value
    }

    /// RANDOMKEY: a random live key, or null.
    static func randomkey(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        if let key = call.store.randomKey(now: call.nowMilliseconds) { call.reply.bulk(key) } else { call.reply.null() }
    }

    /// OBJECT ENCODING|IDLETIME|REFCOUNT|FREQ key.
    static func object(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let isEncoding = arguments.argument(1, is: "encoding")
        guard isEncoding || arguments.argument(1, is: "idletime") || arguments.argument(1, is: "refcount")
            || arguments.argument(1, is: "freq")
        else { return call.reply.error(.unknownSubcommand(command: "OBJECT", arguments[1])) }
        guard arguments.count == 3 else {
            let name: StaticString = isEncoding ? "object|encoding"
                : arguments.argument(1, is: "idletime") ? "object|idletime"
                : arguments.argument(1, is: "refcount") ? "object|refcount" : "object|freq"
            return call.reply.error(.wrongArity(name))
        }
        // Not an access, as in Redis (its OBJECT looks keys up without touching them).
        guard let facts = call.store.inspect(arguments.copy(2), now: call.nowMilliseconds) else { return call.reply.null() }
        if arguments.argument(1, is: "idletime") {
            call.reply.integer(facts.idleSeconds)
        } else if isEncoding {
            call.reply.bulk(Array(facts.encoding.utf8))
        } else if arguments.argument(1, is: "freq") {
            call.reply.error(.objectFreqWithoutLFU)
        } else if facts.type == .string, let value = call.store.value(forKey: arguments.copy(2)) {
            // Redis shares the integers 0…9999 as immortal objects.
            let shared = ASCII.parseInteger(value[...]).map { (0..<10_000).contains($0) } ?? false
            call.reply.integer(shared ? Int(Int32.max) : 1)
        } else {
            call.reply.integer(1)
        }
    }

    /// MEMORY USAGE key [SAMPLES n]: this server's account of the key, or null.
    static func memory(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.argument(1, is: "usage") else {
            return call.reply.error(.unknownSubcommand(command: "MEMORY", arguments[1]))
        }
        guard arguments.count >= 3 else { return call.reply.error(.wrongArity("memory|usage")) }
        if arguments.count > 3 {
            guard arguments.count == 5, arguments.argument(3, is: "samples") else { return call.reply.error(.syntax) }
            guard call.integerArgument(arguments, 4) != nil else { return }
        }
        if let facts = call.store.inspect(arguments.copy(2), now: call.nowMilliseconds) {
            call.reply.integer(facts.usedBytes)
        } else {
            call.reply.null()
        }
    }
}
