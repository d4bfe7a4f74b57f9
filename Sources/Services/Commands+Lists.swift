// The list commands (LPUSH … LMPOP; the blocking pops are in Commands+ListsBlocking.swift), as Redis 7.0
// answers them, over the store's typed reads and element effects (Sources/Services/DataStore.swift). Every
// change is an add or a remove at a position (Sources/Store/Types/ListValue.swift), or of a range of
// items (ListValue+Ranges.swift); a command that makes several changes runs them as one unit
// (`atomically`). Changes that rewrite an item in place (LSET, an LMOVE within one list) add before
// they remove, so the list is never empty on the way and keeps its key and deadline.

import Store

extension CommandTable {
    /// The list family's rows.
    static let lists: [CommandSpec] = [
        CommandSpec("lpush", arity: -3, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.lpush),
        CommandSpec("rpush", arity: -3, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.rpush),
        CommandSpec("lpushx", arity: -3, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.lpushx),
        CommandSpec("rpushx", arity: -3, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.rpushx),
        CommandSpec("lpop", arity: -2, flags: [.write, .fast], keys: .one, run: Commands.lpop),
        CommandSpec("rpop", arity: -2, flags: [.write, .fast], keys: .one, run: Commands.rpop),
        CommandSpec("llen", arity: 2, flags: [.readOnly, .fast], keys: .one, run: Commands.llen),
        CommandSpec("lindex", arity: 3, flags: [.readOnly], keys: .one, run: Commands.lindex),
        CommandSpec("lrange", arity: 4, flags: [.readOnly], keys: .one, run: Commands.lrange),
        CommandSpec("lset", arity: 4, flags: [.write, .mayAddMemory], keys: .one, run: Commands.lset),
        CommandSpec("linsert", arity: 5, flags: [.write, .mayAddMemory], keys: .one, run: Commands.linsert),
        CommandSpec("lrem", arity: 4, flags: [.write], keys: .one, run: Commands.lrem),
        CommandSpec("ltrim", arity: 4, flags: [.write], keys: .one, run: Commands.ltrim),
        CommandSpec("lpos", arity: -3, flags: [.readOnly], keys: .one, run: Commands.lpos),
        CommandSpec("lmove", arity: 5, flags: [.write, .mayAddMemory], keys: KeyPositions(first: 1, last: 2, step: 1),
                    run: Commands.lmove),
        CommandSpec("rpoplpush", arity: 3, flags: [.write, .mayAddMemory], keys: KeyPositions(first: 1, last: 2, step: 1),
                    run: Commands.rpoplpush),
        CommandSpec("lmpop", arity: -4, flags: [.write], run: Commands.lmpop),
    ] + CommandTable.blockingLists
}

/// What a list command found at its key (``CommandCall/list(_:)``).
enum ListLookup {
    case missing
    case found(ListValue)
    /// The key holds another type: WRONGTYPE has been answered.
    case answeredWrongType
}

extension CommandCall {
    /// The list at `key`; another type there answers WRONGTYPE. The value is read in place: use it
    /// before the next change to the store.
    mutating func list(_ key: [UInt8]) -> ListLookup {
        switch self.store.collection(forKey: key, type: .list, now: self.nowMilliseconds) {
        case .missing: return .missing
        case .wrongType:
            self.reply.error(.wrongType)
            return .answeredWrongType
        case .found(let list): return .found(list as! ListValue)
        }
    }

    /// Inserts `item` at `position` (0 the head, -1 after the tail). - Returns: false once an error
    /// has been answered.
    mutating func pushItem(_ item: [UInt8], at position: Int64, to key: [UInt8]) -> Bool {
        self.apply(ElementEffect(.add, position: position, item), to: key, type: .list) != nil
    }

    /// Removes the item at `position` (≥ 0 an index, -1 the last), which is `item`. - Returns: false
    /// once an error has been answered.
    mutating func removeItem(_ item: [UInt8], at position: Int64, from key: [UInt8]) -> Bool {
        self.apply(ElementEffect(.remove, position: position, item), to: key, type: .list) != nil
    }

