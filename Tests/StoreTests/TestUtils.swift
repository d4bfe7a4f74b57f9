// Helpers for the Store tests: whole-file reads and writes, a logger that
// remembers what it was told, and a StoreIO whose failures a test switches on and off.

import Glibc
import Logging
import Synchronization
import Testing
// withTemporaryDirectory, fileSize and ManualClock, for every file of this target.
@_exported import TestSupport

@testable import Store

/// The whole file, or nil when it does not exist.
func readFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var result: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        precondition(n >= 0, "read failed")
        if n == 0 { return result }
        result.append(contentsOf: chunk[..<n])
    }
}

/// Replaces the file's contents.
func writeFile(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    precondition(fd >= 0, "open failed")
    defer { close(fd) }
    let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    precondition(n == bytes.count, "short write")
}

func fileExists(_ path: String) -> Bool {
    access(path, F_OK) == 0
}

/// What a loop iteration and the sync it starts do under `always`, expecting both to succeed:
/// writes the buffered records, then runs the group-commit sync that must follow to completion.
func writeAndSync(_ store: DurableStore, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(store.writeBuffered() == .ok, sourceLocation: sourceLocation)
    guard let job = store.makeSyncJob() else {
        Issue.record("no sync job after writing records", sourceLocation: sourceLocation)
        return
    }
    #expect(store.completeSync(job, result: job.run()) == .ok, sourceLocation: sourceLocation)
}

/// Starts a compaction as the server does: when the store holds the rotation for a sync of the records
/// written and not yet synced (under every policy), runs that sync, then asks again.
func startCompaction(_ store: DurableStore, sourceLocation: SourceLocation = #_sourceLocation) throws -> CompactionJob? {
    if let job = try store.beginCompaction() { return job }
    guard case .holdingForRotation = store.journal.state, let sync = store.makeSyncJob() else { return nil }
    #expect(store.completeSync(sync, result: sync.run()) == .ok, sourceLocation: sourceLocation)
    return try store.beginCompaction()
}

/// The entry names in a directory, sorted.
func listing(_ path: String) -> [String] {
    ((try? StoreIO.system.listDirectory(path)) ?? []).sorted()
}

func bytes(_ text: String) -> [UInt8] {
    Array(text.utf8)
}

/// Every key and value in the store under the given keys (missing ones as nil).
func contents(_ store: DurableStore, keys: [String]) -> [String: String?] {
    var result: [String: String?] = [:]
    for key in keys {
        result.updateValue(store.value(forKey: bytes(key)).map { String(decoding: $0, as: UTF8.self) }, forKey: key)
    }
    return result
}

/// A logger whose messages (with level) a test can inspect.
final class RecordingLog: Sendable {
    let entries = Mutex<[(level: Logger.Level, message: String)]>([])

    var logger: Logger {
        Logger(label: "test.store") { _ in Handler(log: self) }
    }

    var warnings: [String] {
        self.entries.withLock { $0.filter { $0.level == .warning }.map(\.message) }
    }

    struct Handler: LogHandler {
        let log: RecordingLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            self.log.entries.withLock { $0.append((event.level, "\(event.message)")) }
        }
    }
}

/// Switches for injected failures, shared between a test and the closures of its StoreIO.
final class Faults: Sendable {
    /// write(2) fails with this errno (after writing `partialWriteBytes` of the first call, if > 0).
    let writeError = Mutex<CInt?>(nil)
    let partialWriteBytes = Mutex<Int>(0)
    /// fdatasync(2) fails with this errno.
    let fdatasyncError = Mutex<CInt?>(nil)
    /// fsync(2) (a directory's, a snapshot's) fails with this errno.
    let fsyncError = Mutex<CInt?>(nil)
    /// fdatasync(2) and fsync(2) calls so far, failed ones included.
    let fdatasyncCalls = Mutex<Int>(0)
    let fsyncCalls = Mutex<Int>(0)
    /// The compaction step at which to "crash" (the hook throws).
    let crashAt = Mutex<CompactionStep?>(nil)

    /// The real syscalls, with the switches above in front.
    var io: StoreIO {
        var io = StoreIO.system
        let system = StoreIO.system
        io.write = { (fd: CInt, buffer: UnsafeRawBufferPointer) throws(Errno) -> Int in
            if let code = self.writeError.withLock({ $0 }) {
                let partial = self.partialWriteBytes.withLock { value in
                    defer { value = 0 }
                    return value
                }
                if partial > 0 {
                    return try system.write(fd, UnsafeRawBufferPointer(rebasing: buffer[..<min(partial, buffer.count)]))
                }
                throw Errno(code)
            }
            return try system.write(fd, buffer)
        }
        io.fdatasync = { (fd: CInt) throws(Errno) in
            self.fdatasyncCalls.withLock { $0 += 1 }
            if let code = self.fdatasyncError.withLock({ $0 }) {
                throw Errno(code)
            }
            try system.fdatasync(fd)
        }
        io.fsync = { (fd: CInt) throws(Errno) in
            self.fsyncCalls.withLock { $0 += 1 }
            if let code = self.fsyncError.withLock({ $0 }) {
                throw Errno(code)
            }
            try system.fsync(fd)
        }
        io.compactionStep = { (step: CompactionStep) throws(StoreError) in
            if self.crashAt.withLock({ $0 }) == step {
                throw StoreError(operation: "simulated crash at", path: step.rawValue)
            }
        }
        return io
    }
}

extension DurableStore.Configuration {
    static func test(_ directory: String, fsync: FsyncPolicy = .everysec) -> Self {
        Self(directory: directory, fsync: fsync, compactionThresholdBytes: 1 << 20)
    }
}

extension WriteOutcome {
    var failedSequences: ClosedRange<UInt64>? {
        if case .failed(let sequences, _) = self { sequences } else { nil }
    }
}

/// The keyspace's contents as a dictionary (values only).
func dictionary(_ keyspace: Keyspace) -> [[UInt8]: [UInt8]] {
    var result: [[UInt8]: [UInt8]] = [:]
    for index in 0..<keyspace.count {
        result[[UInt8](keyspace.key(at: index))] = [UInt8](keyspace.value(at: index))
    }
    return result
}

/// A keyspace holding `map`.
func makeKeyspace(_ map: [[UInt8]: [UInt8]]) -> Keyspace {
    let keyspace = Keyspace()
    for (key, value) in map { keyspace.set(key, value) }
    return keyspace
}

/// Opens the store again in the same directory right after the previous one went away (a crash or a
/// clean stop within the test). The directory's lock belongs to the open file description, and a child
/// process another test is spawning at that moment holds a copy of the descriptor until its exec closes
/// it (close-on-exec): for that window the new store would find the lock taken. Retries, for a bounded
/// time, only that one refusal; any other error is thrown at once.
func reopenStore(configuration: DurableStore.Configuration, io: StoreIO = .system) throws -> DurableStore {
    let deadline = ContinuousClock.now + .seconds(10)
    while true {
        let result = Result { () throws(StoreError) -> DurableStore in
            try DurableStore(configuration: configuration, io: io)
        }
        guard case .failure(let error) = result, error.errno?.code == EWOULDBLOCK,
              ContinuousClock.now < deadline else {
            return try result.get()
        }
        _ = poll(nil, 0, 2)
    }
}
