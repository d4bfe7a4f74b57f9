// Busy scripts, as Redis 7.0 handles them (script.c's scriptInterrupt, server.c's busy branch of
// processCommand): a script (EVAL* or FCALL*) that has run past `busy-reply-threshold` does not
// hold the server. From the interpreter's count hook (every 10 000 instructions) it has the
// server serve the other connections (ServerControl.serveWhileBusy: one pass of the event loop,
// Sources/Reactor/EventLoop+Busy.swift, that never touches the script's own connection), and
// their commands are answered `-BUSY …`, except the few Redis allows meanwhile: SCRIPT KILL and
// FUNCTION KILL (which stop a script that has not written), SHUTDOWN NOSAVE (which stops it and
// the server), FUNCTION STATS, and the connection-state commands (AUTH, HELLO, MULTI, DISCARD,
// WATCH, UNWATCH, RESET, QUIT). Nothing else runs while the script does: no expiry, eviction or
// timer, no blocked client served, no log write (docs/architecture.md, "Busy scripts").

import CLua

/// The script running past `busy-reply-threshold` (ServerState.busyScript).
public struct BusyScript: Sendable {
    /// EVAL and its kin (true) or FCALL (false): `-BUSY`'s text names SCRIPT KILL or FUNCTION KILL.
    public let evalMode: Bool
}

/// `redis.log`'s levels, Redis's numbers.
public enum ScriptLogLevel: Int, Sendable {
    case debug = 0, verbose, notice, warning
}

extension ServerControl {
    /// A server that cannot serve from inside a script (tests' fakes) lets it run on.
    public func serveWhileBusy(skipping: Int) {}
    /// A server with no log drops the line.
    public func log(_ level: ScriptLogLevel, _ message: String) {}
}

extension ScriptEngine {
    /// The count hook of a running script: past the time limit, serves the other connections once,
    /// then stops the script if it was killed. - Returns: -1 with the kill error pushed (the C
    /// hook raises it, then runs at every line, so that pcall cannot catch it for good).
    func checkBusy() -> Int32 {
        guard let run = self.run, let pointer = run.call else { return 0 }
        if run.killed { return self.fail("Script killed by user with SCRIPT KILL...") }
        let state = pointer.pointee.state
        let control = pointer.pointee.control
        if !run.timedOut {
            let now = pointer.pointee.now()
            let elapsed = (now.seconds &* 1_000_000 &+ now.microseconds &- run.startMicroseconds) / 1000
            guard elapsed >= state.busyReplyThresholdMilliseconds else { return 0 }
            self.run!.timedOut = true
            state.busyScript = BusyScript(evalMode: run.evalMode)
            control.log(
                .warning,
                "Slow script detected: still in execution after \(elapsed) milliseconds. You can try killing the script using the "
                    + (run.evalMode ? "SCRIPT KILL" : "FUNCTION KILL") + " command. Script name is: "
                    + String(decoding: self.runName, as: UTF8.self) + ".")
        }
        // Without the script's connection's descriptor nothing can be served safely.
        if let descriptor = state.clients.record(id: pointer.pointee.client.id)?.fd {
            control.serveWhileBusy(skipping: descriptor)
        }
        guard self.run?.killed == true else { return 0 }
        control.log(.warning, "Lua script killed by user with SCRIPT KILL.")
        return self.fail("Script killed by user with SCRIPT KILL...")
    }

    /// The script that timed out has ended: commands run again.
    func endBusy(_ call: inout CommandCall) {
        call.state.busyScript = nil
    }
}

extension Commands {
    /// Redis's `-BUSY` texts (shared.slowevalerr, shared.slowscripterr).
    static func busyError(evalMode: Bool) -> CommandError {
        .redis(
            code: "BUSY",
            "Redis is busy running a script. You can only call " + (evalMode ? "SCRIPT KILL" : "FUNCTION KILL")
                + " or SHUTDOWN NOSAVE.")
    }

    /// The commands Redis 7.0 runs while a script is busy (its `allow-busy` flag).
    private static let allowedWhileBusy: Set<String> = [
        "auth", "hello", "quit", "reset", "multi", "discard", "watch", "unwatch", "shutdown", "replconf",
    ]

