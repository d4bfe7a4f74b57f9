// The set commands (SADD … SSCAN), as Redis 7.0 answers them, over the store's typed reads and
// element effects (Sources/Services/DataStore.swift). The value is Sources/Store/Types/SetValue.swift.
// A command that changes several members logs them as one unit (`atomically`); the *STORE commands
// build their result apart and hand it over whole (`setCollection`; an empty result deletes the key).

import Store

extension CommandTable {
    /// The set family's rows.
    static let sets: [CommandSpec] = [
        CommandSpec("sadd", arity: -3, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.sadd),
        CommandSpec("srem", arity: -3, flags: [.write, .fast], keys: .one, run: Commands.srem),
        CommandSpec("smembers", arity: 2, flags: [.readOnly], keys: .one, run: Commands.smembers),
        CommandSpec("sismember", arity: 3, flags: [.readOnly, .fast], keys: .one, run: Commands.sismember),
        CommandSpec("smismember", arity: -3, flags: [.readOnly, .fast], keys: .one, run: Commands.smismember),
        CommandSpec("scard", arity: 2, flags: [.readOnly, .fast], keys: .one, run: Commands.scard),
        CommandSpec("spop", arity: -2, flags: [.write, .fast], keys: .one, run: Commands.spop),
        CommandSpec("srandmember", arity: -2, flags: [.readOnly], keys: .one, run: Commands.srandmember),
        CommandSpec("sinter", arity: -2, flags: [.readOnly], keys: .all, run: Commands.sinter),
        CommandSpec("sintercard", arity: -3, flags: [.readOnly], run: Commands.sintercard),
        CommandSpec("sinterstore", arity: -3, flags: [.write, .mayAddMemory], keys: .all, run: Commands.sinterstore),
        CommandSpec("sunion", arity: -2, flags: [.readOnly], keys: .all, run: Commands.sunion),
        CommandSpec("sunionstore", arity: -3, flags: [.write, .mayAddMemory], keys: .all, run: Commands.sunionstore),
        CommandSpec("sdiff", arity: -2, flags: [.readOnly], keys: .all, run: Commands.sdiff),
        CommandSpec("sdiffstore", arity: -3, flags: [.write, .mayAddMemory], keys: .all, run: Commands.sdiffstore),
        CommandSpec("smove", arity: 4, flags: [.write, .fast], keys: KeyPositions(first: 1, last: 2, step: 1),
                    run: Commands.smove),
        CommandSpec("sscan", arity: -3, flags: [.readOnly], keys: .one, run: Commands.sscan),
    ]
}

/// What a set command found at a key.
enum SetLookup {
    case missing
    case found(SetValue)
    case wrongType
}

extension CommandCall {
    /// The set at `key`, if any (nothing is answered).
    func lookupSet(_ key: [UInt8]) -> SetLookup {
        switch self.store.collection(forKey: key, type: .set, now: self.nowMilliseconds) {
        case .missing: .missing
        case .wrongType: .wrongType
        case .found(let set): .found(set as! SetValue)
        }
    }

    /// The sets at `keys` (nil for a missing key), or nil once WRONGTYPE has been answered.
    mutating func lookupSets(_ keys: [[UInt8]]) -> [SetValue?]? {
        var sets: [SetValue?] = []
        sets.reserveCapacity(keys.count)
        for key in keys {
            switch self.lookupSet(key) {
            case .missing: sets.append(nil)
            case .found(let set): sets.append(set)
            case .wrongType:
                self.reply.error(.wrongType)
                return nil
            }
        }
        return sets
    }

    /// Adds (`adding`) or removes `member` at the set `key`. - Returns: whether it changed the set, or
    /// nil once an error has been answered.
    mutating func changeSet(_ key: [UInt8], _ member: [UInt8], adding: Bool) -> Bool? {
        guard let write = self.apply(ElementEffect(adding ? .add : .remove, member), to: key, type: .set) else { return nil }
        return write != .unchanged
    }

