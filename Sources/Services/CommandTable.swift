// The one command table of the kv service, as Redis's: each command once, with its arity, flags,
// key positions, how the line protocol writes it (if it has it), and one implementation that
// runs against the data store, server state and control (CommandContext) and replies through
// ReplyWriter. Both protocols' framers yield an ArgumentVector and come here. No protocol bytes
// are written here: the encoders do that.

/// The command table and dispatch.
enum CommandTable {
    /// Every command: the strings, keys and server commands below, then each data type's family
    /// (declared beside its implementation, Commands+Hashes.swift and the like). The line protocol's
    /// `help` lists its commands in this order.
    static let commands: [CommandSpec] =
        Self.core + Self.hashes + Self.sets + Self.lists + Self.sortedSets + Self.blockingSortedSets + Self.scripting
        + Self.pubSubCommands + Self.bits

    /// The string, key, connection, transaction and server commands.
    private static let core: [CommandSpec] = [
        CommandSpec("put", arity: 3, flags: [.write, .mayAddMemory, .lineOnly], keys: .one,
                    line: LineSyntax(restFrom: 2, usage: "put <key> <value>"), run: Commands.put),
        CommandSpec("set", arity: -3, flags: [.write, .mayAddMemory], keys: .one,
                    line: LineSyntax(arity: 3, restFrom: 2, emptyRest: true, usage: "set <key> [value]"),
                    run: Commands.set),
        CommandSpec("get", arity: 2, flags: [.readOnly, .fast], keys: .one,
                    line: LineSyntax(usage: "get <key>"), run: Commands.get),
        CommandSpec("del", arity: -2, flags: [.write], keys: .all,
                    line: LineSyntax(arity: 2, integers: .okOrNotFound, usage: "del <key>"), run: Commands.del),
        CommandSpec("dbsize", arity: 1, flags: [.readOnly, .fast],
                    line: LineSyntax(name: "count", usage: "count"), run: Commands.dbsize),
        CommandSpec("ping", arity: -1, flags: [.fast],
                    line: LineSyntax(arity: 1, usage: "ping"), run: Commands.ping),
        CommandSpec("stats", arity: 1, flags: [.lineOnly], line: LineSyntax(usage: "stats"), run: Commands.stats),
        CommandSpec("help", arity: 1, flags: [.lineOnly],
                    line: LineSyntax(usage: "help"), run: Commands.help),
        CommandSpec("bye", arity: 1, flags: [.lineOnly, .allowedBeforeAuth],
                    line: LineSyntax(usage: "bye"), run: Commands.bye),
        CommandSpec("echo", arity: 2, flags: [.fast], run: Commands.echo),
        CommandSpec("setnx", arity: 3, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.setnx),
        CommandSpec("exists", arity: -2, flags: [.readOnly, .fast], keys: .all, run: Commands.exists),
        CommandSpec("mget", arity: -2, flags: [.readOnly, .fast], keys: .all, run: Commands.mget),
        CommandSpec("mset", arity: -3, flags: [.write, .mayAddMemory], keys: .pairs, run: Commands.mset),
        CommandSpec("incr", arity: 2, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.incr),
        CommandSpec("decr", arity: 2, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.decr),
        CommandSpec("incrby", arity: 3, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.incrby),
        CommandSpec("decrby", arity: 3, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.decrby),
        CommandSpec("incrbyfloat", arity: 3, flags: [.write, .mayAddMemory, .fast], keys: .one,
                    run: Commands.incrbyfloat),
        CommandSpec("getset", arity: 3, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.getset),
        CommandSpec("getdel", arity: 2, flags: [.write, .fast], keys: .one, run: Commands.getdel),
        CommandSpec("msetnx", arity: -3, flags: [.write, .mayAddMemory], keys: .pairs, run: Commands.msetnx),
        CommandSpec("append", arity: 3, flags: [.write, .mayAddMemory, .fast], keys: .one, run: Commands.append),
        CommandSpec("strlen", arity: 2, flags: [.readOnly, .fast], keys: .one, run: Commands.strlen),
        CommandSpec("getrange", arity: 4, flags: [.readOnly], keys: .one, run: Commands.getrange),
        CommandSpec("substr", arity: 4, flags: [.readOnly], keys: .one, run: Commands.getrange),
        CommandSpec("setrange", arity: 4, flags: [.write, .mayAddMemory], keys: .one, run: Commands.setrange),
        CommandSpec("lcs", arity: -3, flags: [.readOnly], keys: KeyPositions(first: 1, last: 2, step: 1),
                    run: Commands.lcs),
        CommandSpec("unlink", arity: -2, flags: [.write, .fast], keys: .all, run: Commands.del),
        CommandSpec("touch", arity: -2, flags: [.readOnly, .fast], keys: .all, run: Commands.touch),
        CommandSpec("type", arity: 2, flags: [.readOnly, .fast], keys: .one, run: Commands.type),
        CommandSpec("rename", arity: 3, flags: [.write], keys: KeyPositions(first: 1, last: 2, step: 1),
                    run: Commands.rename),
        CommandSpec("renamenx", arity: 3, flags: [.write, .fast], keys: KeyPositions(first: 1, last: 2, step: 1),
                    run: Commands.renamenx),
        CommandSpec("copy", arity: -3, flags: [.write, .mayAddMemory], keys: KeyPositions(first: 1, last: 2, step: 1),
                    run: Commands.copy),
        CommandSpec("info", arity: -1, flags: [], run: Commands.info),
        CommandSpec("time", arity: 1, flags: [.fast], run: Commands.time),
        CommandSpec("quit", arity: -1, flags: [.allowedBeforeAuth, .fast, .runsInMulti], run: Commands.quit),
        CommandSpec("select", arity: 2, flags: [.fast], run: Commands.select),
        CommandSpec("flushdb", arity: -1, flags: [.write], run: Commands.flush),
        CommandSpec("flushall", arity: -1, flags: [.write], run: Commands.flush),
        CommandSpec("move", arity: 3, flags: [.write, .fast], keys: .one, run: Commands.move),
        CommandSpec("swapdb", arity: 3, flags: [.write, .fast], run: Commands.swapdb),
        CommandSpec("command", arity: -1, flags: [], run: Commands.command),
        CommandSpec("config", arity: -2, flags: [], run: Commands.config),
        CommandSpec("client", arity: -2, flags: [], run: Commands.client),
        CommandSpec("setex", arity: 4, flags: [.write, .mayAddMemory], keys: .one,
                    line: LineSyntax(restFrom: 3, usage: "setex <key> <seconds> <value>"), run: Commands.setex),
        CommandSpec("expire", arity: 3, flags: [.write, .fast, .lineOnly], keys: .one,
                    line: LineSyntax(usage: "expire <key> <seconds>"), run: Commands.lineExpire),
        CommandSpec("ttl", arity: 2, flags: [.readOnly, .fast], keys: .one, line: LineSyntax(usage: "ttl <key>"),
                    run: Commands.ttl),
        CommandSpec("persist", arity: 2, flags: [.write, .fast], keys: .one, line: LineSyntax(usage: "persist <key>"),
                    run: Commands.persist),
        CommandSpec("auth", arity: -2, flags: [.allowedBeforeAuth, .fast],
                    line: LineSyntax(arity: 2, usage: "auth <password>"), run: Commands.auth),
        CommandSpec("hello", arity: -1, flags: [.allowedBeforeAuth, .fast], run: Commands.hello),
        CommandSpec("monitor", arity: 1, flags: [], run: Commands.monitor),
        CommandSpec("slowlog", arity: -2, flags: [], run: Commands.slowlog),
        CommandSpec("expire", arity: -3, flags: [.write, .fast], keys: .one, run: Commands.expire),
        CommandSpec("pexpire", arity: -3, flags: [.write, .fast], keys: .one, run: Commands.pexpire),
        CommandSpec("expireat", arity: -3, flags: [.write, .fast], keys: .one, run: Commands.expireat),
        CommandSpec("pexpireat", arity: -3, flags: [.write, .fast], keys: .one, run: Commands.pexpireat),
        CommandSpec("pttl", arity: 2, flags: [.readOnly, .fast], keys: .one, run: Commands.pttl),
        CommandSpec("expiretime", arity: 2, flags: [.readOnly, .fast], keys: .one, run: Commands.expiretime),
        CommandSpec("pexpiretime", arity: 2, flags: [.readOnly, .fast], keys: .one, run: Commands.pexpiretime),
        CommandSpec("psetex", arity: 4, flags: [.write, .mayAddMemory], keys: .one, run: Commands.psetex),
        CommandSpec("getex", arity: -2, flags: [.write, .fast], keys: .one, run: Commands.getex),
        CommandSpec("keys", arity: 2, flags: [.readOnly], run: Commands.keys),
        CommandSpec("scan", arity: -2, flags: [.readOnly], run: Commands.scan),
        CommandSpec("randomkey", arity: 1, flags: [.readOnly], run: Commands.randomkey),
        CommandSpec("object", arity: -2, flags: [.readOnly], run: Commands.object),
        CommandSpec("memory", arity: -2, flags: [.readOnly], run: Commands.memory),
        CommandSpec("lastsave", arity: 1, flags: [.fast], run: Commands.lastsave),
        CommandSpec("bgsave", arity: -1, flags: [], run: Commands.bgsave),
        CommandSpec("bgrewriteaof", arity: 1, flags: [], run: Commands.bgrewriteaof),
        CommandSpec("save", arity: 1, flags: [.noMulti], run: Commands.save),
        CommandSpec("shutdown", arity: -1, flags: [.noMulti], run: Commands.shutdown),
        CommandSpec("wait", arity: 3, flags: [], run: Commands.wait),
        CommandSpec("multi", arity: 1, flags: [.fast, .runsInMulti], run: Commands.multi),
        CommandSpec(CommandTable.execName, arity: 1, flags: [.runsInMulti], run: Commands.exec),
        CommandSpec("discard", arity: 1, flags: [.fast, .runsInMulti], run: Commands.discard),
        CommandSpec("watch", arity: -2, flags: [.fast, .runsInMulti], keys: .all, run: Commands.watch),
        CommandSpec("unwatch", arity: 1, flags: [.fast], run: Commands.unwatch),
        CommandSpec("reset", arity: 1, flags: [.allowedBeforeAuth, .fast, .runsInMulti], run: Commands.reset),
    ]

