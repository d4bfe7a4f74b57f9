// FUNCTION LOAD | LIST | DELETE | FLUSH | KILL | STATS | HELP, FCALL and FCALL_RO, as Redis 7.0
// answers them (functions.c). The libraries live in the interpreter (Scripting/ScriptEngine+Functions.swift);
// a call runs atomically and its writes are one unit in the log, as a script's.

import Store

extension Commands {
    /// FCALL function numkeys [key …] [arg …]
    static func fcall(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.callFunction(arguments, readOnly: false, &call)
    }

    /// FCALL_RO: FCALL of a function flagged `no-writes`.
    static func fcallReadOnly(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        Self.callFunction(arguments, readOnly: true, &call)
    }

    private static func callFunction(_ arguments: ArgumentVector, readOnly: Bool, _ call: inout CommandCall) {
        let engine = call.state.scripts
        let name = arguments.copy(1)
        guard let function = engine.libraries.function(named: name) else { return call.reply.rawError("ERR Function not found") }
        guard let keyCount = ASCII.parseInteger(arguments[2]) else {
            return call.reply.rawError("ERR Bad number of keys provided")
        }
        if keyCount > Int64(arguments.count - 3) {
            return call.reply.rawError("ERR Number of keys can't be greater than number of args")
        }
        if keyCount < 0 { return call.reply.rawError("ERR Number of keys can't be negative") }
        if !function.flags.contains(.noWrites) && readOnly {
            return call.reply.rawError("ERR Can not execute a script with write flag using *_ro command.")
        }
        if call.memoryLimited && function.flags.isDisjoint(with: [.allowOOM, .noWrites]) && !call.control.makeRoom(forBytes: 0) {
            return call.reply.rawError(
                "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'")
        }
        let keys = Int(keyCount)
        engine.pushFunction(function, keys: keys, arguments: arguments.count - 3 - keys) { arguments[3 + $0] }
        engine.runningCommand = arguments
        call.store.atomically {
            engine.call(name: .function(name), flags: function.flags, readOnlyCommand: readOnly, evalMode: false, argumentCount: 2, &call)
        }
        engine.runningCommand = nil
    }

    /// FUNCTION LOAD | LIST | DELETE | FLUSH | KILL | STATS | HELP
    static func function(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let engine = call.state.scripts
        let count = arguments.count
        if arguments.argument(1, is: "load") {
            guard count >= 3 else { return call.reply.error(.wrongArity("function|load")) }
            var replace = false
            for i in 2..<(count - 1) {
                guard arguments.argument(i, is: "replace") else {
                    return call.reply.rawError("ERR Unknown option given: " + String(decoding: arguments[i], as: UTF8.self))
                }
                replace = true
            }
            engine.loadingControl = call.control
            defer { engine.loadingControl = nil }
            let code = arguments.copy(count - 1)
            // What it replaces, to put back if the log refuses the new one.
            let before = engine.libraries.libraries
            switch engine.loadLibrary(code, replace: replace, now: call.now) {
            case .success(let name):
                let replaced = before.first { $0.name == name }
                guard Self.persistLoadedLibrary(name, code: code, replaced: replaced, &call) else { return }
                call.reply.bulk(name)
            case .failure(let error): call.reply.rawError(error.message)
            }
        } else if arguments.argument(1, is: "list") {
            Self.functionList(arguments, &call)
        } else if arguments.argument(1, is: "delete") {
            guard count == 3 else { return call.reply.error(.wrongArity("function|delete")) }
            guard engine.libraries.library(named: arguments.copy(2)) != nil else {
                return call.reply.rawError("ERR Library not found")
            }
            guard Self.persistRemovedLibraries([arguments.copy(2)], &call) else { return }
            engine.release(engine.libraries.remove(named: arguments.copy(2))!.functions)
            call.reply.ok()
        } else if arguments.argument(1, is: "flush") {
            guard count <= 3 else {
                return call.reply.rawError(
                    "ERR unknown subcommand or wrong number of arguments for '" + String(decoding: arguments[1], as: UTF8.self)
                        + "'. Try FUNCTION HELP.")
            }
            guard count == 2 || arguments.argument(2, is: "async") || arguments.argument(2, is: "sync") else {
                return call.reply.error(.functionFlushOption)
            }
            guard Self.persistRemovedLibraries(engine.libraries.libraries.map(\.name), &call) else { return }
            for library in engine.libraries.removeAll() { engine.release(library.functions) }
            call.reply.ok()
        } else if arguments.argument(1, is: "kill") {
            guard count == 2 else { return call.reply.error(.wrongArity("function|kill")) }
            Self.killScript(evalMode: false, &call)
        } else if arguments.argument(1, is: "stats") {
            guard count == 2 else { return call.reply.error(.wrongArity("function|stats")) }
            if let run = engine.run, run.evalMode { return call.reply.error(Self.busyError(evalMode: true)) }
            call.reply.mapHeader(2)
            call.reply.bulk("running_script")
            Self.writeRunningFunction(&call)
            call.reply.bulk("engines")
            call.reply.mapHeader(1)
            call.reply.bulk("LUA")
            call.reply.mapHeader(2)
            call.reply.bulk("libraries_count")
            call.reply.integer(engine.libraries.libraries.count)
            call.reply.bulk("functions_count")
            call.reply.integer(engine.libraries.functionCount)
        } else if arguments.argument(1, is: "help") {
            guard count == 2 else { return call.reply.error(.wrongArity("function|help")) }
            Self.writeHelp(Self.functionHelp, "FUNCTION", &call)
        } else {
            call.reply.error(.unknownSubcommand(command: "FUNCTION", arguments[1]))
        }
    }

