// The blocking list pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP), as Redis 7.0 answers them: what the
// non-blocking commands would do when some key holds a list; otherwise the client waits on its keys
// (Blocking.swift) and the command runs again when one of them gains items. Inside EXEC they answer
// at once, as timed out (BLMOVE and BRPOPLPUSH with a null bulk, the others a null array).

import Store

extension CommandTable {
    static let blockingLists: [CommandSpec] = [
        CommandSpec("blpop", arity: -3, flags: [.write], keys: KeyPositions(first: 1, last: -2, step: 1),
                    run: Commands.blpop),
        CommandSpec("brpop", arity: -3, flags: [.write], keys: KeyPositions(first: 1, last: -2, step: 1),
                    run: Commands.brpop),
        CommandSpec("blmove", arity: 6, flags: [.write, .mayAddMemory], keys: KeyPositions(first: 1, last: 2, step: 1),
                    run: Commands.blmove),
        CommandSpec("brpoplpush", arity: 4, flags: [.write, .mayAddMemory], keys: KeyPositions(first: 1, last: 2, step: 1),
                    run: Commands.brpoplpush),
        CommandSpec("blmpop", arity: -5, flags: [.write], run: Commands.blmpop),
    ]
}

extension Commands {
    static func blpop(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.blockingPop(arguments, &call, head: true)
    }

    static func brpop(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.blockingPop(arguments, &call, head: false)
    }

    /// BLPOP/BRPOP key [key …] timeout: `[key, item]` from the first key holding a list.
    private static func blockingPop(_ arguments: ArgumentVector, _ call: inout CommandCall, head: Bool) {
        guard let timeout = call.blockingTimeout(arguments[arguments.count - 1]) else { return }
        let keys = call.blockingKeys(arguments, 1..<arguments.count - 1)
        for key in call.blockingCandidates(keys, type: .list) {
            switch call.list(key) {
            case .answeredWrongType: return
            case .missing: continue
            case .found(let list):
                guard let items = call.popItems(list, at: key, fromHead: head, count: 1) else { return }
                call.reply.arrayHeader(2)
                call.reply.bulk(key)
                call.reply.bulk(items[0])
                return
            }
        }
        guard call.mayBlock else { return call.reply.nullArray() }
        call.block(arguments, on: keys, timeout: timeout)
    }

    /// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout.
    static func blmove(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let fromHead = Self.listEnd(arguments, 3), let toHead = Self.listEnd(arguments, 4) else {
            return call.reply.error(.syntax)
        }
        Self.blockingMove(arguments, timeoutIndex: 5, fromHead: fromHead, toHead: toHead, &call)
    }

    /// BRPOPLPUSH source destination timeout: BLMOVE source destination RIGHT LEFT timeout.
    static func brpoplpush(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.blockingMove(arguments, timeoutIndex: 3, fromHead: false, toHead: true, &call)
    }

    private static func blockingMove(
        _ arguments: ArgumentVector, timeoutIndex: Int, fromHead: Bool, toHead: Bool, _ call: inout CommandCall
    ) {
        guard let timeout = call.blockingTimeout(arguments[timeoutIndex]) else { return }
        let (source, destination) = (arguments.copy(1), arguments.copy(2))
        if call.blockingCandidates([source], type: .list).isEmpty { return }  // a retry: the source is not a list now
        switch call.list(source) {
        case .answeredWrongType: return
        case .found(let list):
            guard let item = call.moveItem(from: source, list, to: destination, fromHead: fromHead, toHead: toHead) else {
                return
            }
            call.reply.bulk(item)
        case .missing:
            guard call.mayBlock else { return call.reply.null() }
            call.block(arguments, on: [source], timeout: timeout)
        }
    }

    /// BLMPOP timeout numkeys key [key …] LEFT|RIGHT [COUNT count].
    static func blmpop(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let request = MultiPop(arguments, numberIndex: 2, &call) else { return }
        guard let timeout = call.blockingTimeout(arguments[1]) else { return }
        var candidates = request
        candidates.keys = call.blockingCandidates(request.keys, type: .list)
        if call.servePop(candidates) { return }
        guard call.mayBlock else { return call.reply.nullArray() }
        call.block(arguments, on: request.keys, timeout: timeout)
    }
}
