// The sorted set commands (ZADD … ZSCAN), as Redis 7.0 answers them, over the store's typed reads and
// element effects (Sources/Services/DataStore.swift). Ranges are in Commands+SortedSetRanges.swift, the
// set operations in Commands+SortedSetAlgebra.swift, parsing and printing of scores in
// SortedSetSupport.swift. The blocking pops (BZPOPMIN, BZPOPMAX, BZMPOP) are in Commands+SortedSetsBlocking.swift.

import Store

extension CommandTable {
    /// The sorted set family's rows.
    static let sortedSets: [CommandSpec] = [
        CommandSpec("zadd", arity: -4, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.zadd),
        CommandSpec("zincrby", arity: 4, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.zincrby),
        CommandSpec("zrem", arity: -3, flags: [.write, .fast], keys: .one, run: Commands.zrem),
        CommandSpec("zcard", arity: 2, flags: [.readOnly, .fast], keys: .one, run: Commands.zcard),
        CommandSpec("zscore", arity: 3, flags: [.readOnly, .fast], keys: .one, run: Commands.zscore),
        CommandSpec("zmscore", arity: -3, flags: [.readOnly, .fast], keys: .one, run: Commands.zmscore),
        CommandSpec("zrank", arity: 3, flags: [.readOnly, .fast], keys: .one, run: Commands.zrank),
        CommandSpec("zrevrank", arity: 3, flags: [.readOnly, .fast], keys: .one, run: Commands.zrevrank),
        CommandSpec("zcount", arity: 4, flags: [.readOnly, .fast], keys: .one, run: Commands.zcount),
        CommandSpec("zlexcount", arity: 4, flags: [.readOnly, .fast], keys: .one, run: Commands.zlexcount),
        CommandSpec("zrange", arity: -4, flags: [.readOnly], keys: .one, run: Commands.zrange),
        CommandSpec("zrangestore", arity: -5, flags: [.write, .mayAddMemory], keys: KeyPositions(first: 1, last: 2, step: 1),
                    run: Commands.zrangestore),
        CommandSpec("zrevrange", arity: -4, flags: [.readOnly], keys: .one, run: Commands.zrevrange),
        CommandSpec("zrangebyscore", arity: -4, flags: [.readOnly], keys: .one, run: Commands.zrangebyscore),
        CommandSpec("zrevrangebyscore", arity: -4, flags: [.readOnly], keys: .one, run: Commands.zrevrangebyscore),
        CommandSpec("zrangebylex", arity: -4, flags: [.readOnly], keys: .one, run: Commands.zrangebylex),
        CommandSpec("zrevrangebylex", arity: -4, flags: [.readOnly], keys: .one, run: Commands.zrevrangebylex),
        CommandSpec("zremrangebyscore", arity: 4, flags: [.write], keys: .one, run: Commands.zremrangebyscore),
        CommandSpec("zremrangebyrank", arity: 4, flags: [.write], keys: .one, run: Commands.zremrangebyrank),
        CommandSpec("zremrangebylex", arity: 4, flags: [.write], keys: .one, run: Commands.zremrangebylex),
        CommandSpec("zpopmin", arity: -2, flags: [.write, .fast], keys: .one, run: Commands.zpopmin),
        CommandSpec("zpopmax", arity: -2, flags: [.write, .fast], keys: .one, run: Commands.zpopmax),
        CommandSpec("zmpop", arity: -4, flags: [.write], run: Commands.zmpop),
        CommandSpec("zunion", arity: -3, flags: [.readOnly], run: Commands.zunion),
        CommandSpec("zinter", arity: -3, flags: [.readOnly], run: Commands.zinter),
        CommandSpec("zdiff", arity: -3, flags: [.readOnly], run: Commands.zdiff),
        CommandSpec("zunionstore", arity: -4, flags: [.write, .mayAddMemory], keys: .one, run: Commands.zunionstore),
        CommandSpec("zinterstore", arity: -4, flags: [.write, .mayAddMemory], keys: .one, run: Commands.zinterstore),
        CommandSpec("zdiffstore", arity: -4, flags: [.write, .mayAddMemory], keys: .one, run: Commands.zdiffstore),
        CommandSpec("zintercard", arity: -3, flags: [.readOnly], run: Commands.zintercard),
        CommandSpec("zrandmember", arity: -2, flags: [.readOnly], keys: .one, run: Commands.zrandmember),
        CommandSpec("zscan", arity: -3, flags: [.readOnly], keys: .one, run: Commands.zscan),
    ]
}

