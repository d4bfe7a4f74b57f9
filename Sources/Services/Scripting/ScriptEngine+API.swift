// The `redis` table scripts see (Redis 7.0's script_lua.c, same names, arguments and error texts):
// redis.call / redis.pcall run a command through the one command table (CommandTable.execute) with
// the script's checks first (unknown, arity, not allowed from scripts, writes from a read-only
// script), capture its reply and hand it to Lua (ScriptConversion.swift); sha1hex, error_reply,
// status_reply, log, setresp, set_repl, replicate_commands, acl_check_cmd.

import CLua

extension ScriptEngine {
    /// Commands a script may not call (Redis's `noscript` flag: transactions, scripting itself,
    /// blocking commands, connection and server administration).
    static let commandsRefusedInScripts: Set<String> = [
        "auth", "hello", "eval", "eval_ro", "evalsha", "evalsha_ro", "fcall", "fcall_ro", "function", "script",
        "multi", "exec", "discard", "watch", "unwatch", "monitor", "quit", "reset", "save", "bgsave",
        "bgrewriteaof", "shutdown", "wait", "client", "config", "debug", "acl", "latency", "module", "sync",
        "psync", "replconf", "replicaof", "slaveof", "role", "failover", "subscribe", "unsubscribe",
        "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe", "blpop", "brpop", "blmove", "brpoplpush",
        "bzpopmin", "bzpopmax",
    ]

    /// Answers one call of a provided function. - Returns: the results pushed, or -1 with an
    /// error value on top (the trampoline raises it).
    func handle(_ lua: OpaquePointer, _ api: LuaAPI) -> Int32 {
        switch api {
        case .call: return self.redisCall(lua, raise: true)
        case .pcall: return self.redisCall(lua, raise: false)
        case .sha1hex:
            guard lua_gettop(lua) == 1 else {
                self.pushError("wrong number of arguments")
                return -1
            }
            self.push(SHA1.hex(self.bytes(at: 1)))
            return 1
        case .errorReply:
            guard lua_gettop(lua) == 1, lua_type(lua, -1) == LUA_TSTRING else {
                self.pushError("wrong number or type of arguments")
                return 1
            }
            let text = self.bytes(at: 1)
            self.pushError(text.first == ASCII.minus ? text : [ASCII.minus] + text)
            return 1
        case .statusReply:
            guard lua_gettop(lua) == 1, lua_type(lua, -1) == LUA_TSTRING else {
                self.pushError("wrong number or type of arguments")
                return 1
            }
            clua_newtable(lua)
            lua_pushstring(lua, "ok")
            lua_pushvalue(lua, 1)
            lua_rawset(lua, -3)
            return 1
        case .log: return self.log(lua)
        case .setResp:
            guard self.run != nil else { return self.fail("redis.setresp can only be called inside a script invocation") }
            guard lua_gettop(lua) == 1 else { return self.fail("redis.setresp() requires one argument.") }
            let resp = ScriptConversion.integer(lua_tonumber(lua, 1))
            guard resp == 2 || resp == 3 else { return self.fail("RESP version must be 2 or 3.") }
            self.run!.resp = Int(resp)
            return 0
        case .setRepl:
            guard self.run != nil else { return self.fail("redis.set_repl can only be called inside a script invocation") }
            guard lua_gettop(lua) == 1 else { return self.fail("redis.set_repl() requires two arguments.") }
            // Every write of a script is logged, as Redis 7 propagates effects; the flags are checked.
            let flags = ScriptConversion.integer(lua_tonumber(lua, -1))
            guard flags & ~3 == 0 else {
                return self.fail("Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")
            }
            return 0
        case .replicateCommands:
            lua_pushboolean(lua, 1)
            return 1
        case .aclCheckCommand:
            guard self.run != nil else {
                return self.fail("redis.acl_check_cmd can only be called inside a script invocation")
            }
            var known = false
            guard self.withArguments(lua, { known = CommandTable.respNames.find($0[0]) != nil }) else { return -1 }
            guard known else { return self.fail("Invalid command passed to redis.acl_check_cmd()") }
            lua_pushboolean(lua, 1)  // one user, who may run every command
            return 1
        case .registerFunction: return self.registerFunction(lua)
        case .loadTimeout:
            guard let deadline = self.loadDeadline else { return 0 }
            let now = deadline.now()
            guard now.seconds * 1_000_000 + now.microseconds > deadline.microseconds else { return 0 }
            return self.fail("FUNCTION LOAD timeout")
        case .unavailable: return self.fail("This function is not available here")
        case .busyCheck: return self.checkBusy()
        }
    }

