// The server acting on itself for the kv commands (Sources/Services/ServerControl.swift): INFO's
// and LASTSAVE's figures, CONFIG GET and the CONFIG SET changes beyond plain state (fsync policy,
// idle timeout, memory limit), CONFIG RESETSTAT, BGSAVE/SAVE, SHUTDOWN, and the memory limit's
// eviction, each handed to the part that owns it: group commit (Persistence.swift), housekeeping
// (Housekeeping.swift), compaction (CompactionSchedule.swift), the server (Server.swift).

import Logging
import Reactor
import Services
import Store

/// ``ServerControl`` over the server's parts. Loop thread only.
final class Control: ServerControl {
    private unowned let server: Server
    private unowned let loop: EventLoop
    private let store: DurableStore
    private let state: ServerState
    private let persistence: Persistence
    private let housekeeping: Housekeeping
    private let compaction: CompactionSchedule
    /// Tells the store adapter of a mutation made here (function libraries), so that the batch's
    /// replies wait for it to be durable. Set by the server once the adapter exists.
    var noteMutation: ((UInt64) -> Void)?
    /// When the last timed batch of commands ended (monotonic ns): see ``endCommandBatch()``.
    @exclusivity(unchecked) private var lastBatchEnd: UInt64 = 0

    init(
        server: Server, store: DurableStore, state: ServerState, persistence: Persistence, housekeeping: Housekeeping,
        compaction: CompactionSchedule
    ) {
        self.server = server
        self.loop = server.loop
        self.store = store
        self.state = state
        self.persistence = persistence
        self.housekeeping = housekeeping
        self.compaction = compaction
    }

    func facts() -> ServerFacts {
        var facts = self.server.serverFacts()
        facts.connectedClients = self.state.clients.count
        facts.keys = self.store.count
        facts.databaseSizes = self.store.databaseSizes()
        facts.keysWithExpiry = self.store.keysWithExpiry
        facts.expiredKeys = self.store.expiredKeyCount
        facts.usedMemoryBytes = self.housekeeping.usedMemoryBytes
        facts.usedMemoryPeakBytes = self.housekeeping.sampleMemoryPeak()
        facts.residentBytes = ProcessStatistics.residentBytes() ?? 0
        facts.maxMemoryBytes = self.state.maxMemoryBytes
        facts.maxMemoryPolicy = self.state.evictionPolicy.rawValue
        facts.evictedKeys = self.store.evictedKeyCount
        facts.totalCommandsProcessed = self.state.commandsProcessed
        facts.changesSinceLastSave = self.compaction.changesSinceLastSave
        facts.compactionInProgress = self.compaction.isRunning
        facts.lastSaveTime = self.compaction.lastSaveTime
        facts.lastCompactionSucceeded = self.compaction.lastSucceeded
        facts.fsyncPolicy = self.store.configuration.fsync.rawValue
        let statistics = self.store.statistics()
        for (name, value) in statistics {
            if name == "compactions" { facts.compactions = Int(value) ?? 0 }
            if name == "log_bytes" { facts.logBytes = Int(value) ?? 0 }
        }
        facts.extra = self.statistics()
        return facts
    }

    func statistics() -> [(name: String, value: String)] {
        self.server.connectionStatistics() + self.store.statistics()
    }

    func configuration() -> [(name: String, value: String)] {
        let facts = self.server.serverFacts()
        return [
            ("appendonly", "yes"), ("appendfsync", self.store.configuration.fsync.rawValue), ("save", ConfigParameters.describe(self.state.savePoints)),
            ("databases", String(self.state.databases?.count ?? 1)), ("port", String(facts.tcpPort)), ("maxclients", String(facts.maxClients)),
            ("maxmemory", String(self.state.maxMemoryBytes)), ("maxmemory-policy", self.state.evictionPolicy.rawValue),
            ("maxmemory-samples", String(Housekeeping.evictionSamples)),
            ("dir", self.store.configuration.directory),
            ("requirepass", String(decoding: self.state.password ?? [], as: UTF8.self)),
            ("slowlog-log-slower-than", String(self.state.slowLog.thresholdMicroseconds)),
            ("slowlog-max-len", String(self.state.slowLog.maxLength)),
        ] + self.server.extraConfiguration()
    }

    func apply(_ change: ConfigChange) -> String? {
        switch change {
        case .fsyncPolicy(let name):
            return self.persistence.setFsyncPolicy(name)
        case .idleTimeout(let seconds):
            self.server.setIdleTimeout(.seconds(seconds))
            return nil
        case .memoryLimit(let bytes, let policy):
            self.housekeeping.setMemoryLimit(bytes: bytes, policy: policy)
            return nil
        }
    }

    func resetStatistics() {
        self.state.commandsProcessed = 0
        self.state.infoStatistics.reset()
    }

    func requestCompaction(replyWhenDone: Bool) -> CompactionRequest {
        self.compaction.request(replyWhenDone: replyWhenDone)
    }

    func shutdown(save: Bool?) {
        // SHUTDOWN NOSAVE from inside a busy script (served from its hook): Redis exits without the
        // script's writes, so its unit is abandoned when the stopped script returns, never logged.
        if save == false && self.state.busyScript != nil { self.store.abandonOpenAtomicGroup() }
        self.persistence.closingCompaction = save.map { $0 ? .always : .never } ?? .withinBudget
        self.server.requestStop()
    }

    /// The loop (a blocked client's timeout timer, KVConnection.swift).
    var eventLoop: EventLoop { self.loop }

    func makeRoom(forBytes bytes: Int) -> Bool { self.housekeeping.makeRoom(forBytes: bytes) }

    func settleMemory() { self.housekeeping.settleMemory() }

    /// One pass of the loop from inside a busy script (Sources/Reactor/EventLoop+Busy.swift).
    func serveWhileBusy(skipping: Int) { self.loop.serveWhileBusy(skipping: CInt(skipping)) }

    /// FUNCTION LOAD / DELETE / FLUSH, into the log (Sources/Store/FunctionLibraries.swift).
    func persistFunctionLibrary(_ name: [UInt8], code: [UInt8]?) -> String? {
        do {
            // Noted as the batch's mutation: the reply waits until it is durable (KVConnection.answer).
            self.noteMutation?(try self.store.setFunctionLibrary(name, code: code))
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// `redis.log`: Redis's notice is the server's info, its verbose and debug are debug
    /// (Setting.swift maps `loglevel` the same way).
    func log(_ level: ScriptLogLevel, _ message: String) {
        let mapped: Logger.Level = switch level {
        case .debug, .verbose: .debug
        case .notice: .info
        case .warning: .warning
        }
        self.server.logger.log(level: mapped, "\(message)")
    }

    /// Ends the batch of commands one connection just answered (metrics on): its duration runs
    /// from the later of the read event's dispatch (``EventLoop/now``) and the previous batch's
    /// end, to now. One clock read per batch, none when the batch ran no command.
    func endCommandBatch() {
        guard let statistics = self.state.commandStatistics, statistics.hasBatch else { return }
        let now = SystemClock.monotonicNanoseconds()
        let start = max(self.loop.now, self.lastBatchEnd)
        self.lastBatchEnd = now
        statistics.endBatch(nanoseconds: now &- min(start, now))
    }
}