extension Commands {
    /// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member …].
    static func zadd(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        // One pair whose score starts as no option does (a digit, a sign, a point): ZADD's commonest
        // form, with nothing to look for among the options.
        if arguments.count == 4, Self.startsAsNumber(arguments, 2) {
            return Self.zaddPlain(arguments, from: 2, ch: false, &call)
        }
        var nx = false, xx = false, gt = false, lt = false, ch = false, incr = false
        var index = 2
        while index < arguments.count {
            if arguments.argument(index, is: "nx") { nx = true }
            else if arguments.argument(index, is: "xx") { xx = true }
            else if arguments.argument(index, is: "gt") { gt = true }
            else if arguments.argument(index, is: "lt") { lt = true }
            else if arguments.argument(index, is: "ch") { ch = true }
            else if arguments.argument(index, is: "incr") { incr = true }
            else { break }
            index += 1
        }
        let remaining = arguments.count - index
        guard remaining > 0 && remaining % 2 == 0 else { return call.reply.error(.syntax) }
        if nx && xx {
            return call.reply.error(.redis(code: "ERR", "XX and NX options at the same time are not compatible"))
        }
        if (gt && nx) || (lt && nx) || (gt && lt) {
            return call.reply.error(.redis(code: "ERR", "GT, LT, and/or NX options at the same time are not compatible"))
        }
        if incr && remaining > 2 {
            return call.reply.error(.redis(code: "ERR", "INCR option supports a single increment-element pair"))
        }
        if !(nx || xx || gt || lt || incr) { return Self.zaddPlain(arguments, from: index, ch: ch, &call) }
        var pairs: [(Double, [UInt8])] = []
        pairs.reserveCapacity(remaining / 2)
        for i in stride(from: index, to: arguments.count, by: 2) {
            guard let score = ScoreText.value(arguments[i]) else { return call.reply.error(.notFloat) }
            pairs.append((score, arguments.copy(i + 1)))
        }
        Self.zaddPairs(pairs, key: arguments.copy(1), nx: nx, xx: xx, gt: gt, lt: lt, ch: ch, incr: incr, &call)
    }

    /// Whether argument `index` starts with a digit, `-`, `+` or `.`: what no ZADD option does.
    @inline(__always)
    private static func startsAsNumber(_ arguments: ArgumentVector, _ index: Int) -> Bool {
        arguments.withUnsafeBytes(index) { bytes in
            guard let first = bytes.first else { return false }
            return first &- UInt8(ascii: "0") < 10 || first == UInt8(ascii: "-") || first == UInt8(ascii: "+")
                || first == UInt8(ascii: ".")
        }
    }

    /// ZINCRBY key increment member.
    static func zincrby(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let increment = ScoreText.value(arguments[2]) else { return call.reply.error(.notFloat) }
        // ZADD INCR's work for one pair, the member borrowed from the request: one read of its score,
        // one write of the new one.
        let key = call.key(arguments, 1)
        var score = increment
        switch call.readSortedSet(key) {
        case .answered: return
        case .missing: break
        case .found(let value):
            if let current = arguments[3].withUnsafeBytes({ value.score(of: $0) }) {
                score += current
                if score.isNaN { return call.reply.error(.redis(code: "ERR", "resulting score is not a number (NaN)")) }
                if score == current { return call.reply.score(score) }
            }
        }
        guard Self.setScore(arguments, member: 3, score, in: key, &call) != nil else { return }
        call.notify(.zset, "zincr", key)
        call.reply.score(score)
    }

