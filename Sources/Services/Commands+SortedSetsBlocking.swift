// The blocking sorted-set pops (BZPOPMIN, BZPOPMAX, BZMPOP), as Redis 7.0 answers them: what ZPOPMIN,
// ZPOPMAX and ZMPOP would do when some key holds a sorted set; otherwise the client waits on its keys
// on the same machinery as the blocking list pops (Blocking.swift) and the command runs again when
// one of them gains members. Inside EXEC they answer at once, as timed out (a null array).

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
        for key in call.blockingCandidates(keys, type: .zset) {
            switch call.readSortedSet(key) {
            case .answered: return
            case .missing: continue
            case .found(let value):
                var popped: (member: [UInt8], score: Double)?
                value.forEach(fromRank: max ? value.count - 1 : 0, reverse: max) { member, score in
                    popped = ([UInt8](member), score)
                    return false
                }
                guard let (member, score) = popped, call.removeMembers([(member, score)], from: key) else { return }
                call.notify(.zset, max ? "zpopmax" : "zpopmin", key, ifChanged: true)
                call.reply.arrayHeader(3)
                call.reply.bulk(key)
                call.reply.bulk(member)
                call.reply.score(score)
                return
            }
        }
        guard call.mayBlock else { return call.reply.nullArray() }
        call.block(arguments, on: keys, timeout: timeout)
    }

    /// BZMPOP timeout numkeys key [key …] MIN|MAX [COUNT count]: ZMPOP's reply from the first key
    /// holding a sorted set, or a wait on all of them.
    static func bzmpop(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let timeout = call.blockingTimeout(arguments[1]) else { return }
        guard let request = Self.multiPopRequest(arguments, numkeysIndex: 2, &call) else { return }
        let keys = request.keys
        let candidates = call.blockingCandidates(keys, type: .zset)
        for key in candidates {
            switch call.readSortedSet(key) {
            case .answered: return
            case .missing: continue
            case .found:
                return Self.pop(keys: [key], max: request.max, count: request.count, nested: true, emitKey: true, &call)
            }
        }
        guard call.mayBlock else { return call.reply.nullArray() }
        call.block(arguments, on: keys, timeout: timeout)
    }
}
