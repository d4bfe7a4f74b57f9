// An atomic group closed without being logged: the mutations made in it are undone in memory and its
// records leave the journal's buffer, as if it had never begun. SHUTDOWN NOSAVE asks for it while a
// busy script is running (Sources/Server/Control.swift): Redis exits without the writes of a script it
// stopped half-way, so the log must not keep them either.

/// Where an open atomic group began: what ``DurableStore/abandonAtomicGroup()`` goes back to.
struct AtomicGroupOpening {
    /// The last sequence number handed out before the group.
    var sequence: UInt64 = 0
    /// The records buffered before the group.
    var bufferedRecords = 0
    /// ``DurableStore/abandonOpenAtomicGroup()`` was asked: the group's end abandons it.
    var abandoned = false

    init() {}

    /// Where a group opening now in `store` begins.
    init(opening store: DurableStore) {
        self.sequence = store.lastSequence
        self.bufferedRecords = store.journal.pending.pointee.bufferedRecords
    }
}

extension DurableStore {
    /// Asks that the open atomic group be abandoned when it ends: its owner ends it as it always does
    /// (``endAtomicGroup()``), which then abandons it. For one who is not the group's owner (the
    /// group is open around the code that asks). No group open: nothing happens.
    public func abandonOpenAtomicGroup() {
        guard self.atomicGroupStart != nil else { return }
        self.atomicGroupOpening.abandoned = true
    }

    /// Closes the open group without logging it: every mutation made since ``beginAtomicGroup()`` is
    /// rolled back in memory (from the undo entries every buffered mutation keeps) and its records
    /// removed from the buffer; the sequence numbers they took are handed out again.
    public func abandonAtomicGroup() {
        guard let start = self.atomicGroupStart else { preconditionFailure("no atomic group is open") }
        let opening = self.atomicGroupOpening
        self.atomicGroupStart = nil
        self.atomicGroupOpening = AtomicGroupOpening()
        self.rollBack(after: opening.sequence)
        let buffered = self.journal.pending.pointee.buffer.count
        self.journal.pending.pointee.buffer.remove(start..<buffered)
        self.journal.pending.pointee.bufferedRecords = opening.bufferedRecords
        self.journal.pending.pointee.sequences.appended = opening.sequence
    }
}