    /// Pops up to `count` items from one end of the list `list` at `key` (as one unit). - Returns: the
    /// items in pop order, or nil once a storage error has been answered.
    mutating func popItems(_ list: ListValue, at key: [UInt8], fromHead: Bool, count: Int) -> [[UInt8]]? {
        let taken = min(count, list.count)
        guard taken > 0 else { return [] }
        if taken == 1 { return self.popItem(list, at: key, fromHead: fromHead).map { [$0] } }
        var items: [[UInt8]] = []
        items.reserveCapacity(taken)
        if fromHead {
            list.forEach(from: 0, through: taken - 1) { items.append([UInt8]($0)); return true }
        } else {
            list.forEachReversed(from: list.count - 1, downTo: list.count - taken) { items.append([UInt8]($0)); return true }
        }
        // One ranged removal (Sources/Store/Types/ListValue+Ranges.swift).
        let effect = ElementEffect(.remove, position: fromHead ? 0 : -Int64(taken), [], ListValue.rangeField(count: taken))
        let done = self.apply(effect, to: key, type: .list) != nil
        self.notify(.list, fromHead ? "lpop" : "rpop", key, ifChanged: done)
        return done ? items : nil
    }

    /// Pops the item at one end of the list `list` (not empty) at `key`. - Returns: the item, or nil
    /// once a storage error has been answered.
    mutating func popItem(_ list: ListValue, at key: [UInt8], fromHead: Bool) -> [UInt8]? {
        let client = self.client  // not `self` in the closure: that would copy the whole call
        let item = list.withItem(at: fromHead ? 0 : list.count - 1) { client.copyItem($0) }
        let done = item.withUnsafeBytes { raw in
            self.apply(.remove, position: fromHead ? 0 : -1, Element(raw), to: key, type: .list) != nil
        }
        self.notify(.list, fromHead ? "lpop" : "rpop", key, ifChanged: done)
        return done ? item : nil
    }

    /// Replies with items as an array of bulk strings.
    mutating func replyItems(_ items: [[UInt8]]) {
        self.reply.arrayHeader(items.count)
        for item in items { self.reply.bulk(item) }
    }

    /// Moves one item from the end `fromHead` of `source` (not empty) to the end `toHead` of
    /// `destination`, as LMOVE does; the destination is checked first (WRONGTYPE, nothing moved).
    /// - Returns: the item, or nil once an error has been answered.
    mutating func moveItem(from source: [UInt8], _ list: ListValue, to destination: [UInt8], fromHead: Bool, toHead: Bool)
        -> [UInt8]?
    {
        if destination != source, case .answeredWrongType = self.list(destination) { return nil }
        let item = (fromHead ? list.item(at: 0) : list.item(at: -1))!
        var done = true
        let store = self.store
        store.atomically {
            if destination == source {
                // Added first: a one-item list never empties (its key and deadline stay).
                let count = Int64(list.count)
                guard self.pushItem(item, at: toHead ? 0 : -1, to: destination) else { return done = false }
                let position: Int64 = fromHead ? (toHead ? 1 : 0) : (toHead ? -1 : count - 1)
                done = self.removeItem(item, at: position, from: source)
            } else {
                guard self.removeItem(item, at: fromHead ? 0 : -1, from: source) else { return done = false }
                done = self.pushItem(item, at: toHead ? 0 : -1, to: destination)
            }
        }
        if done { self.notify(.list, toHead ? "lpush" : "rpush", destination) }
        self.notify(.list, fromHead ? "lpop" : "rpop", source, ifChanged: done)
        return done ? item : nil
    }
}

extension Commands {
    static func lpush(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.push(arguments, &call, head: true, onlyIfPresent: false)
    }

    static func rpush(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.push(arguments, &call, head: false, onlyIfPresent: false)
    }

    static func lpushx(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.push(arguments, &call, head: true, onlyIfPresent: true)
    }

    static func rpushx(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.push(arguments, &call, head: false, onlyIfPresent: true)
    }