    /// A set reply of `members`: `~n` (RESP3) or `*n` (RESP2).
    mutating func replySet(_ members: [[UInt8]]) {
        self.reply.setHeader(members.count)
        self.reply.bulkRun(expected: members.count) { write in
            for member in members { member.withUnsafeBytes(write) }
        }
    }
}

extension Commands {
    /// SADD key member [member …]: how many were new.
    static func sadd(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        // No read first: the write answers WRONGTYPE before changing anything.
        guard let added = Self.changeMembers(arguments, adding: true, &call) else { return }
        if added > 0 { call.notify(.set, "sadd", arguments[1]) }
        call.reply.integer(added)
    }

    /// SREM key member [member …]: how many were removed (the key goes with its last member).
    static func srem(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        // No read first: a removal from a missing key changes nothing (0), the write answers WRONGTYPE.
        guard let removed = Self.changeMembers(arguments, adding: false, &call) else { return }
        call.notify(.set, "srem", arguments[1], ifChanged: removed > 0)
        call.reply.integer(removed)
    }

    /// Adds or removes the members from argument 2 at the set of argument 1, several as one unit.
    /// - Returns: how many changed the set, or nil once an error has been answered.
    private static func changeMembers(_ arguments: ArgumentVector, adding: Bool, _ call: inout CommandCall) -> Int? {
        let key = arguments.copy(1)
        if arguments.count == 3 { return Self.changeEach(arguments, key, adding: adding, &call) }
        var result: Int?
        call.store.atomically { result = Self.changeEach(arguments, key, adding: adding, &call) }
        return result
    }

    /// ``changeMembers(_:adding:_:)``'s loop (a function of its own: a nested one capturing counters
    /// cost an allocation per command).
    private static func changeEach(_ arguments: ArgumentVector, _ key: [UInt8], adding: Bool, _ call: inout CommandCall) -> Int? {
        var changed = 0
        for index in 2..<arguments.count {
            let write = arguments[index].withUnsafeBytes { member in
                call.apply(adding ? .add : .remove, Element(member), to: key, type: .set)
            }
            guard let write else { return nil }
            if write != .unchanged { changed += 1 }
        }
        return changed
    }

    /// SMEMBERS key: every member, as a set (SINTER of one key, as in Redis).
    static func smembers(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch call.lookupSet(arguments.copy(1)) {
        case .missing: call.reply.setHeader(0)
        case .wrongType: call.reply.error(.wrongType)
        case .found(let set):
            call.reply.setHeader(set.count)
            call.reply.bulkRun(expected: set.count) { write in
                set.forEachMember {
                    write($0)
                    return true
                }
            }
        }
    }

    /// SISMEMBER key member: 1 or 0.
    static func sismember(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch call.lookupSet(arguments.copy(1)) {
        case .missing: call.reply.integer(0)
        case .wrongType: call.reply.error(.wrongType)
        case .found(let set):
            let member = arguments.copy(2)
            call.reply.integer(member.withUnsafeBytes { set.contains($0) } ? 1 : 0)
        }
    }

    /// SMISMEMBER key member [member …]: 1 or 0 for each (a missing key is an empty set).
    static func smismember(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var set: SetValue?
        switch call.lookupSet(arguments.copy(1)) {
        case .missing: break
        case .wrongType: return call.reply.error(.wrongType)
        case .found(let found): set = found
        }
        call.reply.arrayHeader(arguments.count - 2)
        for index in 2..<arguments.count {
            let present = set.map { set in arguments.copy(index).withUnsafeBytes { set.contains($0) } } ?? false
            call.reply.integer(present ? 1 : 0)
        }
    }

    /// SCARD key: the number of members.
    static func scard(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch call.lookupSet(arguments.copy(1)) {
        case .missing: call.reply.integer(0)
        case .wrongType: call.reply.error(.wrongType)
        case .found(let set): call.reply.integer(set.count)
        }
    }