    /// How many commands RESP knows (`COMMAND COUNT`).
    static let respCommandCount = CommandTable.commands.count(where: { !$0.flags.contains(.lineOnly) })

    /// RESP's names (every row but the line protocol's own).
    static let respNames = NameIndex(CommandTable.commands.compactMap { command in
        command.flags.contains(.lineOnly) ? nil : (command.name, command)
    })

    /// The line protocol's names (`count` for DBSIZE, `put`, …).
    static let lineNames = NameIndex(CommandTable.commands.compactMap { command in
        command.line.map { ($0.name ?? command.name, command) }
    })

    /// The names of `wireProtocol`.
    static func names(on wireProtocol: KVSession.WireProtocol) -> NameIndex {
        switch wireProtocol {
        case .resp: Self.respNames
        case .line: Self.lineNames
        }
    }

    /// Answers one request: looks the command up, checks its arity (and, on the line protocol,
    /// the line protocol's limits), then runs it.
    ///
    /// - Parameters:
    ///   - arguments: the request, the command name first.
    ///   - wireProtocol: which protocol framed it (names, arities and limits differ).
    ///   - names: that protocol's names (``names(on:)``; a session keeps them at hand).
    ///   - maxValueBytes: the line protocol's value limit (RESP's is enforced by its parser).
    ///   - resolved: the command and slot `names` gives `arguments[0]`, when the caller has looked
    ///     it up already (a script's redis.call checks the command first).
    ///   - call: context, client state and reply writer.
    static func execute(
        _ arguments: ArgumentVector, on wireProtocol: KVSession.WireProtocol, names: NameIndex, maxValueBytes: Int,
        resolved: (command: CommandSpec, slot: Int)? = nil, call: inout CommandCall
    ) {
        call.commandCount &+= 1
        // `wroteError` is scoped to this request: EXEC's inner requests count their own errors.
        let outer = call.reply.wroteError
        call.reply.wroteError = false
        call.rejected = false
        call.subcommandSlot = -1
        let slot = Self.dispatch(
            arguments, on: wireProtocol, names: names, maxValueBytes: maxValueBytes, resolved: resolved, call: &call)
        let failed = call.reply.wroteError
        // INFO counts a container's subcommand under its own slot, and an unknown one nowhere (Redis).
        (call.lastSlot, call.lastFailed) = (slot < 0 || call.subcommandSlot == -1 ? slot : call.subcommandSlot, failed)
        if failed { call.state.infoStatistics.recordError(code: call.reply.lastErrorCode) }
        if slot >= 0 { call.statistics?.record(slot: slot, failed: failed) }
        call.reply.wroteError = outer
    }