    /// LPUSH/RPUSH[X] key element [element …]: the length after.
    private static func push(_ arguments: ArgumentVector, _ call: inout CommandCall, head: Bool, onlyIfPresent: Bool) {
        let key = call.key(arguments, 1)
        let position: Int64 = head ? 0 : -1
        if onlyIfPresent {
            switch call.list(key) {
            case .answeredWrongType: return
            case .missing: return call.reply.integer(0)
            case .found: break
            }
        }
        if arguments.count == 3 {
            // The item borrowed from the request: the log copies it once.
            let pushed = arguments[2].withUnsafeBytes { raw in
                call.apply(.add, position: position, Element(raw), to: key, type: .list) != nil
            }
            guard pushed else { return }
        } else {
            // One ranged add (Sources/Store/Types/ListValue+Ranges.swift): LPUSH's items go in reversed,
            // each pushed before the one before it.
            let pushed = arguments.count - 2
            let items = (2..<arguments.count).map { arguments[$0] }
            let effect = ElementEffect(.add, position: position, ListValue.packedItems(head ? items.reversed() : items),
                                       ListValue.rangeField(count: pushed))
            guard call.apply(effect, to: key, type: .list) != nil else { return }
        }
        call.notify(.list, head ? "lpush" : "rpush", key)
        guard case .found(let list) = call.list(key) else { return call.reply.integer(0) }
        call.reply.integer(list.count)
    }

    static func lpop(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.pop(arguments, &call, head: true)
    }

    static func rpop(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.pop(arguments, &call, head: false)
    }

    /// LPOP/RPOP key [count]: one item (bulk) or, with a count, an array of up to count items.
    private static func pop(_ arguments: ArgumentVector, _ call: inout CommandCall, head: Bool) {
        guard arguments.count <= 3 else { return call.reply.error(.wrongArity(head ? "lpop" : "rpop")) }
        var count: Int?
        if arguments.count == 3 {
            guard let parsed = ASCII.parseInteger(arguments[2]), parsed >= 0 else {
                return call.reply.error(.redis(code: "ERR", "value is out of range, must be positive"))
            }
            count = Int(parsed)
        }
        let key = call.key(arguments, 1)
        let list: ListValue
        switch call.list(key) {
        case .answeredWrongType: return
        case .missing: return count == nil ? call.reply.null() : call.reply.nullArray()
        case .found(let found): list = found
        }
        guard let count else {
            guard let item = call.popItem(list, at: key, fromHead: head) else { return }
            return call.reply.bulk(item)
        }
        if count == 0 { return call.reply.arrayHeader(0) }
        guard let items = call.popItems(list, at: key, fromHead: head, count: count) else { return }
        call.replyItems(items)
    }

    /// LLEN key.
    static func llen(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let key = call.key(arguments, 1)
        switch call.list(key) {
        case .answeredWrongType: return
        case .missing: call.reply.integer(0)
        case .found(let list): call.reply.integer(list.count)
        }
    }

    /// LINDEX key index.
    static func lindex(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let list: ListValue
        let key = call.key(arguments, 1)
        switch call.list(key) {
        case .answeredWrongType: return
        case .missing: return call.reply.null()
        case .found(let found): list = found
        }
        guard let index = call.integerArgument(arguments, 2) else { return }
        let resolved = index < 0 ? Int64(list.count) + index : index
        guard resolved >= 0 && resolved < Int64(list.count) else { return call.reply.null() }
        list.withItem(at: Int(resolved)) { call.reply.bulk($0) }
    }

    /// A start/stop pair as LRANGE and LTRIM read it: the inclusive index range, or nil when empty.
    static func listRange(_ start: Int64, _ stop: Int64, count: Int) -> ClosedRange<Int>? {
        let length = Int64(count)
        var (start, stop) = (start, stop)
        if start < 0 { start += length }
        if stop < 0 { stop += length }
        if start < 0 { start = 0 }
        guard start <= stop && start < length else { return nil }
        if stop >= length { stop = length - 1 }
        return Int(start)...Int(stop)
    }