    /// Sets the score of the member that is argument `member`, borrowed from the request. - Returns:
    /// what happened, or nil once an error has been answered.
    @inline(__always)
    private static func setScore(_ arguments: ArgumentVector, member: Int, _ score: Double, in key: [UInt8],
                                 _ call: inout CommandCall) -> ElementWrite? {
        arguments[member].withUnsafeBytes { m in
            withUnsafeBytes(of: score) { s in call.apply(.add, Element(m, s), to: key, type: .zset) }
        }
    }

    /// ZADD's work once its arguments are parsed (Redis's zsetAdd for each pair, one unit in the log).
    private static func zaddPairs(_ pairs: [(Double, [UInt8])], key: [UInt8], nx: Bool, xx: Bool, gt: Bool, lt: Bool,
                                  ch: Bool, incr: Bool, _ call: inout CommandCall) {
        switch call.readSortedSet(key) {
        case .answered: return
        case .missing where xx: return incr ? call.reply.null() : call.reply.integer(0)
        case .missing, .found: break
        }
        var added = 0, updated = 0, processed = 0
        var lastScore = 0.0
        var failed = false
        let store = call.store
        store.atomically {
            for (given, member) in pairs {
                var old: Double?
                if case .found(let value) = call.readSortedSet(key) { old = member.withUnsafeBytes { value.score(of: $0) } }
                var score = given
                if let current = old {
                    if nx { continue }
                    if incr {
                        score += current
                        if score.isNaN {
                            call.reply.error(.redis(code: "ERR", "resulting score is not a number (NaN)"))
                            failed = true
                            return
                        }
                    }
                    if (lt && score >= current) || (gt && score <= current) { continue }
                    processed += 1
                    lastScore = score
                    if score != current {
                        guard call.setScore(member, score, in: key) != nil else { failed = true; return }
                        updated += 1
                    }
                } else {
                    if xx { continue }
                    guard call.setScore(member, score, in: key) != nil else { failed = true; return }
                    added += 1
                    processed += 1
                    lastScore = score
                }
            }
        }
        guard !failed else { return }
        if added + updated > 0 { call.notify(.zset, incr ? "zincr" : "zadd", key) }
        if incr {
            if processed > 0 { call.reply.score(lastScore) } else { call.reply.null() }
        } else {
            call.reply.integer(ch ? added + updated : added)
        }
    }

    /// ZADD without NX, XX, GT, LT or INCR: every pair sets its member's score, and nothing need be read
    /// first, since the store tells whether an add replaced a score (one look-up of the key and one of
    /// the member per pair; WRONGTYPE comes from the first pair, before anything changed). Members are
    /// borrowed from the request, not copied; every score is checked before the first is set.
    private static func zaddPlain(_ arguments: ArgumentVector, from index: Int, ch: Bool, _ call: inout CommandCall) {
        let single = arguments.count - index == 2
        if !single {
            for i in stride(from: index, to: arguments.count, by: 2) where ScoreText.value(arguments, i) == nil {
                return call.reply.error(.notFloat)
            }
        }
        var first: Double = 0
        if single {
            guard let score = ScoreText.value(arguments, index) else { return call.reply.error(.notFloat) }
            first = score
        }
        let key = call.key(arguments, 1)
        var added = 0, updated = 0
        if single {
            // No closure for the commonest form: variables a closure captures are checked for exclusive
            // access at run time on every use.
            guard let write = Self.setScore(arguments, member: index + 1, first, in: key, &call) else { return }
            if case .changed(_, _, let replaced) = write {
                if replaced { updated = 1 } else { added = 1 }
            }
        } else {
            var failed = false
            let store = call.store
            store.atomically {
                for i in stride(from: index, to: arguments.count, by: 2) {
                    let score = ScoreText.value(arguments, i)!
                    guard let write = Self.setScore(arguments, member: i + 1, score, in: key, &call) else {
                        failed = true
                        return
                    }
                    if case .changed(_, _, let replaced) = write {
                        if replaced { updated += 1 } else { added += 1 }
                    }
                }
            }
            guard !failed else { return }
        }
        if added + updated > 0 { call.notify(.zset, "zadd", key) }
        call.reply.integer(ch ? added + updated : added)
    }