    /// Counts the request ``execute(_:on:names:maxValueBytes:call:)`` just answered, which took
    /// `microseconds`, in INFO commandstats and latencystats (the caller times it: the session
    /// with the clock it already holds, so the hot path reads no closure twice more).
    @inline(__always)
    static func recordInfo(_ call: borrowing CommandCall, microseconds: Int) {
        guard call.lastSlot >= 0 else { return }
        call.state.infoStatistics.record(
            slot: call.lastSlot, microseconds: microseconds, rejected: call.rejected, failed: call.lastFailed)
    }

    /// Looks the command up, checks it, runs it. - Returns: its statistics slot, or -1 when
    /// MULTI queued it (it is counted when EXEC runs it).
    @discardableResult
    private static func dispatch(
        _ arguments: ArgumentVector, on wireProtocol: KVSession.WireProtocol, names: NameIndex, maxValueBytes: Int,
        resolved: (command: CommandSpec, slot: Int)?, call: inout CommandCall
    ) -> Int {
        guard let (command, slot) = resolved ?? names.lookup(arguments[0]) else {
            Self.refuseUnknown(arguments, &call)
            return CommandStatistics.unknownSlot
        }
        switch wireProtocol {
        case .resp:
            guard CommandSpec.accepts(arity: command.arity, arguments.count) else {
                call.rejected = true
                Self.refuseArity(command, &call)
                return slot
            }
            if arguments.count > 1 {
                switch Subcommands.lookup(slot: slot, arguments[1]) {
                case .none: break
                case .unknown: call.subcommandSlot = -2
                case .known(let index, let name, let arity):
                    call.subcommandSlot = Self.statisticsNames.count + index
                    guard CommandSpec.accepts(arity: arity, arguments.count) else {
                        call.rejected = true
                        call.client.transaction?.failed = true
                        call.reply.error(.wrongArity(name))
                        return slot
                    }
                }
            }
        case .line:
            // Present: the line index holds only rows that have a line syntax.
            let syntax = command.line!
            if let error = LineRules.check(arguments, command: command, syntax: syntax, maxValueBytes: maxValueBytes) {
                call.rejected = true
                call.reply.error(error)
                return slot
            }
            call.reply.lineIntegers = syntax.integers
        }
        // One branch on the common path: no password owed, no MULTI, nobody monitoring, no memory limit.
        if call.intercepting && Self.intercept(command, arguments, &call) {
            // Answered here: refused (an error), or queued by MULTI (counted when EXEC runs it).
            call.rejected = call.reply.wroteError
            return call.client.transaction != nil && !call.reply.wroteError ? -1 : slot
        }
        call.lastCommand = command.name
        let subcommandSlot = call.subcommandSlot  // EXEC and scripts run requests of their own
        command.run(arguments, &call)
        call.subcommandSlot = subcommandSlot
        if call.memoryLimited && command.flags.contains(.mayAddMemory) { call.control.settleMemory() }
        return slot
    }