    /// LRANGE key start stop.
    static func lrange(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let start = call.integerArgument(arguments, 2), let stop = call.integerArgument(arguments, 3) else { return }
        let list: ListValue
        let key = call.key(arguments, 1)
        switch call.list(key) {
        case .answeredWrongType: return
        case .missing: return call.reply.arrayHeader(0)
        case .found(let found): list = found
        }
        guard let range = Self.listRange(start, stop, count: list.count) else { return call.reply.arrayHeader(0) }
        call.reply.arrayHeader(range.count)
        // The items' `$n\r\n…\r\n` into one block, then one copy to the output (ReplyWriter+Runs.swift).
        call.reply.bulkRun(expected: range.count) { append in
            list.forEach(from: range.lowerBound, through: range.upperBound) {
                append($0)
                return true
            }
        }
    }

    /// LSET key index element.
    static func lset(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let key = arguments.copy(1)
        let list: ListValue
        switch call.list(key) {
        case .answeredWrongType: return
        case .missing: return call.reply.error(.noSuchKey)
        case .found(let found): list = found
        }
        guard let index = call.integerArgument(arguments, 2) else { return }
        let resolved = index < 0 ? Int64(list.count) + index : index
        guard resolved >= 0 && resolved < Int64(list.count) else {
            return call.reply.error(.redis(code: "ERR", "index out of range"))
        }
        let old = list.item(at: Int(resolved))!
        let item = arguments.copy(3)
        var done = true
        let store = call.store
        store.atomically {
            done = call.pushItem(item, at: resolved, to: key) && call.removeItem(old, at: resolved + 1, from: key)
        }
        if done { call.notify(.list, "lset", key) }
        if done { call.reply.ok() }
    }

    /// LINSERT key BEFORE|AFTER pivot element: the length after, -1 without the pivot, 0 without the key.
    static func linsert(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let after: Bool
        if arguments.argument(2, is: "after") {
            after = true
        } else if arguments.argument(2, is: "before") {
            after = false
        } else {
            return call.reply.error(.syntax)
        }
        let key = arguments.copy(1)
        let list: ListValue
        switch call.list(key) {
        case .answeredWrongType: return
        case .missing: return call.reply.integer(0)
        case .found(let found): list = found
        }
        let pivot = arguments[3]
        var found: Int?
        var index = 0
        list.forEachElement { element in
            if Self.equal(element.first, pivot) {
                found = index
                return false
            }
            index += 1
            return true
        }
        guard let found else { return call.reply.integer(-1) }
        let count = list.count
        guard call.pushItem(arguments.copy(4), at: Int64(after ? found + 1 : found), to: key) else { return }
        call.notify(.list, "linsert", key)
        call.reply.integer(count + 1)
    }

    /// LREM key count element: removes up to |count| matches from the head (count > 0) or the tail
    /// (count < 0), or every match (0).
    static func lrem(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let count = call.integerArgument(arguments, 2) else { return }
        let key = arguments.copy(1)
        let list: ListValue
        switch call.list(key) {
        case .answeredWrongType: return
        case .missing: return call.reply.integer(0)
        case .found(let found): list = found
        }
        let element = arguments[3]
        let limit = count == 0 ? Int.max : Int(count.magnitude > UInt64(Int.max) ? UInt64(Int.max) : count.magnitude)
        var matches: [Int] = []
        if list.count > 0 {
            if count >= 0 {
                var index = 0
                list.forEach(from: 0, through: list.count - 1) { item in
                    if Self.equal(item, element) { matches.append(index) }
                    index += 1
                    return matches.count < limit
                }
            } else {
                var index = list.count - 1
                list.forEachReversed(from: list.count - 1, downTo: 0) { item in
                    if Self.equal(item, element) { matches.append(index) }
                    index -= 1
                    return matches.count < limit
                }
            }
        }
        guard !matches.isEmpty else { return call.reply.integer(0) }
        // One effect for every match (ListValue+Scattered.swift): one log record however many go.
        matches.sort()
        let effect: ElementEffect
        if matches.count == 1 {
            effect = ElementEffect(.remove, position: Int64(matches[0]), arguments.copy(3))
        } else {
            effect = ElementEffect(.remove, position: Int64(matches[0]), ListValue.packedIndexes(matches),
                                   ListValue.scatteredField(count: matches.count))
        }
        let done = call.apply(effect, to: key, type: .list) != nil
        call.notify(.list, "lrem", key, ifChanged: done)
        if done { call.reply.integer(matches.count) }
    }