    /// redis.log(level, message…): checked as Redis checks it, then the messages (strings and
    /// numbers, joined by a space) go to the server's log at that level (which drops it below
    /// `loglevel`): through the running script's ServerControl, or FUNCTION LOAD's.
    private func log(_ lua: OpaquePointer) -> Int32 {
        let count = lua_gettop(lua)
        guard count >= 2 else { return self.fail("redis.log() requires two arguments or more.") }
        guard lua_isnumber(lua, 1) != 0 else { return self.fail("First argument must be a number (log level).") }
        let level = ScriptConversion.integer(lua_tonumber(lua, 1))
        guard (0...3).contains(level), let logLevel = ScriptLogLevel(rawValue: Int(level)) else {
            return self.fail("Invalid debug level.")
        }
        guard let control = self.run?.call?.pointee.control ?? self.loadingControl else { return 0 }
        var message: [UInt8] = []
        for index in 2...count {
            guard let bytes = ScriptConversion.bytes(lua, index) else { continue }
            if index != 2 { message.append(ASCII.space) }
            message += bytes
        }
        control.log(logLevel, String(decoding: message, as: UTF8.self))
        return 0
    }

    /// Runs `body` with the arguments of redis.call (popped) as an argument vector. - Returns:
    /// false, without running `body`, with the error pushed.
    private func withArguments(_ lua: OpaquePointer, _ body: (ArgumentVector) -> Void) -> Bool {
        var bytes = ArraySlice<UInt8>()
        var ranges: [Range<Int>] = []
        guard self.collectArguments(lua, into: &bytes, &ranges) else { return false }
        body(ArgumentVector(bytes: bytes, ranges: ranges))
        return true
    }

    /// Copies the arguments of redis.call (and pops them) into `bytes` and `ranges`, reused from
    /// call to call: nothing is allocated once they have grown. `bytes` is all capacity, filled by
    /// the shim in one call (clua_collect_arguments: one pass over the Lua stack, no Swift access
    /// per argument) and grown when the arguments do not fit. - Returns: false with the error pushed.
    private func collectArguments(_ lua: OpaquePointer, into bytes: inout ArraySlice<UInt8>, _ ranges: inout [Range<Int>]) -> Bool {
        let count = Int(lua_gettop(lua))
        guard count > 0 else {
            self.pushError("Please specify at least one argument for this redis lib call")
            return false
        }
        if bytes.count > Self.keptBufferBytes { bytes = [] }
        if count > self.argumentEndsCapacity {
            self.argumentEnds.deallocate()
            self.argumentEndsCapacity = max(count, 2 * self.argumentEndsCapacity)
            self.argumentEnds = UnsafeMutablePointer<Int>.allocate(capacity: self.argumentEndsCapacity)
        }
        let ends = self.argumentEnds
        let number = self.numberScratch
        var needed = 0
        var status: Int32 = 2
        while status == 2 {
            status = bytes.withUnsafeMutableBytes { buffer in
                clua_collect_arguments(
                    lua, Int32(count), buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count, ends, &needed,
                    number)
            }
            if status == 2 { bytes.append(contentsOf: repeatElement(0, count: max(needed - bytes.count, bytes.count, 256))) }
        }
        clua_pop(lua, Int32(count))
        guard status == 0 else {
            self.pushError("Lua redis lib command arguments must be strings or integers")
            return false
        }
        // Exactly `count` ranges, then each set in place (emptying the array whole goes through
        // replaceSubrange: dearer).
        while ranges.count > count { ranges.removeLast() }
        while ranges.count < count { ranges.append(0..<0) }
        let base = bytes.startIndex
        ranges.withUnsafeMutableBufferPointer { ranges in
            var start = base
            for i in 0..<count {
                let end = base + ends[i]
                ranges[i] = start..<end
                start = end
            }
        }
        return true
    }

