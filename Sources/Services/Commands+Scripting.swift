// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT, as Redis 7.0 answers them (eval.c). A script runs
// on the loop thread with nothing interleaved, and its writes are one unit in the log (the store's
// atomic group, as EXEC's): after a crash they are replayed all or none. The interpreter is in
// Scripting/ScriptEngine.swift; functions (FUNCTION, FCALL) in Commands+Functions.swift.

extension CommandTable {
    /// The scripting family's rows.
    static let scripting: [CommandSpec] = [
        CommandSpec("eval", arity: -3, flags: [], run: Commands.eval),
        CommandSpec("evalsha", arity: -3, flags: [], run: Commands.evalsha),
        CommandSpec("eval_ro", arity: -3, flags: [], run: Commands.evalReadOnly),
        CommandSpec("evalsha_ro", arity: -3, flags: [], run: Commands.evalshaReadOnly),
        CommandSpec("script", arity: -2, flags: [], run: Commands.script),
        CommandSpec("function", arity: -2, flags: [], run: Commands.function),
        CommandSpec("fcall", arity: -3, flags: [], run: Commands.fcall),
        CommandSpec("fcall_ro", arity: -3, flags: [], run: Commands.fcallReadOnly),
    ]
}

extension Commands {
    /// EVAL script numkeys [key …] [arg …]
    static func eval(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.evaluate(arguments, bySHA: false, readOnly: false, &call)
    }

    /// EVALSHA sha1 numkeys [key …] [arg …]
    static func evalsha(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.evaluate(arguments, bySHA: true, readOnly: false, &call)
    }

    /// EVAL_RO: EVAL whose script may not write.
    static func evalReadOnly(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.evaluate(arguments, bySHA: false, readOnly: true, &call)
    }

    /// EVALSHA_RO: EVALSHA whose script may not write.
    static func evalshaReadOnly(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.evaluate(arguments, bySHA: true, readOnly: true, &call)
    }

    /// The number of keys of EVAL/FCALL (argument 2). - Returns: nil once the error is answered.
    static func scriptKeyCount(_ arguments: ArgumentVector, _ call: inout CommandCall) -> Int? {
        // One digit, what nearly every call passes, without the general parser.
        let text = arguments[2]
        if text.count == 1, let digit = text.first.map({ $0 &- ASCII.zero }), digit < 10, Int(digit) <= arguments.count - 3 {
            return Int(digit)
        }
        guard let count = call.integerArgument(arguments, 2) else { return nil }
        if count > Int64(arguments.count - 3) {
            call.reply.rawError("ERR Number of keys can't be greater than number of args")
            return nil
        }
        if count < 0 {
            call.reply.rawError("ERR Number of keys can't be negative")
            return nil
        }
        return Int(count)
    }

    private static func evaluate(_ arguments: ArgumentVector, bySHA: Bool, readOnly: Bool, _ call: inout CommandCall) {
        guard let keyCount = Self.scriptKeyCount(arguments, &call) else { return }
        let engine = call.state.scripts
        let script: CachedScript
        if bySHA {
            guard let cached = engine.script(arguments[1]) else { return call.reply.rawError(Self.noScript) }
            script = cached
        } else {
            guard let loaded = engine.load(arguments.copy(1), reply: &call.reply) else { return }
            script = loaded
        }
        let flags = script.flags
        if !flags.contains(.compatible) {
            if !flags.contains(.noWrites) && readOnly {
                return call.reply.rawError("ERR Can not execute a script with write flag using *_ro command.")
            }
            if call.memoryLimited && flags.isDisjoint(with: [.allowOOM, .noWrites]) && !call.control.makeRoom(forBytes: 0) {
                return call.reply.rawError(
                    "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'")
            }
        }
        engine.pushScript(script)
        engine.keysArray = engine.setGlobalArray(engine.keysArray, "KEYS", keyCount) { arguments[3 + $0] }
        engine.argvArray = engine.setGlobalArray(engine.argvArray, "ARGV", arguments.count - 3 - keyCount) {
            arguments[3 + keyCount + $0]
        }
        call.store.atomically {
            engine.call(name: .script(script.digest), flags: flags, readOnlyCommand: readOnly, evalMode: true, argumentCount: 0, &call)
        }
    }

    static let noScript = "NOSCRIPT No matching script. Please use EVAL."

    /// SCRIPT LOAD | EXISTS | FLUSH [ASYNC|SYNC] | KILL | HELP
    static func script(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let engine = call.state.scripts
        let count = arguments.count
        if arguments.argument(1, is: "load") {
            guard count == 3 else { return call.reply.error(.wrongArity("script|load")) }
            guard let script = engine.load(arguments.copy(2), reply: &call.reply) else { return }
            call.reply.bulk(script.sha)
        } else if arguments.argument(1, is: "exists") {
            guard count >= 3 else { return call.reply.error(.wrongArity("script|exists")) }
            call.reply.arrayHeader(count - 2)
            for i in 2..<count {
                call.reply.integer(engine.script(arguments[i]) != nil ? 1 : 0)
            }
        } else if arguments.argument(1, is: "flush") {
            guard count == 2 || (count == 3 && (arguments.argument(2, is: "sync") || arguments.argument(2, is: "async")))
            else {
                return call.reply.rawError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
            }
            engine.flushScripts()
            call.reply.ok()
        } else if arguments.argument(1, is: "kill") {
            guard count == 2 else { return call.reply.error(.wrongArity("script|kill")) }
            Self.killScript(evalMode: true, &call)
        } else if arguments.argument(1, is: "help") {
            guard count == 2 else { return call.reply.error(.wrongArity("script|help")) }
            Self.writeHelp(Self.scriptHelp, "SCRIPT", &call)
        } else {
            call.reply.error(.unknownSubcommand(command: "SCRIPT", arguments[1]))
        }
    }

    private static let scriptHelp = [
        "DEBUG (YES|SYNC|NO)", "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]", "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.", "    * SYNC: Synchronously flush the scripts cache.",
        "KILL", "    Kill the currently executing Lua script.", "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
    ]

    /// Redis's HELP reply: a header line, the lines, the HELP line, as status replies.
    static func writeHelp(_ lines: [String], _ command: String, _ call: inout CommandCall) {
        call.reply.arrayHeader(lines.count + 3)
        call.reply.status(bytes: Array("\(command) <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".utf8))
        for line in lines { call.reply.status(bytes: Array(line.utf8)) }
        call.reply.status("HELP")
        call.reply.status(bytes: Array("    Prints this help.".utf8))
    }

    /// INFO memory's scripting fields, as Redis 7.0 names them: the interpreter's heap (one
    /// interpreter serves EVAL and functions here, so the two `vm` figures are the same heap) and
    /// the script cache.
    static func appendScriptingMemory(_ state: ServerState, to text: inout [UInt8]) {
        let engine = state.startedScripts
        let lua = engine?.luaBytes ?? 0
        let scripts = engine?.scriptBytes ?? 0
        let fields: [(String, Int)] = [
            ("used_memory_lua", lua), ("used_memory_vm_eval", lua), ("used_memory_scripts_eval", scripts),
            ("number_of_cached_scripts", engine?.scripts.count ?? 0),
            ("number_of_functions", engine?.libraries.functionCount ?? 0),
            ("number_of_libraries", engine?.libraries.libraries.count ?? 0), ("used_memory_vm_functions", lua),
            ("used_memory_vm_total", lua), ("used_memory_functions", 0), ("used_memory_scripts", scripts),
        ]
        for (name, value) in fields { text.append(contentsOf: Array("\(name):\(value)\r\n".utf8)) }
    }
}
