// Function libraries are durable (Sources/Store/FunctionLibraries.swift): FUNCTION LOAD, DELETE and
// FLUSH hand each change to the server (ServerControl.persistFunctionLibrary), which logs it; at start-up
// the server hands the libraries it recovered back to the interpreter (restoreFunctionLibraries).

extension ServerControl {
    /// A server that keeps nothing (tests' fakes): functions live in memory only.
    public func persistFunctionLibrary(_ name: [UInt8], code: [UInt8]?) -> String? { nil }
}

extension ServerState {
    /// Loads recovered libraries (their code, in load order) into the interpreter, before any client
    /// connects. - Returns: the error of each library that would not load (the log holds only code
    /// that loaded once: a library failing now was written by another version of the server).
    public func restoreFunctionLibraries(_ codes: [[UInt8]], now: @escaping () -> (seconds: Int, microseconds: Int)) -> [String] {
        guard !codes.isEmpty else { return [] }
        var failures: [String] = []
        for code in codes {
            if case .failure(let error) = self.scripts.loadLibrary(code, replace: true, now: now) {
                failures.append(error.message)
            }
        }
        return failures
    }
}

extension ServerState {
    /// A failed log write rolled back what it lost, function libraries included (the store's undo
    /// entries, UndoLog.swift): makes the interpreter's libraries the store's again, unloading those the
    /// store no longer has (or has with other code) and loading back those it has. Called by the
    /// server after every rolled-back write (Sources/Server/GroupCommit.swift); nothing changes when
    /// no library was in the lost writes. - Returns: the error of each library that would not load.
    public func reconcileFunctionLibraries(
        _ stored: [(name: [UInt8], code: [UInt8])], now: @escaping () -> (seconds: Int, microseconds: Int)
    ) -> [String] {
        guard let engine = self.startedScripts else {
            return stored.isEmpty ? [] : self.restoreFunctionLibraries(stored.map(\.code), now: now)
        }
        for library in engine.libraries.libraries
        where !stored.contains(where: { $0.name == library.name && $0.code == library.code }) {
            if let removed = engine.libraries.remove(named: library.name) { engine.release(removed.functions) }
        }
        var failures: [String] = []
        for (name, code) in stored where engine.libraries.library(named: name) == nil {
            if case .failure(let error) = engine.loadLibrary(code, replace: true, now: now) { failures.append(error.message) }
        }
        return failures
    }
}

extension Commands {
    /// FUNCTION LOAD's library is in the interpreter: logs it, or, when the log refuses, puts back the
    /// library it replaced (or none) and answers the error. - Returns: whether it was logged.
    static func persistLoadedLibrary(_ name: [UInt8], code: [UInt8], replaced: Library?, _ call: inout CommandCall) -> Bool {
        guard let failure = call.control.persistFunctionLibrary(name, code: code) else { return true }
        let engine = call.state.scripts
        if let loaded = engine.libraries.remove(named: name) { engine.release(loaded.functions) }
        if let replaced { _ = engine.loadLibrary(replaced.code, replace: true, now: call.now) }
        call.reply.error(.storage(failure))
        return false
    }

    /// Logs the removal of `names` (DELETE, FLUSH: one unit). - Returns: whether it was logged; the
    /// error is answered otherwise and the interpreter keeps them.
    static func persistRemovedLibraries(_ names: [[UInt8]], _ call: inout CommandCall) -> Bool {
        var failure: String?
        call.store.atomically {
            for name in names where failure == nil {
                failure = call.control.persistFunctionLibrary(name, code: nil)
            }
        }
        guard let failure else { return true }
        call.reply.error(.storage(failure))
        return false
    }
}