    /// The most a kept buffer (arguments, reply) holds on to between calls.
    static let keptBufferBytes = 64 * 1024

    /// redis.call / redis.pcall: runs a command for the script. A refused or failed command is an
    /// error table, raised by redis.call and returned by redis.pcall.
    ///
    /// One straight path, no closure and no class in a result: each retain and release here is an
    /// atomic instruction, and a redis.call made a dozen of them more than the command it runs.
    private func redisCall(_ lua: OpaquePointer, raise: Bool) -> Int32 {
        guard let call = self.run?.call else {
            return self.fail("redis.call/pcall can only be called inside a script invocation")
        }
        // The kept buffers are taken out of the engine while in use, moved into the argument vector
        // and back out of it (so that nothing else holds them when they are next written).
        var bytes = ArraySlice<UInt8>()
        var ranges: [Range<Int>] = []
        swap(&bytes, &self.argumentBytes)
        swap(&ranges, &self.argumentRanges)
        guard self.collectArguments(lua, into: &bytes, &ranges) else {
            swap(&bytes, &self.argumentBytes)
            swap(&ranges, &self.argumentRanges)
            return raise ? -1 : 1
        }
        let arguments = ArgumentVector(bytes: consume bytes, ranges: consume ranges)
        var refusal: StaticString = ""
        guard let command = self.check(arguments, refusal: &refusal) else {
            self.keep(consume arguments)
            self.pushError(refusal.description)
            lua_pushstring(lua, "ignore_error_stats_update")
            lua_pushboolean(lua, 1)
            lua_rawset(lua, -3)
            return raise ? -1 : 1
        }
        // The reply is appended to the kept buffer: it starts at `start` (emptied past the limit).
        var reply = ReplyWriter(encoding: self.run!.resp == 3 ? .resp3 : .resp2)
        swap(&reply.output, &self.replyBuffer)
        if reply.output.count > Self.keptBufferBytes { reply.output = [] }
        let start = reply.output.count
        swap(&call.pointee.reply, &reply)
        let lastCommand = call.pointee.lastCommand
        CommandTable.execute(
            arguments, on: .resp, names: CommandTable.respNames, maxValueBytes: call.pointee.maxValueBytes,
            resolved: command, call: &call.pointee)
        call.pointee.lastCommand = lastCommand
        swap(&call.pointee.reply, &reply)
        self.keep(consume arguments)
        let failed = reply.output.count > start && reply.output[start] == ASCII.minus
        reply.output.withUnsafeMutableBufferPointer { output in
            var reader = ScriptConversion.ReplyReader(
                bytes: UnsafeBufferPointer(rebasing: output[start...]), lua: self.lua, engine: self)
            reader.read()
        }
        swap(&reply.output, &self.replyBuffer)
        return raise && failed ? -1 : 1
    }

    /// Puts redis.call's argument buffers back for the next call, moved out of the vector.
    private func keep(_ arguments: consuming ArgumentVector) {
        var parts = arguments.parts()
        swap(&parts.bytes, &self.argumentBytes)
        swap(&parts.ranges, &self.argumentRanges)
    }

    /// Whether a command (by statistics slot) is refused in scripts: ``commandsRefusedInScripts``
    /// as a table, so a call checks it without building the command's name.
    private static let refusedSlots: [Bool] = CommandTable.statisticsNames.map { ScriptEngine.commandsRefusedInScripts.contains($0) }