    /// While a script is busy: refuses `command` unless Redis allows it then (inside MULTI the
    /// transaction is flagged, as Redis's rejectCommand does). - Returns: whether it was refused.
    static func refuseWhileBusy(_ command: CommandSpec, _ arguments: ArgumentVector, _ call: inout CommandCall) -> Bool {
        guard let busy = call.state.busyScript else { return false }
        let name = command.name.description
        if Self.allowedWhileBusy.contains(name) { return false }
        if name == "script" && arguments.count == 2 && arguments.argument(1, is: "kill") { return false }
        if name == "function" && arguments.count == 2 && (arguments.argument(1, is: "kill") || arguments.argument(1, is: "stats")) {
            return false
        }
        // EXEC refused ends the transaction (Redis's rejectCommand); anything else inside MULTI flags it.
        if name == "exec" && call.client.transaction != nil {
            call.client.transaction = nil
            call.unwatchAll()
            call.reply.rawError(
                "EXECABORT Transaction discarded because of: BUSY Redis is busy running a script. You can only call "
                    + (busy.evalMode ? "SCRIPT KILL" : "FUNCTION KILL") + " or SHUTDOWN NOSAVE.")
            return true
        }
        call.client.transaction?.failed = true
        call.reply.error(Self.busyError(evalMode: busy.evalMode))
        return true
    }

    /// SCRIPT KILL (`evalMode`) or FUNCTION KILL: stops the busy script unless it wrote, or is of
    /// the other kind (Redis's scriptKill).
    static func killScript(evalMode: Bool, _ call: inout CommandCall) {
        let engine = call.state.scripts
        guard let run = engine.run else { return call.reply.rawError("NOTBUSY No scripts in execution right now.") }
        if run.wrote {
            return call.reply.rawError(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the "
                    + "script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.")
        }
        guard run.evalMode == evalMode else { return call.reply.error(Self.busyError(evalMode: run.evalMode)) }
        engine.run!.killed = true
        call.reply.ok()
    }

    /// SHUTDOWN while a script is busy: NOSAVE stops the script (whatever it wrote) and then the
    /// server; anything else is refused as Redis refuses it. - Returns: whether SHUTDOWN may go on.
    static func shutdownWhileBusy(noSave: Bool, _ call: inout CommandCall) -> Bool {
        guard let busy = call.state.busyScript else { return true }
        guard noSave else {
            call.reply.error(Self.busyError(evalMode: busy.evalMode))
            return false
        }
        call.state.scripts.run?.killed = true
        return true
    }

    /// FUNCTION STATS's `running_script`: the function running now (FUNCTION STATS runs while one
    /// is busy), or null.
    static func writeRunningFunction(_ call: inout CommandCall) {
        let engine = call.state.scripts
        guard let run = engine.run, let arguments = engine.runningCommand else { return call.reply.null() }
        call.reply.mapHeader(3)
        call.reply.bulk("name")
        call.reply.bulk(engine.runName)
        call.reply.bulk("command")
        call.reply.arrayHeader(arguments.count)
        for i in 0..<arguments.count { call.reply.bulk(arguments.copy(i)) }
        call.reply.bulk("duration_ms")
        let now = call.now()
        call.reply.integer((now.seconds &* 1_000_000 &+ now.microseconds &- run.startMicroseconds) / 1000)
    }

    /// The scripting parameters for CONFIG GET.
    static func scriptingConfiguration(_ state: ServerState) -> [(name: String, value: String)] {
        let threshold = String(state.busyReplyThresholdMilliseconds)
        return [("busy-reply-threshold", threshold), ("lua-time-limit", threshold)]
    }

    /// Checks `busy-reply-threshold` (or its alias `lua-time-limit`) for CONFIG SET. - Returns:
    /// nil when `arguments[i]` is neither; otherwise the change, or the error to answer.
    static func parseScriptingParameter(
        _ arguments: ArgumentVector, _ i: Int, _ state: ServerState
    ) -> Result<(ServerState) -> Void, CommandError>? {
        guard arguments.argument(i, is: "busy-reply-threshold") || arguments.argument(i, is: "lua-time-limit") else { return nil }
        guard let value = ASCII.parseInteger(arguments[i + 1]) else { return .failure(.configNotInteger(arguments[i])) }
        guard value >= 0 else { return .failure(.configOutOfRange(arguments[i], minimum: 0, maximum: Int.max)) }
        return .success { $0.busyReplyThresholdMilliseconds = Int(value) }
    }
}
