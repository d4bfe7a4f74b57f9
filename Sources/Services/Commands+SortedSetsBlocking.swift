// The blocking sorted-set pops (BZPOPMIN, BZPOPMAX, BZMPOP), as Redis 7.0 answers them: what ZPOPMIN,
// ZPOPMAX and ZMPOP would do when some key holds a sorted set; otherwise the client waits on its keys
// on the same machinery as the blocking list pops (Blocking.swift) and is served directly from the
// first of them to gain members (the serve function below). Inside EXEC they answer at once, as timed out (a null array).

import Store

extension CommandTable {
    static let blockingSortedSets: [CommandSpec] = [
        CommandSpec("bzpopmin", arity: -3, flags: [.write, .fast], keys: KeyPositions(first: 1, last: -2, step: 1),
                    run: Commands.bzpopmin),
        CommandSpec("bzpopmax", arity: -3, flags: [.write, .fast], keys: KeyPositions(first: 1, last: -2, step: 1),
                    run: Commands.bzpopmax),
        CommandSpec("bzmpop", arity: -5, flags: [.write], run: Commands.bzmpop),
    ]
}

extension Commands {
    /// BZPOPMIN key [key …] timeout.
    static func bzpopmin(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.blockingZpop(arguments, max: false, &call)
    }

    /// BZPOPMAX key [key …] timeout.
    static func bzpopmax(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.blockingZpop(arguments, max: true, &call)
    }

    /// `[key, member, score]` from the first key holding a sorted set (the score a RESP3 double).
    private static func blockingZpop(_ arguments: ArgumentVector, max: Bool, _ call: inout CommandCall) {
        guard let timeout = call.blockingTimeout(arguments[arguments.count - 1]) else { return }
        let keys = (1..<arguments.count - 1).map { arguments.copy($0) }
        for key in keys {
            switch call.readSortedSet(key) {
            case .answered: return
            case .missing: continue
            case .found(let value):
                Self.popOne(value, at: key, max: max, &call)
                return
            }
        }
        guard call.mayBlock else { return call.reply.nullArray() }
        call.block(on: keys, timeout: timeout, serving: .sortedSetPop(max: max, count: nil))
    }

    /// Pops the lowest (or highest) member of `value`, the sorted set at `key`, replying `[key,
    /// member, score]`. - Returns: false once a storage error has been answered instead.
    @discardableResult
    private static func popOne(_ value: SortedSetValue, at key: [UInt8], max: Bool, _ call: inout CommandCall) -> Bool {
        var popped: (member: [UInt8], score: Double)?
        value.forEach(fromRank: max ? value.count - 1 : 0, reverse: max) { member, score in
            popped = ([UInt8](member), score)
            return false
        }
        guard let (member, score) = popped, call.removeMembers([(member, score)], from: key) else { return false }
        call.notify(.zset, max ? "zpopmax" : "zpopmin", key, ifChanged: true)
        call.reply.arrayHeader(3)
        call.reply.bulk(key)
        call.reply.bulk(member)
        call.reply.score(score)
        return true
    }

    /// BZMPOP timeout numkeys key [key …] MIN|MAX [COUNT count]: ZMPOP's reply from the first key
    /// holding a sorted set, or a wait on all of them.
    static func bzmpop(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let timeout = call.blockingTimeout(arguments[1]) else { return }
        guard let request = Self.multiPopRequest(arguments, numkeysIndex: 2, &call) else { return }
        let keys = request.keys
        for key in keys {
            switch call.readSortedSet(key) {
            case .answered: return
            case .missing: continue
            case .found:
                return Self.pop(keys: [key], max: request.max, count: request.count, nested: true, emitKey: true, &call)
            }
        }
        guard call.mayBlock else { return call.reply.nullArray() }
        call.block(on: keys, timeout: timeout, serving: .sortedSetPop(max: request.max, count: request.count))
    }

    /// A waiter of BZPOPMIN or BZPOPMAX (`count` nil) or BZMPOP served from `key`: what the command
    /// would answer with `key` the first key holding a sorted set (Blocking.swift).
    static func serveBlockedSortedSetPop(_ key: [UInt8], max: Bool, count: Int?, _ call: inout CommandCall) -> BlockedServeResult {
        switch call.store.collection(forKey: key, type: .zset, now: call.nowMilliseconds) {
        case .missing: return .keyMissing
        case .wrongType: return .notServed  // it keeps waiting, answered nothing
        case .found(let found):
            let value = found as! SortedSetValue
            let before = value.count
            if let count {
                Self.pop(keys: [key], max: max, count: count, nested: true, emitKey: true, &call)
                return .served(keyRemains: call.store.contains(key, now: call.nowMilliseconds))
            }
            guard Self.popOne(value, at: key, max: max, &call) else {
                return .served(keyRemains: call.store.contains(key, now: call.nowMilliseconds))  // the error answered
            }
            return .served(keyRemains: before > 1)
        }
    }
}
