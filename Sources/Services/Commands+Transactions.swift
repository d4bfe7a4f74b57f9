// MULTI, EXEC, DISCARD, WATCH, UNWATCH and RESET, as Redis 7.0 answers them. Queueing itself is
// in CommandTable.execute (every command but these is queued inside MULTI, after the same name
// and arity checks, whose failure makes EXEC answer EXECABORT).

extension Commands {
    /// MULTI: starts queueing.
    static func multi(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard call.client.transaction == nil else { return call.reply.error(.multiNested) }
        call.client.transaction = Transaction()
        call.intercepting = true
        call.reply.ok()
    }

    /// DISCARD: drops the queue and every watch.
    static func discard(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard call.client.transaction != nil else { return call.reply.error(.discardWithoutMulti) }
        call.client.transaction = nil
        call.unwatchAll()
        call.reply.ok()
    }

    /// EXEC: runs the queue as one step, replying with an array of its replies; a null array
    /// when a watched key changed, EXECABORT when queueing refused a command.
    static func exec(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let transaction = call.client.transaction else { return call.reply.error(.execWithoutMulti) }
        if call.memoryLimited, let bytes = Self.queuedGrowth(transaction), !call.control.makeRoom(forBytes: bytes) {
            // Redis refuses EXEC itself past the limit when the queue may add memory, and discards it.
            call.client.transaction = nil
            call.unwatchAll()
            return call.reply.error(.execAbortOutOfMemory)
        }
        call.client.transaction = nil
        let now = call.nowMilliseconds
        let watchedChanged = call.client.watched.contains { entry in
            call.state.watches.version(entry.key, database: entry.database) != entry.version || (entry.deadline.map { $0 <= now } ?? false)
        }
        call.unwatchAll()
        if transaction.failed { return call.reply.error(.execAbort) }
        if watchedChanged { return call.reply.nullArray() }
        call.reply.arrayHeader(transaction.count)
        // The queue was checked as a whole above; its commands do not evict one by one.
        let memoryLimited = call.memoryLimited
        call.memoryLimited = false
        let store = call.store
        // Blocking commands inside the transaction answer at once, as Redis's do.
        call.client.denyBlocking = true
        defer { call.client.denyBlocking = false }
        store.atomically {
            for i in 0..<transaction.count {
                let start = call.now()
                CommandTable.execute(
                    transaction.arguments(i), on: .resp, names: CommandTable.respNames, maxValueBytes: call.maxValueBytes,
                    call: &call)
                let end = call.now()
                CommandTable.recordInfo(
                    call, microseconds: (end.seconds - start.seconds) * 1_000_000 + end.microseconds - start.microseconds)
            }
        }
        // EXEC itself ran (its own execute records its slot once this returns).
        call.rejected = false
        call.memoryLimited = memoryLimited
        if memoryLimited { call.control.settleMemory() }
    }

    /// What the queued commands that may add memory would add (``CommandTable/estimatedBytes(_:)``),
    /// or nil when none may.
    private static func queuedGrowth(_ transaction: Transaction) -> Int? {
        var bytes: Int?
        for i in 0..<transaction.count {
            let arguments = transaction.arguments(i)
            if let command = CommandTable.respNames.find(arguments[0]), command.flags.contains(.mayAddMemory) {
                bytes = (bytes ?? 0) + CommandTable.estimatedBytes(arguments)
            }
        }
        return bytes
    }

    /// WATCH key [key …]: EXEC will abort if any of them changes before it.
    static func watch(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard call.client.transaction == nil else { return call.reply.error(.watchInMulti) }
        for i in 1..<arguments.count {
            let key = arguments.copy(i)
            let database = call.client.database
            guard !call.client.watched.contains(where: { $0.key == key && $0.database == database }) else { continue }
            // A key that expires after WATCH aborts EXEC like any other change (Redis 7.0).
            let deadline = call.store.expiry(forKey: key, now: call.nowMilliseconds).milliseconds
            call.client.watched.append((key, database, call.state.watches.watch(key, database: database), deadline))
            call.watchesActive = true
        }
        call.reply.ok()
    }

    /// UNWATCH: forgets every watch.
    static func unwatch(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        call.unwatchAll()
        call.reply.ok()
    }

    /// RESET: back to a new connection's state (no transaction, no watches, RESP2, no name).
    static func reset(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        call.client.transaction = nil
        call.unwatchAll()
        call.unsubscribeAll()
        Self.resetTracking(&call)
        call.client.name = nil
        call.selectDatabase(0)
        if call.reply.encoding == .resp3 { call.reply.encoding = .resp2 }
        call.reply.status("RESET")
    }
}