    /// LTRIM key start stop: keeps the range, removes the rest (the key goes when nothing is kept).
    static func ltrim(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let start = call.integerArgument(arguments, 2), let stop = call.integerArgument(arguments, 3) else { return }
        let key = arguments.copy(1)
        let list: ListValue
        switch call.list(key) {
        case .answeredWrongType: return
        case .missing: return call.reply.ok()
        case .found(let found): list = found
        }
        let count = list.count
        let range = Self.listRange(start, stop, count: count)
        let fromHead = range?.lowerBound ?? count
        let fromTail = range.map { count - 1 - $0.upperBound } ?? 0
        guard fromHead + fromTail > 0 else { call.notify(.list, "ltrim", key); return call.reply.ok() }
        // At most two ranged removals (Sources/Store/Types/ListValue+Ranges.swift), the tail's first so
        // that the head's indices stay.
        var done = true
        let store = call.store
        store.atomically {
            if fromTail > 0 {
                let effect = ElementEffect(.remove, position: Int64(count - fromTail), [], ListValue.rangeField(count: fromTail))
                guard call.apply(effect, to: key, type: .list) != nil else { return done = false }
            }
            if fromHead > 0 {
                let effect = ElementEffect(.remove, position: 0, [], ListValue.rangeField(count: fromHead))
                guard call.apply(effect, to: key, type: .list) != nil else { return done = false }
            }
        }
        call.notify(.list, "ltrim", key, ifChanged: done)
        if done { call.reply.ok() }
    }

    /// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len].
    static func lpos(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var rank: Int64 = 1
        var count: Int64?
        var maxLength: Int64 = 0
        var i = 3
        while i < arguments.count {
            let more = i + 1 < arguments.count
            if arguments.argument(i, is: "rank") && more {
                guard let value = ASCII.parseInteger(arguments[i + 1]) else { return call.reply.error(.notInteger) }
                guard value != 0 else {
                    return call.reply.error(.redis(code: "ERR",
                        "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"))
                }
                rank = value
            } else if arguments.argument(i, is: "count") && more {
                guard let value = ASCII.parseInteger(arguments[i + 1]), value >= 0 else {
                    return call.reply.error(.redis(code: "ERR", "COUNT can't be negative"))
                }
                count = value
            } else if arguments.argument(i, is: "maxlen") && more {
                guard let value = ASCII.parseInteger(arguments[i + 1]), value >= 0 else {
                    return call.reply.error(.redis(code: "ERR", "MAXLEN can't be negative"))
                }
                maxLength = value
            } else {
                return call.reply.error(.syntax)
            }
            i += 2
        }
        let list: ListValue
        switch call.list(arguments.copy(1)) {
        case .answeredWrongType: return
        case .missing: return count == nil ? call.reply.null() : call.reply.arrayHeader(0)
        case .found(let found): list = found
        }
        let element = arguments[2]
        // Redis negates a negative rank; the lowest one stays negative there and so takes the first match.
        let skip = rank == Int64.min ? 0 : rank.magnitude - 1
        let wanted = count.map { $0 == 0 ? UInt64.max : UInt64($0) } ?? 1
        var seen: UInt64 = 0
        var found: [Int] = []
        var compared: Int64 = 0
        var index = rank > 0 ? 0 : list.count - 1
        let visit: (UnsafeRawBufferPointer) -> Bool = { item in
            if maxLength != 0 && compared >= maxLength { return false }
            compared += 1
            if Self.equal(item, element) {
                seen += 1
                if seen > skip {
                    found.append(index)
                    if UInt64(found.count) >= wanted { return false }
                }
            }
            index += rank > 0 ? 1 : -1
            return true
        }
        if list.count > 0 {
            if rank > 0 {
                list.forEach(from: 0, through: list.count - 1, visit)
            } else {
                list.forEachReversed(from: list.count - 1, downTo: 0, visit)
            }
        }
        if count == nil {
            if let first = found.first { call.reply.integer(first) } else { call.reply.null() }
        } else {
            call.reply.arrayHeader(found.count)
            for index in found { call.reply.integer(index) }
        }
    }