    /// SPOP key [count]: removes and returns random members (one as a bulk string; with a count, a set).
    static func spop(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count <= 3 else { return call.reply.error(.syntax) }
        let key = arguments.copy(1)
        var count: Int?
        if arguments.count == 3 {
            guard let n = ASCII.parseInteger(arguments[2]), n >= 0 else {
                return call.reply.error(.redis(code: "ERR", "value is out of range, must be positive"))
            }
            count = Int(n)
        }
        let set: SetValue
        switch call.lookupSet(key) {
        case .missing: return count == nil ? call.reply.null() : call.reply.setHeader(0)
        case .wrongType: return call.reply.error(.wrongType)
        case .found(let found): set = found
        }
        guard let count else {
            let member = set.randomMember()
            guard call.changeSet(key, member, adding: false) != nil else { return }
            call.notify(.set, "spop", key, ifChanged: true)
            return call.reply.bulk(member)
        }
        if count == 0 { return call.reply.setHeader(0) }
        if count >= set.count {
            // The whole set: its members, then the key goes (one delete record).
            let members = set.members
            guard call.removeValue(forKey: key) != nil else { return }
            call.notify(.set, "spop", key, ifChanged: true)
            return call.replySet(members)
        }
        var popped: [[UInt8]] = []
        popped.reserveCapacity(count)
        var failed = false
        call.store.atomically {
            for _ in 0..<count {
                let member = set.randomMember()
                guard call.changeSet(key, member, adding: false) != nil else {
                    failed = true
                    return
                }
                popped.append(member)
            }
        }
        call.notify(.set, "spop", key, ifChanged: !failed)
        if !failed { call.replySet(popped) }
    }

    /// SRANDMEMBER key [count]: random members without removing them. A positive count gives distinct
    /// members (at most the set), a negative one that many draws, repeats allowed; an array either way.
    static func srandmember(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count <= 3 else { return call.reply.error(.syntax) }
        var requested: Int64?
        if arguments.count == 3 {
            guard let n = call.integerArgument(arguments, 2) else { return }
            guard n != Int64.min else {
                return call.reply.error(.redis(code: "ERR",
                    "value is out of range, value must between -9223372036854775807 and 9223372036854775807"))
            }
            requested = n
        }
        let set: SetValue
        switch call.lookupSet(arguments.copy(1)) {
        case .missing: return requested == nil ? call.reply.null() : call.reply.arrayHeader(0)
        case .wrongType: return call.reply.error(.wrongType)
        case .found(let found): set = found
        }
        guard let requested else { return call.reply.bulk(set.randomMember()) }
        if requested == 0 { return call.reply.arrayHeader(0) }
        if requested < 0 || requested == 1 {
            let draws = Int(requested.magnitude)
            call.reply.arrayHeader(draws)
            for _ in 0..<draws { call.reply.bulk(set.randomMember()) }
            return
        }
        let count = Int(requested)
        if count >= set.count {
            call.reply.arrayHeader(set.count)
            set.forEachMember {
                call.reply.bulk($0)
                return true
            }
            return
        }
        var chosen: Set<[UInt8]> = []
        chosen.reserveCapacity(count)
        if count * 3 > set.count {
            // Near the whole set: drop random members from a copy of it.
            var all = set.members
            var generator = SystemRandomNumberGenerator()
            all.shuffle(using: &generator)
            chosen = Set(all.prefix(count))
        } else {
            while chosen.count < count { chosen.insert(set.randomMember()) }
        }
        call.reply.arrayHeader(count)
        for member in chosen { call.reply.bulk(member) }
    }

    /// SINTER key [key …]: the members in every set, as a set.
    static func sinter(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let result = Self.intersection(arguments, from: 1, &call) else { return }
        call.replySet(result)
    }