    /// About how many bytes a request may add to the memory account: its arguments plus an entry's
    /// fixed cost (a slot, a deadline, a bucket) for each. Eviction makes this much room first, so that
    /// the account stays under the limit after the command.
    static func estimatedBytes(_ arguments: ArgumentVector) -> Int {
        var total = 0
        for i in 1..<arguments.count { total += arguments[i].count + 96 }
        return total
    }

    /// The label of each statistics slot: every distinct command name in table order (a name
    /// the table has twice, such as the two `expire` rows, shares one slot), then `unknown`.
    static let statisticsNames: [String] = {
        var names: [String] = []
        for command in CommandTable.commands {
            let name = command.name.description
            if !names.contains(name) { names.append(name) }
        }
        return names + ["unknown"]
    }()

    /// INFO's slots: ``statisticsNames``, then every container's subcommands (Subcommands.swift).
    static let infoNames: [String] = Self.statisticsNames + Subcommands.names

    /// The statistics slot of a table row.
    static func statisticsSlot(_ command: CommandSpec) -> Int {
        Self.statisticsNames.firstIndex(of: command.name.description)!
    }
}

extension CommandTable {
    /// An unknown command: inside MULTI it flags the transaction.
    @inline(never)
    fileprivate static func refuseUnknown(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        call.client.transaction?.failed = true
        call.reply.error(.unknownCommand(arguments))
    }