    /// ZREM key member [member …].
    static func zrem(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let key = call.key(arguments, 1)
        var removed = 0
        var failed = false
        let store = call.store
        store.atomically {
            for i in 2..<arguments.count {
                guard let write = call.removeMember(arguments.copy(i), from: key) else {
                    failed = true
                    return
                }
                guard case .changed(_, let keyRemoved, _) = write else { continue }
                removed += 1
                if keyRemoved { return }
            }
        }
        guard !failed else { return }
        call.notify(.zset, "zrem", key, ifChanged: removed > 0)
        call.reply.integer(removed)
    }

    /// ZCARD key.
    static func zcard(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch call.readSortedSet(call.key(arguments, 1)) {
        case .answered: return
        case .missing: call.reply.integer(0)
        case .found(let value): call.reply.integer(value.count)
        }
    }

    /// ZSCORE key member.
    static func zscore(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch call.readSortedSet(call.key(arguments, 1)) {
        case .answered: return
        case .missing: call.reply.null()
        case .found(let value):
            if let score = arguments[2].withUnsafeBytes({ value.score(of: $0) }) {
                call.reply.score(score)
            } else {
                call.reply.null()
            }
        }
    }

    /// ZMSCORE key member [member …].
    static func zmscore(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var found: SortedSetValue?
        switch call.readSortedSet(call.key(arguments, 1)) {
        case .answered: return
        case .missing: break
        case .found(let value): found = value
        }
        call.reply.arrayHeader(arguments.count - 2)
        for i in 2..<arguments.count {
            if let score = found.flatMap({ value in arguments[i].withUnsafeBytes { value.score(of: $0) } }) {
                call.reply.score(score)
            } else {
                call.reply.null()
            }
        }
    }

    /// ZRANK key member.
    static func zrank(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.rank(arguments, reverse: false, &call)
    }

    /// ZREVRANK key member.
    static func zrevrank(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.rank(arguments, reverse: true, &call)
    }

    private static func rank(_ arguments: ArgumentVector, reverse: Bool, _ call: inout CommandCall) {
        switch call.readSortedSet(call.key(arguments, 1)) {
        case .answered: return
        case .missing: call.reply.null()
        case .found(let value):
            if let rank = arguments[2].withUnsafeBytes({ value.rank(of: $0) }) {
                call.reply.integer(reverse ? value.count - 1 - rank : rank)
            } else {
                call.reply.null()
            }
        }
    }

    /// ZPOPMIN key [count].
    static func zpopmin(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.zpop(arguments, max: false, &call)
    }

    /// ZPOPMAX key [count].
    static func zpopmax(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.zpop(arguments, max: true, &call)
    }

    private static func zpop(_ arguments: ArgumentVector, max: Bool, _ call: inout CommandCall) {
        guard arguments.count <= 3 else { return call.reply.error(.syntax) }
        var count: Int?
        if arguments.count == 3 {
            guard let n = ASCII.parseInteger(arguments[2]), n >= 0 else {
                return call.reply.error(.redis(code: "ERR", "value is out of range, must be positive"))
            }
            count = Int(n)
        }
        guard let count else { return Self.popOne(call.key(arguments, 1), max: max, &call) }
        Self.pop(keys: [arguments.copy(1)], max: max, count: count, nested: call.reply.encoding == .resp3, emitKey: false,
                 &call)
    }