    /// LMOVE source destination LEFT|RIGHT LEFT|RIGHT.
    static func lmove(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let fromHead = Self.listEnd(arguments, 3), let toHead = Self.listEnd(arguments, 4) else {
            return call.reply.error(.syntax)
        }
        Self.move(arguments.copy(1), arguments.copy(2), fromHead: fromHead, toHead: toHead, &call)
    }

    /// RPOPLPUSH source destination: LMOVE source destination RIGHT LEFT.
    static func rpoplpush(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.move(arguments.copy(1), arguments.copy(2), fromHead: false, toHead: true, &call)
    }

    private static func move(_ source: [UInt8], _ destination: [UInt8], fromHead: Bool, toHead: Bool, _ call: inout CommandCall) {
        switch call.list(source) {
        case .answeredWrongType: return
        case .missing: call.reply.null()
        case .found(let list):
            guard let item = call.moveItem(from: source, list, to: destination, fromHead: fromHead, toHead: toHead) else { return }
            call.reply.bulk(item)
        }
    }

    /// LEFT (true) or RIGHT (false) at argument `index`, or nil.
    static func listEnd(_ arguments: ArgumentVector, _ index: Int) -> Bool? {
        if arguments.argument(index, is: "left") { return true }
        if arguments.argument(index, is: "right") { return false }
        return nil
    }

    /// LMPOP numkeys key [key …] LEFT|RIGHT [COUNT count].
    static func lmpop(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let request = MultiPop(arguments, numberIndex: 1, &call) else { return }
        if !call.servePop(request) { call.reply.nullArray() }
    }

    /// Whether `bytes` equals the argument `other`.
    static func equal(_ bytes: UnsafeRawBufferPointer, _ other: ArraySlice<UInt8>) -> Bool {
        guard bytes.count == other.count else { return false }
        return other.withUnsafeBytes { other in bytes.elementsEqual(other) }
    }
}

/// LMPOP's and BLMPOP's arguments: the keys, the end, the count.
struct MultiPop {
    var keys: [[UInt8]] = []
    var fromHead = true
    var count = 1

    /// Parses from the argument `numberIndex` (numkeys) on, as Redis 7.0 does; nil once an error
    /// has been answered.
    init?(_ arguments: ArgumentVector, numberIndex: Int, _ call: inout CommandCall) {
        guard let number = ASCII.parseInteger(arguments[numberIndex]), number > 0 else {
            call.reply.error(.redis(code: "ERR", "numkeys should be greater than 0"))
            return nil
        }
        let endIndex = Int64(numberIndex) + number + 1
        guard endIndex < Int64(arguments.count) else {
            call.reply.error(.syntax)
            return nil
        }
        let end = Int(endIndex)
        guard let fromHead = Commands.listEnd(arguments, end) else {
            call.reply.error(.syntax)
            return nil
        }
        self.fromHead = fromHead
        var counted = false
        var i = end + 1
        while i < arguments.count {
            guard !counted && arguments.argument(i, is: "count") && i + 1 < arguments.count else {
                call.reply.error(.syntax)
                return nil
            }
            guard let count = ASCII.parseInteger(arguments[i + 1]), count > 0 else {
                call.reply.error(.redis(code: "ERR", "count should be greater than 0"))
                return nil
            }
            self.count = Int(count)
            counted = true
            i += 2
        }
        self.keys = (numberIndex + 1..<end).map { arguments.copy($0) }
    }
}

extension CommandCall {
    /// Pops from the first of the request's keys that holds a list, replying `[key, [items]]`.
    /// - Returns: false when none does and nothing was answered (the caller answers or blocks).
    mutating func servePop(_ request: MultiPop) -> Bool {
        for key in request.keys {
            switch self.list(key) {
            case .answeredWrongType: return true
            case .missing: continue
            case .found(let list):
                guard let items = self.popItems(list, at: key, fromHead: request.fromHead, count: request.count) else {
                    return true
                }
                self.reply.arrayHeader(2)
                self.reply.bulk(key)
                self.replyItems(items)
                return true
            }
        }
        return false
    }
}
