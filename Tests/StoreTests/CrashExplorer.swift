// The crash-state explorer's driver and checker. A workload drives a DurableStore through the recording
// StoreIO (CrashRecorder.swift) as the server's loop would (mutations, one write per iteration, group-
// commit syncs under `always`, the `everysec` timer's syncs, compactions with their rotation), keeping
// a simple model of every state the acknowledged history went through. Then, for every prefix of the
// recorded operations and several draws of what a power cut keeps (CrashStates.swift), it writes the
// files into a scratch directory, opens a store there, and checks it against the history:
// - it opens without help (no refusal);
// - its contents are one of the history's states, never one that holds a write answered with an error
//   (no value that was never written, no later write without an earlier one: a prefix of history);
// - that state is at or after every mutation the store had reported synced (under `always` every
//   acknowledged write; under `everysec` all but the last second's).

import Glibc
import Logging
import Synchronization

@testable import Store

/// A key's value in the model.
enum ModelValue: Hashable {
    case string([UInt8])
    case set(Set<[UInt8]>)
    case list([[UInt8]])
}

typealias ModelState = [String: ModelValue]

/// Drives a store the way the server's loop does, recording the history of acknowledged states.
final class CrashDriver {
    struct Entry {
        /// The newest mutation of this state (a group's last).
        let sequence: UInt64
        let state: ModelState
        /// The recorded-operation count when the store answered it with an error (rolled back), if it did.
        var failedAt: Int?
    }

    let recorder: CrashRecorder
    let store: DurableStore
    let policy: FsyncPolicy
    let now: Int64 = 1_000
    private(set) var model: ModelState = [:]
    /// The states the history went through, oldest first, starting with the empty one.
    private(set) var history: [Entry] = [Entry(sequence: 0, state: [:])]
    private(set) var keys: Set<String> = []
    private var inGroup = false

    init(directory: String, policy: FsyncPolicy) throws {
        self.recorder = CrashRecorder(directory: directory)
        self.policy = policy
        self.store = try DurableStore(
            configuration: DurableStore.Configuration(directory: directory, fsync: policy, clock: { 1_000 }),
            io: self.recorder.io)
    }

    // MARK: Mutations

    func set(_ key: String, _ value: [UInt8]) throws {
        guard let sequence = self.refusable({ () throws(StoreError) in try self.store.set(value, forKey: bytes(key)) })
        else { return }
        self.changed(key, .string(value), sequence: sequence)
    }

    func set(_ key: String, _ value: String) throws { try self.set(key, bytes(value)) }

    func delete(_ key: String) throws {
        guard let sequence = self.refusable({ () throws(StoreError) in
            try self.store.removeValue(forKey: bytes(key), now: self.now)
        }) ?? nil else { return }
        self.changed(key, nil, sequence: sequence)
    }

    func add(member: String, toSet key: String) throws {
        let write = self.refusable { () throws(StoreError) in
            try self.store.apply(ElementEffect(.add, bytes(member)),
                                 to: bytes(key), type: .set, now: self.now)
        }
        guard case .changed(let sequence, _, _)? = write else { return }
        var members: Set<[UInt8]> = if case .set(let old)? = self.model[key] { old } else { [] }
        members.insert(bytes(member))
        self.changed(key, .set(members), sequence: sequence)
    }

    func remove(member: String, fromSet key: String) throws {
        let write = self.refusable { () throws(StoreError) in
            try self.store.apply(ElementEffect(.remove, bytes(member)),
                                 to: bytes(key), type: .set, now: self.now)
        }
        guard case .changed(let sequence, let removed, _)? = write else { return }
        guard case .set(var members)? = self.model[key] else { preconditionFailure("model out of step") }
        members.remove(bytes(member))
        self.changed(key, removed ? nil : .set(members), sequence: sequence)
    }

    func push(_ item: String, toList key: String) throws {
        let write = self.refusable { () throws(StoreError) in
            try self.store.apply(ElementEffect(.add, position: -1, bytes(item)),
                                 to: bytes(key), type: .list, now: self.now)
        }
        guard case .changed(let sequence, _, _)? = write else { return }
        var items: [[UInt8]] = if case .list(let old)? = self.model[key] { old } else { [] }
        items.append(bytes(item))
        self.changed(key, .list(items), sequence: sequence)
    }

    func setWhole(_ key: String, members: [String]) throws {
        guard let sequence = self.refusable({ () throws(StoreError) in
            try self.store.setCollection(TestTypes.set(members.map(bytes)), forKey: bytes(key), deadline: nil, now: self.now)
        }) else { return }
        self.changed(key, .set(Set(members.map(bytes))), sequence: sequence)
    }