    /// The command a script may run, or nil with why it may not in `refusal` (Redis's scriptCall
    /// checks, in order, and texts).
    private func check(_ arguments: ArgumentVector, refusal: inout StaticString) -> (command: CommandSpec, slot: Int)? {
        guard let resolved = self.resolve(arguments[0]) else {
            refusal = "Unknown Redis command called from script"
            return nil
        }
        let command = resolved.command
        guard CommandSpec.accepts(arity: command.arity, arguments.count) else {
            refusal = "Wrong number of args calling Redis command from script"
            return nil
        }
        if resolved.refused {
            refusal = "This Redis command is not allowed from script"
            return nil
        }
        if command.flags.contains(.write) {
            if self.run!.readOnly {
                refusal = "Write commands are not allowed from read-only scripts."
                return nil
            }
            self.run!.wrote = true
        }
        return (command, resolved.slot)
    }

    /// The command named `name` (as the command table finds it, ignoring case), its statistics
    /// slot, and whether scripts may not call it: from ``ScriptCommandCache`` when the script
    /// spelled the name so before, else from the table (and then cached).
    private func resolve(_ name: ArraySlice<UInt8>) -> (command: CommandSpec, slot: Int, refused: Bool)? {
        guard name.count <= ScriptCommandCache.longestName else {
            guard let (command, slot) = CommandTable.respNames.lookup(name) else { return nil }
            return (command, slot, Self.refusedSlots[slot])
        }
        let key = ScriptCommandCache.key(name)
        if let hit = self.commandCache.find(key) { return hit }
        guard let (command, slot) = CommandTable.respNames.lookup(name) else { return nil }
        let refused = Self.refusedSlots[slot]
        self.commandCache.insert(key, command: command, slot: slot, refused: refused)
        return (command, slot, refused)
    }
}

/// The commands redis.call resolved last, by their names exactly as scripts spelled them (a script
/// calls the same few over and over): a hit compares two words per entry instead of looking the
/// name up in the command table and the refused list. Fixed size, replaced in turn; names longer
/// than ``longestName`` are never cached. Commands are the table's rows, which live as long as the
/// process: the entries hold them unretained.
struct ScriptCommandCache {
    static let longestName = 16
    static let size = 8

    /// A name as the cache compares it: its bytes in two words (zero past its end) and its length.
    struct Key {
        let words: (UInt64, UInt64)
        let length: Int
    }

    private struct Entry {
        var key = Key(words: (0, 0), length: -1)
        unowned(unsafe) var command: CommandSpec?
        var slot = 0
        var refused = false
    }

    private let entries: UnsafeMutablePointer<Entry>
    private var next = 0

    init() {
        self.entries = UnsafeMutablePointer<Entry>.allocate(capacity: Self.size)
        self.entries.initialize(repeating: Entry(), count: Self.size)
    }

    /// Frees the entries (the owner's deinit).
    func deallocate() {
        self.entries.deinitialize(count: Self.size)
        self.entries.deallocate()
    }

    /// `name` (at most ``longestName`` bytes) as a key.
    static func key(_ name: ArraySlice<UInt8>) -> Key {
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { target in name.withUnsafeBytes { target.copyMemory(from: $0) } }
        return Key(words: words, length: name.count)
    }

    func find(_ key: Key) -> (command: CommandSpec, slot: Int, refused: Bool)? {
        for i in 0..<Self.size {
            let entry = self.entries[i]
            if entry.key.length == key.length && entry.key.words.0 == key.words.0 && entry.key.words.1 == key.words.1,
               let command = entry.command {
                return (command, entry.slot, entry.refused)
            }
        }
        return nil
    }

    mutating func insert(_ key: Key, command: CommandSpec, slot: Int, refused: Bool) {
        self.entries[self.next] = Entry(key: key, command: command, slot: slot, refused: refused)
        self.next = (self.next + 1) % Self.size
    }
}