    /// The authentication gate, MULTI's queue and MONITOR, off the common path.
    /// - Returns: whether the command was answered here (refused or queued).
    @inline(never)
    fileprivate static func intercept(_ command: CommandSpec, _ arguments: ArgumentVector, _ call: inout CommandCall) -> Bool {
        if !call.client.authenticated && !command.flags.contains(.allowedBeforeAuth) {
            call.client.transaction?.failed = true
            call.reply.error(.noAuth)
            return true
        }
        let mayAddMemory = command.flags.contains(.mayAddMemory)
        if call.client.subscriber != nil && call.reply.encoding == .resp2 && Commands.refusesWhileSubscribed(command) {
            call.client.transaction?.failed = true
            call.reply.error(.notInSubscribedMode(command.name, arguments))
            return true
        }
        if call.state.busyScript != nil && Commands.refuseWhileBusy(command, arguments, &call) { return true }
        if call.client.transaction != nil && command.flags.contains(.noMulti) {
            call.client.transaction!.failed = true
            call.reply.error(.redis(code: "ERR", "Command not allowed inside a transaction"))
            return true
        }
        if call.client.transaction != nil && !command.flags.contains(.runsInMulti) {
            // Past the limit, Redis refuses every command inside MULTI (queueing takes memory
            // too), and the transaction is flagged.
            if call.memoryLimited && !call.control.makeRoom(forBytes: mayAddMemory ? Self.estimatedBytes(arguments) : 0) {
                call.client.transaction!.failed = true
                call.reply.error(.outOfMemory)
                return true
            }
            call.client.transaction!.queue(arguments)
            call.reply.status("QUEUED")
            return true
        }
        if call.memoryLimited && mayAddMemory && !call.control.makeRoom(forBytes: Self.estimatedBytes(arguments)) {
            call.reply.error(.outOfMemory)
            return true
        }
        if call.monitoring { Commands.feedMonitors(arguments, &call) }
        if call.afterEachCommand { Commands.trackRead(command, arguments, &call) }  // Commands+Tracking.swift
        return false
    }

    /// Wrong arity: inside MULTI the transaction is flagged, and an EXEC with arguments ends it
    /// (Redis's execCommandAbort).
    @inline(never)
    fileprivate static func refuseArity(_ command: CommandSpec, _ call: inout CommandCall) {
        guard call.client.transaction != nil else { return call.reply.error(.wrongArity(command.name)) }
        if command.name.utf8Start == CommandTable.execName.utf8Start {
            call.client.transaction = nil
            call.unwatchAll()
            return call.reply.error(.execAbortWrongArity(command.name))
        }
        call.client.transaction!.failed = true
        call.reply.error(.wrongArity(command.name))
    }

    fileprivate static let execName: StaticString = "exec"
}

/// Case-insensitive lookup of command names without hashing into a String: names are bucketed
/// by length and first letter, so a lookup compares against one or two names.
struct NameIndex: Sendable {
    private static let bucketCount = 64
    private var buckets: [[(name: StaticString, command: CommandSpec, slot: Int)]]

    init(_ names: [(StaticString, CommandSpec)]) {
        self.buckets = Array(repeating: [], count: Self.bucketCount)
        for (name, command) in names {
            let bytes = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
            self.buckets[Self.bucket(count: bytes.count, first: bytes[0])].append(
                (name, command, CommandTable.statisticsSlot(command)))
        }
    }

    private static func bucket(count: Int, first: UInt8) -> Int {
        (count &* 31 &+ Int(ASCII.lowercased(first))) & (Self.bucketCount - 1)
    }

    /// The command called `name`, ignoring ASCII case.
    func find(_ name: ArraySlice<UInt8>) -> CommandSpec? { self.lookup(name)?.command }

    /// The command called `name`, ignoring ASCII case, and its statistics slot.
    func lookup(_ name: ArraySlice<UInt8>) -> (command: CommandSpec, slot: Int)? {
        guard let first = name.first else { return nil }
        for entry in self.buckets[Self.bucket(count: name.count, first: first)]
        where ASCII.equalsIgnoringCase(name, entry.name) {
            return (entry.command, entry.slot)
        }
        return nil
    }
}