    /// SINTERCARD numkeys key [key …] [LIMIT limit]: the size of the intersection, counting stopped at
    /// `limit` (0: none).
    static func sintercard(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let numkeys = ASCII.parseInteger(arguments[1]), numkeys >= 1 else {
            return call.reply.error(.redis(code: "ERR", "numkeys should be greater than 0"))
        }
        guard numkeys <= arguments.count - 2 else {
            return call.reply.error(.redis(code: "ERR", "Number of keys can't be greater than number of args"))
        }
        var limit = 0
        var index = 2 + Int(numkeys)
        while index < arguments.count {
            guard arguments.argument(index, is: "limit"), index + 1 < arguments.count else {
                return call.reply.error(.syntax)
            }
            guard let n = ASCII.parseInteger(arguments[index + 1]), n >= 0 else {
                return call.reply.error(.redis(code: "ERR", "LIMIT can't be negative"))
            }
            limit = Int(n)
            index += 2
        }
        let keys = (2..<(2 + Int(numkeys))).map { arguments.copy($0) }
        guard let sets = call.lookupSets(keys) else { return }
        guard let present = Self.allPresent(sets) else { return call.reply.integer(0) }
        var cardinality = 0
        Self.forEachCommonMember(present) { _ in
            cardinality += 1
            return limit == 0 || cardinality < limit
        }
        call.reply.integer(cardinality)
    }

    /// SINTERSTORE destination key [key …]: stores the intersection; its size.
    static func sinterstore(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let result = Self.intersection(arguments, from: 2, &call) else { return }
        Self.store(result, at: arguments.copy(1), &call, event: "sinterstore")
    }

    /// SUNION key [key …]: the members of any set, as a set.
    static func sunion(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let result = Self.combination(arguments, from: 1, difference: false, &call) else { return }
        call.replySet(result.members)
    }

    /// SUNIONSTORE destination key [key …]: stores the union; its size.
    static func sunionstore(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let result = Self.combination(arguments, from: 2, difference: false, &call) else { return }
        Self.store(result, at: arguments.copy(1), &call, event: "sunionstore")
    }

    /// SDIFF key [key …]: the members of the first set in none of the others, as a set.
    static func sdiff(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let result = Self.combination(arguments, from: 1, difference: true, &call) else { return }
        call.replySet(result.members)
    }

    /// SDIFFSTORE destination key [key …]: stores the difference; its size.
    static func sdiffstore(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let result = Self.combination(arguments, from: 2, difference: true, &call) else { return }
        Self.store(result, at: arguments.copy(1), &call, event: "sdiffstore")
    }

    /// SMOVE source destination member: 1 when `member` left `source` (and is in `destination`), else 0.
    static func smove(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let source = arguments.copy(1)
        let destination = arguments.copy(2)
        let member = arguments.copy(3)
        let from: SetValue
        switch call.lookupSet(source) {
        case .missing: return call.reply.integer(0)
        case .wrongType: return call.reply.error(.wrongType)
        case .found(let found): from = found
        }
        if case .wrongType = call.lookupSet(destination) { return call.reply.error(.wrongType) }
        let present = member.withUnsafeBytes { from.contains($0) }
        if source == destination || !present { return call.reply.integer(present ? 1 : 0) }
        var failed = false
        var added = false
        call.store.atomically {
            guard call.changeSet(source, member, adding: false) != nil else { return failed = true }
            call.notify(.set, "srem", source, ifChanged: true)  // before the destination may be created (`new`), as Redis
            guard let addedHere = call.changeSet(destination, member, adding: true) else {
                failed = true
                return
            }
            added = addedHere
        }
        if added { call.notify(.set, "sadd", destination) }
        if !failed { call.reply.integer(1) }
    }

