// The server commands that act on the server as a whole: SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE,
// SHUTDOWN (through ServerControl), SLOWLOG, FUNCTION and WAIT, and the Redis version reported.

extension Commands {
    /// The server's version as reported to Redis clients (`INFO`, `HELLO`).
    static let redisCompatibleVersion: StaticString = "7.0.15"

    /// LASTSAVE: Unix seconds of the last finished compaction.
    static func lastsave(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        call.reply.integer(call.control.facts().lastSaveTime)
    }

    /// BGSAVE [SCHEDULE]: starts a compaction into `database.txt` and replies at once.
    static func bgsave(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count == 1 || (arguments.count == 2 && arguments.argument(1, is: "schedule")) else {
            return call.reply.error(.syntax)
        }
        switch call.control.requestCompaction(replyWhenDone: false) {
        case .started: call.reply.status("Background saving started")
        case .alreadyRunning:
            if arguments.count == 2 {
                call.reply.status("Background saving scheduled")
            } else {
                call.reply.error(.backgroundSaveRunning)
            }
        case .failed(let reason): call.reply.error(.storage(reason))
        }
    }

    /// BGREWRITEAOF: the same compaction (the log is rewritten into the snapshot).
    static func bgrewriteaof(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch call.control.requestCompaction(replyWhenDone: false) {
        case .started, .alreadyRunning: call.reply.status("Background append only file rewriting started")
        case .failed(let reason): call.reply.error(.storage(reason))
        }
    }

    /// SAVE: a compaction; the reply (and every later one) leaves once it has finished, while
    /// the loop keeps serving everyone else.
    static func save(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        switch call.control.requestCompaction(replyWhenDone: true) {
        case .started: call.reply.ok()
        case .alreadyRunning: call.reply.error(.backgroundSaveRunning)
        case .failed(let reason): call.reply.error(.storage(reason))
        }
    }

    /// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: a graceful stop; the connection gets no reply.
    /// SAVE compacts on the way out whatever it takes, NOSAVE never does, neither as a signal
    /// would (when it fits in a stop's time). A stop here is immediate, so ABORT finds none in
    /// progress, as Redis answers when none is.
    static func shutdown(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        var saveGiven = false, noSaveGiven = false, abort = false
        for i in 1..<arguments.count {
            if arguments.argument(i, is: "nosave") {
                noSaveGiven = true
            } else if arguments.argument(i, is: "save") {
                saveGiven = true
            } else if arguments.argument(i, is: "abort") {
                abort = true
            } else if arguments.argument(i, is: "now") || arguments.argument(i, is: "force") {
                continue
            } else {
                return call.reply.error(.syntax)
            }
        }
        if abort {
            return call.reply.error(arguments.count == 2 ? .noShutdownInProgress : .syntax)
        }
        guard !(saveGiven && noSaveGiven) else { return call.reply.error(.syntax) }
        guard Self.shutdownWhileBusy(noSave: noSaveGiven, &call) else { return }
        call.control.shutdown(save: saveGiven ? true : noSaveGiven ? false : nil)
        call.closeAfterReply = true
    }

    /// SLOWLOG GET [count] | LEN | RESET.
    static func slowlog(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        let log = call.state.slowLog
        if arguments.argument(1, is: "len") {
            guard arguments.count == 2 else { return call.reply.error(.wrongArity("slowlog|len")) }
            call.reply.integer(log.entries.count)
        } else if arguments.argument(1, is: "reset") {
            guard arguments.count == 2 else { return call.reply.error(.wrongArity("slowlog|reset")) }
            log.reset()
            call.reply.ok()
        } else if arguments.argument(1, is: "get") {
            guard arguments.count <= 3 else { return call.reply.error(.wrongArity("slowlog|get")) }
            var count = 10
            if arguments.count == 3 {
                guard let n = ASCII.parseInteger(arguments[2]), n >= -1 else {
                    return call.reply.error(.slowlogCount)
                }
                count = n == -1 ? log.entries.count : Int(min(n, Int64(Int32.max)))
            }
            let shown = log.entries.prefix(count)
            call.reply.arrayHeader(shown.count)
            for entry in shown {
                call.reply.arrayHeader(6)
                call.reply.integer(entry.id)
                call.reply.integer(entry.timestampSeconds)
                call.reply.integer(entry.microseconds)
                call.reply.arrayHeader(entry.arguments.count)
                for argument in entry.arguments { call.reply.bulk(argument) }
                call.reply.bulk(entry.client)
                call.reply.bulk(entry.name)
            }
        } else {
            call.reply.error(.unknownSubcommand(command: "SLOWLOG", arguments[1]))
        }
    }

    /// WAIT numreplicas timeout: there are no replicas, so 0 at once.
    static func wait(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard call.integerArgument(arguments, 1) != nil else { return }
        guard let timeout = ASCII.parseInteger(arguments[2]) else { return call.reply.error(.timeoutNotInteger) }
        guard timeout >= 0 else { return call.reply.error(.timeoutNegative) }
        call.reply.integer(0)
    }
}
