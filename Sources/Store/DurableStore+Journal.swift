// Where mutations meet the journal: writing the buffered records, group-commit syncs, changing the fsync
// policy, and settling the outcome: undoing in the keyspace what a failed write or sync lost, or forgetting
// the undo entries of what became durable. The journal does the I/O (Journal.swift). Loop thread only.

extension DurableStore {
    /// Whether an atomic group is open (``beginAtomicGroup()``): a command that logs several records as
    /// one unit joins it instead of opening its own.
    public var inAtomicGroup: Bool { self.atomicGroupStart != nil }

    /// Writes every buffered record with one write(2) (looping on short writes). Call once per loop
    /// iteration, before replies go out. Under `everysec`/`no` success makes the records durable.
    /// While a compaction waits for the log to be synced before it rotates it (`always` only), writes
    /// nothing: the records wait in the buffer, as they would for the sync anyway.
    /// - Returns: `.failed` when the write failed (ENOSPC, EIO…): the file was cut back to its size before
    ///   this write and every buffered mutation rolled back in memory; or a failure stashed by a large
    ///   SET's early write (then nothing is written this time: call again next iteration).
    public func writeBuffered() -> WriteOutcome {
        precondition(!self.isClosed, "DurableStore used after close()")
        if let failure = self.unreportedFailure {
            self.unreportedFailure = nil
            return failure
        }
        precondition(self.atomicGroupStart == nil, "the log buffer is written while an atomic group is open")
        return self.settle { () throws(Journal.Failure) in try self.journal.write(policy: self.configuration.fsync) }
    }

    /// The fsync policy (``Configuration/fsync``), read here so that a reader in another module pays no
    /// dynamic exclusivity check (``configuration`` is unchecked inside this module only).
    public var fsyncPolicy: FsyncPolicy { self.configuration.fsync }

    /// A group-commit sync covering everything written so far, or nil when nothing written is unsynced
    /// or a sync is already in flight. Run it with ``SyncJob/run()`` on another thread (or on the loop
    /// thread, which it then blocks), then hand the result back here with ``completeSync(_:result:)``
    /// on the loop thread.
    public func makeSyncJob() -> SyncJob? {
        precondition(!self.isClosed, "DurableStore used after close()")
        return self.journal.makeSyncJob()
    }

    /// Takes back a finished ``SyncJob``.
    ///
    /// Success: under `always`, ``durableSequence`` advances to the job's sequence. Failure under `always`:
    /// a failed fsync is never retried or trusted (the kernel may have dropped the dirty pages): every
    /// mutation after the last durable one is rolled back in memory, the log cut back to the last synced
    /// size, and `.failed` returned. Under `everysec`/`no` those mutations were already acknowledged: the
    /// failure is logged and counted.
    public func completeSync(_ job: SyncJob, result: SyncResult) -> WriteOutcome {
        self.settle(self.journal.completeSync(job, result: result, policy: self.configuration.fsync))
    }

    /// Changes when the log is synced (CONFIG SET appendfsync). Call only with no ``SyncJob`` in flight.
    ///
    /// To `always`: what was written and acknowledged under the old policy is made durable first,
    /// with one fdatasync on the caller's thread, so a later failed sync under `always` (which cuts
    /// the log back to the last synced size) can never take acknowledged records with it; if that
    /// sync fails, the policy stays. Away from `always`: everything written so far counts as durable
    /// at once, as under the new policy it would have when written; mutations still buffered keep
    /// their undo entries until they are written.
    public func changeFsyncPolicy(to policy: FsyncPolicy) throws(StoreError) {
        precondition(!self.isClosed && !self.journal.state.isSyncing, "changeFsyncPolicy with a sync in flight")
        guard policy != self.configuration.fsync else { return }
        if policy == .always {
            try self.journal.syncNow(policy: .always)
        } else {
            self.journal.markWrittenDurable()
        }
        self.configuration.fsync = policy
        self.dropUndo(through: self.durableSequence)
    }

    /// Runs a journal write: undoes what a failed one lost, or forgets the undo entries of what became
    /// durable. The write throws its failure, so a write that succeeds (every loop iteration's) passes
    /// back no optional failure to destroy.
    @inline(__always)
    func settle(_ write: () throws(Journal.Failure) -> Void) -> WriteOutcome {
        do {
            try write()
        } catch {
            return self.settle(error)
        }
        return self.settle(nil)
    }

    /// Undoes what a failed write or sync lost, or forgets the undo entries of what became durable.
    func settle(_ failure: Journal.Failure?) -> WriteOutcome {
        if let failure {
            self.rollBack(after: failure.rollBackAfter)
            return failure.outcome
        }
        self.dropUndo(through: self.durableSequence)
        return .ok
    }

    /// Forgets the undo entries of mutations up to `sequence`: they can no longer be rolled back.
    func dropUndo(through sequence: UInt64) {
        if sequence >= self.lastSequence {
            // Everything is durable (every write under `everysec`/`no`): no walk of the entries.
            guard !self.undo.pointee.isEmpty else { return }
            if self.undo.pointee.clearCount > 0 { self.clearedKeyspaces.removeAll() }
            self.undo.pointee.removeAll()
            return
        }
        var clears = 0
        while let entry = self.undo.pointee.first, entry.sequence <= sequence {
            if entry.kind == .clear { clears += 1 }
            self.undo.pointee.removeFirst()
        }
        self.clearedKeyspaces.removeFirst(clears)
    }

    /// Undoes, newest first, every mutation with a sequence number above `sequence`.
    func rollBack(after sequence: UInt64) {
        let selected = self.selectedDatabase
        defer { self.select(selected, markingUndo: false) }
        while let entry = self.undo.pointee.last, entry.sequence > sequence {
            switch entry.kind {
            case .present:
                self.keyspace.set(entry.key, entry.value, deadline: entry.deadline)
            case .absent:
                self.keyspace.remove(entry.key)
            case .clear:
                let clock = self.keyspace.lruClock
                let restored = self.clearedKeyspaces.removeLast()
                restored.lruClock = clock
                self.install(restored)
                self.expireCursor = 0
            case .deadline:
                if let index = self.keyspace.find(entry.key) { self.keyspace.setDeadline(at: index, entry.deadline) }
            case .database:
                self.select(Int(entry.deadline ?? 0), markingUndo: false)
            case .function:
                self.root.restoreFunctionLibrary(entry.key, code: entry.value, at: entry.deadline.map(Int.init))
            case .swapped:
                self.exchangeDatabases(Int(entry.deadline ?? 0), Int(entry.value.loadUnaligned(as: Int64.self)))
            case .collection, .element, .moved:
                self.rollBackTyped(entry)  // DurableStore+Values.swift
            }
            self.undo.pointee.removeLast()
        }
    }
}