    /// SSCAN key cursor [MATCH pattern] [COUNT count]: the next cursor and a batch of members. An
    /// intset answers whole, with cursor 0, as Redis's compact encodings do.
    static func sscan(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let cursor = Self.parseCursor(arguments[2]) else { return call.reply.error(.invalidCursor) }
        let set: SetValue
        switch call.lookupSet(arguments.copy(1)) {
        case .missing:
            call.reply.arrayHeader(2)
            call.reply.bulk("0")
            return call.reply.arrayHeader(0)
        case .wrongType: return call.reply.error(.wrongType)
        case .found(let found): set = found
        }
        guard let (count, pattern) = Self.scanOptions(arguments, from: 3, &call) else { return }
        var batch: [[UInt8]] = []
        let next = set.scan(cursor: cursor, count: count) { member in
            if let pattern, !pattern.withUnsafeBytes({ Glob.matches(pattern: $0, member) }) { return }
            batch.append([UInt8](member))
        }
        call.reply.arrayHeader(2)
        var digits: [UInt8] = []
        digits.appendDecimal(next)
        call.reply.bulk(digits)
        call.reply.arrayHeader(batch.count)
        for member in batch { call.reply.bulk(member) }
    }

    // MARK: - Set algebra

    /// The sets when every one is present, else nil (an intersection with a missing key is empty).
    private static func allPresent(_ sets: [SetValue?]) -> [SetValue]? {
        let present = sets.compactMap { $0 }
        return present.count == sets.count ? present : nil
    }

    /// Calls `body` with each member of the smallest set that every other set holds, until it returns
    /// false.
    private static func forEachCommonMember(_ sets: [SetValue], _ body: (UnsafeRawBufferPointer) -> Bool) {
        let ordered = sets.sorted { $0.count < $1.count }
        let smallest = ordered[0]
        let others = ordered.dropFirst().filter { $0 !== smallest }
        smallest.forEachMember { member in
            for other in others where !other.contains(member) { return true }
            return body(member)
        }
    }

    /// The intersection of the sets named from argument `first`, or nil once WRONGTYPE was answered.
    private static func intersection(_ arguments: ArgumentVector, from first: Int, _ call: inout CommandCall) -> [[UInt8]]? {
        let keys = (first..<arguments.count).map { arguments.copy($0) }
        guard let sets = call.lookupSets(keys) else { return nil }
        guard let present = Self.allPresent(sets) else { return [] }
        var result: [[UInt8]] = []
        Self.forEachCommonMember(present) { member in
            result.append([UInt8](member))
            return true
        }
        return result
    }

    /// The union or difference of the sets named from argument `first`, built as a new set (whose
    /// encoding follows the usual rules, as Redis's result set's does), or nil once WRONGTYPE was
    /// answered.
    private static func combination(
        _ arguments: ArgumentVector, from first: Int, difference: Bool, _ call: inout CommandCall
    ) -> SetValue? {
        let keys = (first..<arguments.count).map { arguments.copy($0) }
        guard let sets = call.lookupSets(keys) else { return nil }
        let result = SetValue()
        if difference {
            guard let base = sets[0] else { return result }
            let others = sets.dropFirst().compactMap { $0 }
            // A key named again as a subtrahend takes everything away.
            if others.contains(where: { $0 === base }) { return result }
            base.forEachMember { member in
                if !others.contains(where: { $0.contains(member) }) { result.apply(.add, position: -1, Element(member)) }
                return true
            }
        } else {
            for set in sets.compactMap({ $0 }) {
                set.forEachMember { member in
                    result.apply(.add, position: -1, Element(member))
                    return true
                }
            }
        }
        return result
    }

    /// Stores `members` as a new set at `destination` (nothing: deletes it) and answers its size.
    private static func store(_ members: [[UInt8]], at destination: [UInt8], _ call: inout CommandCall, event: StaticString) {
        let result = SetValue()
        for member in members { member.withUnsafeBytes { _ = result.apply(.add, position: -1, Element($0)) } }
        Self.store(result, at: destination, &call, event: event)
    }

    private static func store(_ result: SetValue, at destination: [UInt8], _ call: inout CommandCall, event: StaticString) {
        let existed = call.existsForNotification(destination)
        guard call.setCollection(result, forKey: destination) else { return }
        call.notifyStored(.set, event, destination, count: result.count, existed: existed)
        call.reply.integer(result.count)
    }
}