    /// A MULTI/EXEC: one atomic group, one state in the history.
    func transaction(_ body: () throws -> Void) throws {
        self.store.beginAtomicGroup()
        self.inGroup = true
        defer { self.inGroup = false }
        try body()
        self.store.endAtomicGroup()
        self.inGroup = false
        if self.history.last!.sequence != self.store.lastSequence {
            self.history.append(Entry(sequence: self.store.lastSequence, state: self.model))
        }
    }

    /// Writes the store refused with an error (nothing changed, nothing logged).
    private(set) var refusedWrites = 0

    /// The store's answer, or nil when it refused the write with an error.
    private func refusable<T>(_ call: () throws(StoreError) -> T) -> T? {
        do {
            return try call()
        } catch {
            self.refusedWrites += 1
            return nil
        }
    }

    private func changed(_ key: String, _ value: ModelValue?, sequence: UInt64) {
        self.keys.insert(key)
        self.model[key] = value
        if !self.inGroup { self.history.append(Entry(sequence: sequence, state: self.model)) }
    }

    // MARK: The loop's I/O

    /// The end of a loop iteration: one write of the buffered records; under `always` the group-commit
    /// sync that follows, under `everysec` one when `sync` says the timer fired (under `no` none).
    func iterate(sync: Bool = false) {
        self.settle(self.store.writeBuffered())
        if self.policy == .always || (sync && self.policy == .everysec) { self.sync() }
        self.mark()
    }

    /// One SyncJob, run to completion.
    func sync() {
        guard let job = self.store.makeSyncJob() else { return }
        self.settle(self.store.completeSync(job, result: job.run()))
        self.mark()
    }

    /// A compaction as the server runs one: its start (rotating the log) between syncs, retried after a
    /// sync when the store asks for one first; `meanwhile` runs while the job would be on its thread
    /// (writes to the new log, the `everysec` timer); then the job and its end.
    func compact(meanwhile: () throws -> Void = {}) throws {
        var job = try self.store.beginCompaction()
        var attempts = 0
        while job == nil, attempts < 3 {
            self.sync()
            job = try self.store.beginCompaction()
            attempts += 1
        }
        guard let job else { preconditionFailure("the compaction never started") }
        self.mark()
        try meanwhile()
        self.store.finishCompaction(job, result: job.run())
        self.mark()
    }

    /// A clean stop: afterwards every write the store accepted must survive anything.
    func close() throws {
        try self.store.close()
        self.recorder.mark(.acknowledged(self.store.lastSequence))
        self.recorder.mark(.synced(self.store.lastSequence))
    }

    private func settle(_ outcome: WriteOutcome) {
        guard case .failed(let sequences, _) = outcome else { return }
        let at = self.recorder.operations.count
        for index in self.history.indices where sequences.contains(self.history[index].sequence) {
            self.history[index].failedAt = at
        }
        self.model = self.history.last { $0.failedAt == nil }!.state
    }

    private func mark() {
        self.recorder.mark(.acknowledged(self.store.durableSequence))
        self.recorder.mark(.synced(self.store.journal.sequences.synced))
    }
}

/// What exploring one recorded run found, per model.
struct CrashTally: CustomStringConvertible {
    var model: CrashModel
    /// Distinct crash states opened.
    var states = 0
    var refusals = 0
    /// States missing a write the store had acknowledged under `always`, or reported synced.
    var lostWrites = 0
    /// States that are not a state of the history (a later write without an earlier one, or a value never written).
    var prefixViolations = 0
    /// States holding a write that was answered with an error.
    var errorWritesPresent = 0
    /// Torn tails recovery dropped with a warning.
    var tornTailsDropped = 0
    var examples: [String] = []

    var failures: Int { self.refusals + self.lostWrites + self.prefixViolations + self.errorWritesPresent }

    var description: String {
        "\(self.model): \(self.states) states, \(self.refusals) refusals, \(self.lostWrites) with synced writes lost, "
            + "\(self.prefixViolations) prefix violations, \(self.errorWritesPresent) with errored writes, "
            + "\(self.tornTailsDropped) torn tails dropped"
    }

    mutating func note(_ example: String) {
        if self.examples.count < 5 { self.examples.append(example) }
    }
}

