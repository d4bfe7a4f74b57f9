// The blocking list pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP), as Redis 7.0 answers them: what the
// non-blocking commands would do when some key holds a list; otherwise the client waits on its keys
// (Blocking.swift) and, when one of them gains items, is served from it directly (the serve functions
// below: the pop, its reply, its events, without running the command again). Inside EXEC they answer
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
        let keys = (1..<arguments.count - 1).map { arguments.copy($0) }
        for key in keys {
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
        call.block(on: keys, timeout: timeout, serving: .listPop(fromHead: head, count: nil))
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
        switch call.list(source) {
        case .answeredWrongType: return
        case .found(let list):
            guard let item = call.moveItem(from: source, list, to: destination, fromHead: fromHead, toHead: toHead) else {
                return
            }
            call.reply.bulk(item)
        case .missing:
            guard call.mayBlock else { return call.reply.null() }
            call.block(on: [source], timeout: timeout, serving: .listMove(destination: destination, fromHead: fromHead, toHead: toHead))
        }
    }

    /// BLMPOP timeout numkeys key [key …] LEFT|RIGHT [COUNT count].
    static func blmpop(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let request = MultiPop(arguments, numberIndex: 2, &call) else { return }
        guard let timeout = call.blockingTimeout(arguments[1]) else { return }
        if call.servePop(request) { return }
        guard call.mayBlock else { return call.reply.nullArray() }
        call.block(on: request.keys, timeout: timeout, serving: .listPop(fromHead: request.fromHead, count: request.count))
    }

    // MARK: Serving a woken waiter (Blocking.swift)

    /// A waiter of BLPOP or BRPOP (`count` nil) or BLMPOP served from `key`: what the command would
    /// answer with `key` the first key holding a list. The key is read once.
    static func serveBlockedListPop(_ key: [UInt8], fromHead: Bool, count: Int?, _ call: inout CommandCall) -> BlockedServeResult {
        switch call.store.collection(forKey: key, type: .list, now: call.nowMilliseconds) {
        case .missing: return .keyMissing
        case .wrongType: return .notServed  // it keeps waiting, answered nothing
        case .found(let value):
            let list = value as! ListValue
            let before = list.count
            guard let items = call.popItems(list, at: key, fromHead: fromHead, count: count ?? 1) else {
                return .served(keyRemains: call.store.contains(key, now: call.nowMilliseconds))  // the error answered
            }
            call.reply.arrayHeader(2)
            call.reply.bulk(key)
            if count == nil { call.reply.bulk(items[0]) } else { call.replyItems(items) }
            return .served(keyRemains: before > items.count)
        }
    }

    /// A waiter of BLMOVE or BRPOPLPUSH served from `key`, its source.
    static func serveBlockedListMove(
        _ key: [UInt8], to destination: [UInt8], fromHead: Bool, toHead: Bool, _ call: inout CommandCall
    ) -> BlockedServeResult {
        switch call.store.collection(forKey: key, type: .list, now: call.nowMilliseconds) {
        case .missing: return .keyMissing
        case .wrongType: return .notServed
        case .found(let value):
            let list = value as! ListValue
            let before = list.count
            guard let item = call.moveItem(from: key, list, to: destination, fromHead: fromHead, toHead: toHead) else {
                return .served(keyRemains: call.store.contains(key, now: call.nowMilliseconds))  // the error answered
            }
            call.reply.bulk(item)
            return .served(keyRemains: before > 1 || destination == key)
        }
    }
}
