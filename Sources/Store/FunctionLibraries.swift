// Function libraries (FUNCTION LOAD, DELETE, FLUSH) are durable: the store keeps each library's code
// with database 0's keyspace (the root, which every database hangs from; functions belong to none),
// logs a kind-13 record for each change (Record.swift), and compaction writes them to database.txt as
// `#!function<TAB>name` blocks whose one element line is the code (Snapshot+Typed.swift). Recovery and
// compaction rebuild them through Recovery.apply like any record. The store does not know Lua: the
// server hands the code back to the interpreter at start-up.

extension Keyspace {
    /// Loads (`code`) or deletes (nil) library `name`; a loaded library replaces one of the same name in
    /// place, a new one goes last (load order).
    func setFunctionLibrary<Name: Collection<UInt8>>(_ name: Name, code: (some Collection<UInt8>)?) {
        let index = self.functionLibraries.firstIndex { $0.name.elementsEqual(name) }
        switch (index, code) {
        case (let index?, let code?): self.functionLibraries[index].code = Array(code)
        case (nil, let code?): self.functionLibraries.append((Array(name), Array(code)))
        case (let index?, nil): self.functionLibraries.remove(at: index)
        case (nil, nil): break
        }
    }

    /// Rollback (UndoKind.function): library `name` back to `code` at `position` of the load order, or
    /// gone (no position).
    func restoreFunctionLibrary(_ name: UnsafeRawBufferPointer, code: UnsafeRawBufferPointer, at position: Int?) {
        self.functionLibraries.removeAll { $0.name.elementsEqual(name) }
        guard let position else { return }
        self.functionLibraries.insert((Array(name), Array(code)), at: min(position, self.functionLibraries.count))
    }
}

extension DurableStore {
    /// The function libraries, in load order: what FUNCTION LOAD logged and DELETE/FLUSH did not remove.
    public var functionLibraries: [(name: [UInt8], code: [UInt8])] { self.root.functionLibraries }

    /// Keeps library `name` with `code` (FUNCTION LOAD), or removes it (nil: FUNCTION DELETE; a FLUSH is
    /// one call per library inside one atomic group), logged as a kind-13 record. Written outside any
    /// database record: functions belong to no database.
    /// - Returns: the sequence number (durable once the log reaches it).
    @discardableResult
    public func setFunctionLibrary(_ name: [UInt8], code: [UInt8]?) throws(StoreError) -> UInt64 {
        precondition(!name.isEmpty, "a function library has a name")
        precondition(self.databaseFrameStart == nil, "functions are logged outside database records")
        try self.checkWritable(recordBytes: name.count + (code?.count ?? 0))
        let sequence = self.journal.nextSequence()
        // What a failed write rolls back to (the undo entry every buffered mutation has).
        let position = self.root.functionLibraries.firstIndex { $0.name == name }
        let previous = position.map { self.root.functionLibraries[$0].code } ?? []
        name.withUnsafeBytes { key in
            previous.withUnsafeBytes { old in
                self.undo.pointee.pushFunction(sequence: sequence, name: key, code: old, position: position)
            }
        }
        self.root.setFunctionLibrary(name, code: code)
        let value = code ?? []
        name.withUnsafeBytes { key in
            value.withUnsafeBytes { value in
                Record.append(kind: Record.kindFunction, key: key, value: value, to: &self.journal.pending.pointee.buffer)
            }
        }
        self.journal.pending.pointee.bufferedRecords += 1
        return sequence
    }
}