    /// ZPOPMIN / ZPOPMAX without a count (what queues and redis-benchmark send): one element, its reply
    /// encoded while its node is still there into one scratch block, whose copy of the member is then
    /// what the removal borrows (the store logs it after the node is gone), and the output takes the
    /// block in one copy. No array of keys or of popped pairs, no copy of the member but that one.
    private static func popOne(_ key: [UInt8], max: Bool, _ call: inout CommandCall) {
        let value: SortedSetValue
        switch call.readSortedSet(key) {
        case .answered: return
        case .missing:
            guard call.reply.encoding != .line else { return }
            return call.reply.output.append("*0\r\n")
        case .found(let found): value = found
        }
        guard call.reply.encoding != .line else {
            return Self.pop(keys: [key], max: max, count: 1, nested: false, emitKey: false, &call)
        }
        let resp3 = call.reply.encoding == .resp3
        let (member, score) = value.end(max: max)!
        let length = member.count
        // `*2\r\n$<n>\r\n<member>\r\n` then the score (ReplyWriter.encodeScore's room).
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4 + 1 + 20 + 2 + length + 2 + 8 + ScoreText.formattedCapacity) {
            let p = $0.baseAddress!
            let memberStart = 5 + ScoreText.writeDecimal(UInt64(length), to: p + 5) + 2
            p[0] = UInt8(ascii: "*")
            p[1] = UInt8(ascii: "2")
            p[2] = UInt8(ascii: "\r")
            p[3] = UInt8(ascii: "\n")
            p[4] = UInt8(ascii: "$")
            p[memberStart - 2] = UInt8(ascii: "\r")
            p[memberStart - 1] = UInt8(ascii: "\n")
            if length > 0 {
                UnsafeMutableRawPointer(p + memberStart).copyMemory(from: member.baseAddress!, byteCount: length)
            }
            p[memberStart + length] = UInt8(ascii: "\r")
            p[memberStart + length + 1] = UInt8(ascii: "\n")
            let scoreStart = memberStart + length + 2
            let used = scoreStart + ReplyWriter.encodeScore(score, resp3: resp3, at: p + scoreStart)
            // The node goes with the removal: from here only the copy of its member is read.
            guard call.apply(.remove, Element(UnsafeRawBufferPointer(start: p + memberStart, count: length)), to: key,
                             type: .zset) != nil else { return }
            call.notify(.zset, max ? "zpopmax" : "zpopmin", key)
            call.reply.output.append(contentsOf: UnsafeBufferPointer(start: p, count: used))
        }
    }

    /// ZMPOP numkeys key [key …] MIN|MAX [COUNT count].
    static func zmpop(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let request = Self.multiPopRequest(arguments, numkeysIndex: 1, &call) else { return }
        Self.pop(keys: request.keys, max: request.max, count: request.count, nested: true, emitKey: true, &call)
    }

    /// ZMPOP's and BZMPOP's arguments from `numkeysIndex` on (numkeys key [key …] MIN|MAX [COUNT
    /// count]), checked in Redis's order. - Returns: nil once the error has been answered.
    static func multiPopRequest(
        _ arguments: ArgumentVector, numkeysIndex: Int, _ call: inout CommandCall
    ) -> (keys: [[UInt8]], max: Bool, count: Int)? {
        guard let numkeys = ASCII.parseInteger(arguments[numkeysIndex]), numkeys > 0 else {
            call.reply.error(.redis(code: "ERR", "numkeys should be greater than 0"))
            return nil
        }
        let whereIndex = numkeysIndex + 1 + Int(numkeys)
        guard numkeys < Int64(arguments.count), whereIndex < arguments.count else {
            call.reply.error(.syntax)
            return nil
        }
        let max: Bool
        if arguments.argument(whereIndex, is: "min") {
            max = false
        } else if arguments.argument(whereIndex, is: "max") {
            max = true
        } else {
            call.reply.error(.syntax)
            return nil
        }
        var count: Int?
        var i = whereIndex + 1
        while i < arguments.count {
            guard count == nil, arguments.argument(i, is: "count"), i + 1 < arguments.count else {
                call.reply.error(.syntax)
                return nil
            }
            guard let n = ASCII.parseInteger(arguments[i + 1]), n > 0 else {
                call.reply.error(.redis(code: "ERR", "count should be greater than 0"))
                return nil
            }
            count = Int(n)
            i += 2
        }
        return ((numkeysIndex + 1..<whereIndex).map { arguments.copy($0) }, max, count ?? 1)
    }

    /// Redis's genericZpopCommand: pops from the first non-empty key of `keys`.
    static func pop(keys: [[UInt8]], max: Bool, count: Int, nested: Bool, emitKey: Bool, _ call: inout CommandCall) {
        var found: (key: [UInt8], value: SortedSetValue)?
        for key in keys {
            switch call.readSortedSet(key) {
            case .answered: return
            case .missing: continue
            case .found(let value): found = (key, value)
            }
            break
        }
        guard let (key, value) = found else { return emitKey ? call.reply.nullArray() : call.reply.arrayHeader(0) }
        guard count > 0 else { return call.reply.arrayHeader(0) }
        var popped: [([UInt8], Double)] = []
        let n = Swift.min(count, value.count)
        popped.reserveCapacity(n)
        value.forEach(fromRank: max ? value.count - 1 : 0, reverse: max) { member, score in
            popped.append(([UInt8](member), score))
            return popped.count < n
        }
        guard call.removeMembers(popped, from: key) else { return }
        call.notify(.zset, max ? "zpopmax" : "zpopmin", key, ifChanged: !popped.isEmpty)
        if emitKey {
            call.reply.arrayHeader(2)
            call.reply.bulk(key)
        }
        call.reply.arrayHeader(nested ? popped.count : 2 * popped.count)
        for (member, score) in popped {
            if nested { call.reply.arrayHeader(2) }
            call.reply.bulk(member)
            call.reply.score(score)
        }
    }

    /// ZRANDMEMBER key [count [WITHSCORES]].
    static func zrandmember(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count >= 3 else {
            switch call.readSortedSet(call.key(arguments, 1)) {
            case .answered: return
            case .missing: return call.reply.null()
            case .found(let value): return call.reply.bulk(value.element(atRank: Int.random(in: 0..<value.count))!.member)
            }
        }
        guard let l = ASCII.parseInteger(arguments[2]) else { return call.reply.error(.notInteger) }
        guard l != Int64.min else {
            return call.reply.error(.redis(code: "ERR",
                "value is out of range, value must between -9223372036854775807 and 9223372036854775807"))
        }
        guard arguments.count <= 4, arguments.count == 3 || arguments.argument(3, is: "withscores") else {
            return call.reply.error(.syntax)
        }
        let withScores = arguments.count == 4
        if withScores && (l < -Int64.max / 2 || l > Int64.max / 2) {
            return call.reply.error(.redis(code: "ERR", "value is out of range"))
        }
        let value: SortedSetValue
        switch call.readSortedSet(call.key(arguments, 1)) {
        case .answered: return
        case .missing: return call.reply.arrayHeader(0)
        case .found(let found): value = found
        }
        guard l != 0 else { return call.reply.arrayHeader(0) }
        let size = value.count
        if l < 0 || l == 1 {
            // Repeats allowed: each pick independent, in random order.
            let count = l < 0 ? Int(-l) : 1
            call.reply.sortedSetHeader(count, withScores: withScores)
            for _ in 0..<count {
                let (member, score) = value.element(atRank: Int.random(in: 0..<size))!
                call.reply.sortedSetElement(member, score, withScores: withScores)
            }
            return
        }
        if l >= size {
            // The whole set, highest first (Redis walks sorted sets from the tail here).
            call.reply.sortedSetHeader(size, withScores: withScores)
            value.forEach(fromRank: size - 1, reverse: true) { member, score in
                call.reply.sortedSetElement(member, score, withScores: withScores)
                return true
            }
            return
        }
        // Distinct members: a random subset of ranks, shown in random order.
        var ranks = Set<Int>()
        if Int(l) * 3 > size {
            ranks = Set(0..<size)
            while ranks.count > Int(l) { ranks.remove(ranks.randomElement()!) }
        } else {
            while ranks.count < Int(l) { ranks.insert(Int.random(in: 0..<size)) }
        }
        call.reply.sortedSetHeader(ranks.count, withScores: withScores)
        for rank in ranks.shuffled() {
            let (member, score) = value.element(atRank: rank)!
            call.reply.sortedSetElement(member, score, withScores: withScores)
        }
    }
}