enum CrashExplorer {
    /// Explores every crash point of `driver`'s recorded run under `model`: at each, the state with nothing
    /// unsynced kept, the one with everything kept, and `draws` random ones (seeded by `seed`).
    static func explore(_ driver: CrashDriver, model: CrashModel, draws: Int, seed: UInt64, scratch: String) -> CrashTally {
        TestTypes.register()
        let operations = driver.recorder.operations
        var tally = CrashTally(model: model)
        var seen = Set<[String: [UInt8]]>()
        var random = SeededRandom(seed: seed)
        var acknowledged: UInt64 = 0
        var synced: UInt64 = 0
        for end in 0...operations.count {
            if end > 0 {
                switch operations[end - 1] {
                case .acknowledged(let sequence): acknowledged = sequence
                case .synced(let sequence): synced = sequence
                default: break
                }
                // Marks change nothing on disk: the states after them were explored with the operation before.
                if !operations[end - 1].changesDisk && end < operations.count && !operations[end].changesDisk { continue }
            }
            let required = driver.policy == .always ? max(acknowledged, synced) : synced
            var choices: [CrashChoice] = [.nothing, .everything]
            choices += Array(repeating: .random, count: draws)
            for choice in choices {
                let files = CrashStates.build(operations[..<end], model: model, choice: choice, random: &random)
                guard seen.insert(files).inserted else { continue }
                tally.states += 1
                Self.check(files, at: end, required: required, driver: driver, scratch: scratch, tally: &tally)
            }
        }
        return tally
    }

    private static func check(
        _ files: [String: [UInt8]], at end: Int, required: UInt64, driver: CrashDriver, scratch: String,
        tally: inout CrashTally
    ) {
        // Each state in a directory of its own: a store of an earlier state that has not let go of its
        // directory lock yet (its close failed, and its release waits for its last reference) must
        // not make this one look refused.
        let scratch = scratch + "/state-\(tally.states)"
        mkdir(scratch, 0o755)
        defer {
            for name in listing(scratch) { unlink(scratch + "/" + name) }
            rmdir(scratch)
        }
        for (name, content) in files { writeFile(scratch + "/" + name, content) }
        let log = RecordingLog()
        let opened = Result { () throws(StoreError) -> DurableStore in
            try DurableStore(configuration: DurableStore.Configuration(directory: scratch, fsync: driver.policy,
                                                                       clock: { 1_000 }),
                             logger: log.logger)
        }
        let store: DurableStore
        switch opened {
        case .failure(let error):
            tally.refusals += 1
            tally.note("crash after operation \(end) of \(files.keys.sorted()): refused: \(error)")
            return
        case .success(let opened):
            store = opened
        }
        defer { try? store.close(compacting: .never) }
        if log.warnings.contains(where: { $0.contains("torn") }) { tally.tornTailsDropped += 1 }
        let state = Self.contents(store, keys: driver.keys, now: driver.now)
        let matches = driver.history.indices.filter { driver.history[$0].state == state }
        let live = matches.filter { driver.history[$0].failedAt.map { $0 > end } ?? true }
        if live.isEmpty {
            if matches.isEmpty {
                tally.prefixViolations += 1
                tally.note("crash after operation \(end) of \(files.keys.sorted()): \(state) is no state of the history")
            } else {
                tally.errorWritesPresent += 1
                tally.note("crash after operation \(end): \(state) holds a write answered with an error")
            }
            return
        }
        let newest = driver.history[live.max()!].sequence
        if newest < required {
            // The store may have skipped sequence numbers (rolled back): compare with the newest state the
            // history holds at or below `required`.
            let needed = driver.history.last { $0.sequence <= required && ($0.failedAt.map { $0 > end } ?? true) }!
            if needed.state != state {
                tally.lostWrites += 1
                tally.note("crash after operation \(end) of \(files.keys.sorted()): state of sequence \(newest), "
                           + "but \(required) was reported durable")
            }
        }
    }

    /// The recovered store's contents under `keys`, as the model has them.
    static func contents(_ store: DurableStore, keys: Set<String>, now: Int64) -> ModelState {
        var state: ModelState = [:]
        for key in keys {
            let raw = bytes(key)
            switch store.type(ofKey: raw, now: now) {
            case nil: break
            case .string?: state[key] = .string(store.value(forKey: raw, now: now)!)
            case .set?:
                if case .found(let members) = raw.withUnsafeBytes({
                    store.withCollection(forKey: $0, type: .set, now: now) { Set(($0 as! SetValue).members) }
                }) { state[key] = .set(members) }
            case .list?:
                if case .found(let items) = raw.withUnsafeBytes({
                    store.withCollection(forKey: $0, type: .list, now: now) { ListValueTests.items($0 as! ListValue) }
                }) { state[key] = .list(items) }
            case let other?:
                preconditionFailure("no model for \(other)")
            }
        }
        return state
    }
}