    /// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
    private static func functionList(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var withCode = false
        var pattern: [UInt8]?
        var i = 2
        while i < arguments.count {
            if !withCode && arguments.argument(i, is: "withcode") {
                withCode = true
            } else if pattern == nil && arguments.argument(i, is: "libraryname") {
                guard i + 1 < arguments.count else { return call.reply.rawError("ERR library name argument was not given") }
                pattern = arguments.copy(i + 1)
                i += 1
            } else {
                return call.reply.rawError("ERR Unknown argument " + String(decoding: arguments[i], as: UTF8.self))
            }
            i += 1
        }
        let libraries = call.state.scripts.libraries.libraries.filter { library in
            pattern.map { Glob.matches(pattern: $0, library.name) } ?? true
        }
        call.reply.arrayHeader(libraries.count)
        for library in libraries {
            call.reply.mapHeader(withCode ? 4 : 3)
            call.reply.bulk("library_name")
            call.reply.bulk(library.name)
            call.reply.bulk("engine")
            call.reply.bulk("LUA")
            call.reply.bulk("functions")
            call.reply.arrayHeader(library.functions.count)
            for function in library.functions {
                call.reply.mapHeader(3)
                call.reply.bulk("name")
                call.reply.bulk(function.name)
                call.reply.bulk("description")
                if let description = function.description { call.reply.bulk(description) } else { call.reply.null() }
                call.reply.bulk("flags")
                let flags = ScriptFlags.names.filter { function.flags.contains($0.1) }
                call.reply.setHeader(flags.count)
                for flag in flags { call.reply.status(bytes: Array(flag.0.utf8)) }
            }
            if withCode {
                call.reply.bulk("library_code")
                call.reply.bulk(library.code)
            }
        }
    }

    private static let functionHelp = [
        "LOAD [REPLACE] <FUNCTION CODE>", "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>", "    Delete the given library.", "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:", "    * Library name", "    * The engine used to run the Library",
        "    * Library description", "    * Functions list", "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.", "STATS",
        "    Return information about the current function running:", "    * Function name",
        "    * Command used to run the function", "    * Duration in MS that the function is running",
        "    If no function is running, return nil", "    In addition, returns a list of available engines.", "KILL",
        "    Kill the current running function.", "FLUSH [ASYNC|SYNC]", "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.", "    * SYNC: Synchronously flush the libraries.", "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.", "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
    ]
}
