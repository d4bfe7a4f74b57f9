// Helpers for the Services tests: an in-memory CommandContext with injectable failures, and a
// verifier that feeds the same requests whole, one byte at a time and concatenated, and checks
// that all three give the same replies (in the spirit of swift-nio's ByteToMessageDecoderVerifier).

@testable import Services
import Testing

/// An in-memory ``CommandContext``. Set ``failure`` to make every mutation throw it.
final class InMemoryStorage: CommandContext {
    var values: [[UInt8]: [UInt8]] = [:]
    /// Absolute deadlines (Unix ms) of the keys that have one.
    var deadlines: [[UInt8]: Int64] = [:]
    /// The fake's clock for lazy expiry, Unix ms (the tests' fixed clock by default).
    var nowMilliseconds: Int64 = 1_700_000_000_000
    /// When set, every mutation throws this error and changes nothing.
    var failure: StorageError?
    private(set) var mutationCount = 0
    /// Per-command counts, when a test wants them (nil: not counted, as with metrics off).
    var commandStatistics: CommandStatistics?

    init(_ initial: [String: String] = [:]) {
        for (key, value) in initial { self.values[Array(key.utf8)] = Array(value.utf8) }
    }

    var count: Int { self.values.count }

    /// Drops `key` if its deadline is at or before `now` (lazy expiry).
    private func expireIfDue(_ key: [UInt8], now: Int64) {
        if let deadline = self.deadlines[key], deadline <= now {
            self.values.removeValue(forKey: key)
            self.deadlines.removeValue(forKey: key)
        }
    }

    func value(forKey key: [UInt8]) -> [UInt8]? {
        self.expireIfDue(key, now: self.nowMilliseconds)
        return self.values[key]
    }

    func set(borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>) throws(StorageError) {
        try self.set(Array(value), forKey: Array(key))
    }

    func withValue(forKey key: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        guard let value = self.value(forKey: Array(key)) else { return false }
        value.withUnsafeBytes(body)
        return true
    }

    func set(_ value: [UInt8], forKey key: [UInt8]) throws(StorageError) {
        if let failure = self.failure { throw failure }
        self.mutationCount += 1
        self.values[key] = value
        self.deadlines.removeValue(forKey: key)
    }

    func removeValue(forKey key: [UInt8]) throws(StorageError) -> Bool {
        if let failure = self.failure { throw failure }
        self.expireIfDue(key, now: self.nowMilliseconds)
        self.mutationCount += 1
        self.deadlines.removeValue(forKey: key)
        return self.values.removeValue(forKey: key) != nil
    }

    func removeAll() throws(StorageError) {
        if let failure = self.failure { throw failure }
        self.mutationCount += 1
        self.values.removeAll()
        self.deadlines.removeAll()
    }

    func expiry(forKey key: [UInt8], now: Int64) -> KeyDeadline {
        self.expireIfDue(key, now: now)
        guard self.values[key] != nil else { return .missing }
        return self.deadlines[key].map { .at($0) } ?? .never
    }

    func set(_ value: [UInt8], forKey key: [UInt8], deadline: Int64?, now: Int64) throws(StorageError) {
        try self.set(value, forKey: key)
        if let deadline {
            self.deadlines[key] = deadline
            self.expireIfDue(key, now: now)
        }
    }

    func expire(_ key: [UInt8], at deadline: Int64, now: Int64) throws(StorageError) -> Bool {
        if let failure = self.failure { throw failure }
        self.expireIfDue(key, now: now)
        guard self.values[key] != nil else { return false }
        self.mutationCount += 1
        self.deadlines[key] = deadline
        self.expireIfDue(key, now: now)
        return true
    }

    func persist(_ key: [UInt8], now: Int64) throws(StorageError) -> Bool {
        if let failure = self.failure { throw failure }
        self.expireIfDue(key, now: now)
        guard self.deadlines.removeValue(forKey: key) != nil else { return false }
        self.mutationCount += 1
        return true
    }

    func randomKey(now: Int64) -> [UInt8]? { self.values.keys.sorted { $0.lexicographicallyPrecedes($1) }.first }

    func scan(cursor: UInt64, count: Int, pattern: [UInt8]?, now: Int64) -> (cursor: UInt64, keys: [[UInt8]]) {
        let all = self.keys(matching: pattern ?? Array("*".utf8), now: now)
        let start = min(Int(cursor), all.count)
        let end = min(start + count, all.count)
        return (end == all.count ? 0 : UInt64(end), Array(all[start..<end]))
    }

    func keys(matching pattern: [UInt8], now: Int64) -> [[UInt8]] {
        self.values.keys.filter { Glob.matches(pattern: pattern, $0) }.sorted { $0.lexicographicallyPrecedes($1) }
    }

    func usedBytes(forKey key: [UInt8], now: Int64) -> Int? { self.values[key].map { $0.count + key.count + 64 } }
    /// OBJECT IDLETIME's answers, set by a test (absent keys: nil; present ones default to 0).
    var idleSecondsByKey: [[UInt8]: Int] = [:]
    func idleSeconds(forKey key: [UInt8], now: Int64) -> Int? {
        self.expireIfDue(key, now: now)
        return self.values[key] == nil ? nil : self.idleSecondsByKey[key] ?? 0
    }

    func statistics() -> [(name: String, value: String)] {
        [("keys", String(self.values.count)), ("mutations", String(self.mutationCount))]
    }

    let watches = WatchRegistry()
    /// Nesting of atomic groups seen (EXEC); never above 1.
    private(set) var groupDepth = 0
    private(set) var groups = 0

    func beginAtomicGroup() {
        precondition(self.groupDepth == 0, "atomic groups do not nest")
        self.groupDepth += 1
        self.groups += 1
    }

    func endAtomicGroup() { self.groupDepth -= 1 }

    let clients = ClientRegistry()
    let slowLog = SlowLog()
    var password: [UInt8]?

    func setPassword(_ password: [UInt8]?) { self.password = password }
    var fsyncPolicy = "always"
    func setFsyncPolicy(_ policy: String) -> String? {
        self.fsyncPolicy = policy
        return nil
    }
    var idleTimeoutSeconds = 300
    func setIdleTimeout(seconds: Int) { self.idleTimeoutSeconds = seconds }
    private(set) var commandsCounted = 0
    private(set) var compactionRequests = 0
    private(set) var shutdowns: [Bool?] = []

    func facts() -> ServerFacts {
        var facts = ServerFacts()
        facts.keys = self.values.count
        facts.totalCommandsProcessed = self.commandsCounted
        facts.extra = self.statistics()
        return facts
    }

    func configuration() -> [(name: String, value: String)] { [("save", ""), ("appendonly", "yes"), ("databases", "1")] }

    func requestCompaction(replyWhenDone: Bool) -> CompactionRequest {
        self.compactionRequests += 1
        return self.compactionRequests == 1 ? .started : .alreadyRunning
    }

    func shutdown(save: Bool?) { self.shutdowns.append(save) }

    func resetStatistics() { self.commandsCounted = 0 }

    func countCommands(_ count: Int) { self.commandsCounted += count }

    subscript(key: String) -> String? {
        self.values[Array(key.utf8)].map { String(decoding: $0, as: UTF8.self) }
    }

    // Memory limit: the fake is past the limit while `outOfMemory` is set; it records what it was asked.
    var maxMemoryBytes = 0
    var outOfMemory = false
    var policy = "noeviction"
    /// The byte counts ``makeRoom(forBytes:)`` was asked for, in order.
    private(set) var roomRequests: [Int] = []
    private(set) var settles = 0

    func makeRoom(forBytes bytes: Int) -> Bool {
        self.roomRequests.append(bytes)
        return !self.outOfMemory
    }

    func settleMemory() { self.settles += 1 }

    func setMemoryLimit(bytes: Int?, policy: [UInt8]?) -> Bool {
        if let bytes { self.maxMemoryBytes = bytes }
        if let policy { self.policy = String(decoding: policy, as: UTF8.self) }
        return true
    }
}

/// The shape shared by the kv protocol machines, so one verifier drives them all.
protocol ByteService {
    mutating func receive(_ bytes: UnsafeRawBufferPointer)
    mutating func process(context: any CommandContext, output: inout [UInt8], outputLimit: Int) -> ProcessResult
}



extension ByteService {
    mutating func receive(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { self.receive($0) }
    }

    mutating func receive(_ text: String) {
        self.receive(Array(text.utf8))
    }

    /// Processes until the service wants more input or closes, draining output as it fills.
    mutating func drain(storage: some CommandContext, outputLimit: Int = .max) -> (output: [UInt8], result: ProcessResult) {
        var collected: [UInt8] = []
        var output: [UInt8] = []
        while true {
            let result = self.process(context: storage, output: &output, outputLimit: outputLimit)
            collected += output
            output.removeAll(keepingCapacity: true)
            if result != .outputFull { return (collected, result) }
        }
    }
}

/// How requests reach the service.
enum Feeding: CaseIterable, CustomStringConvertible {
    case whole, bytewise, concatenated
    var description: String {
        switch self {
        case .whole: "each request whole"
        case .bytewise: "one byte at a time"
        case .concatenated: "all requests in one buffer"
        }
    }
}

/// Feeds `requests` to a fresh service in the given way, stopping at `.close`.
func run<S: ByteService>(
    _ make: () -> S,
    _ requests: [[UInt8]],
    storage: some CommandContext,
    feeding: Feeding,
    outputLimit: Int = .max
) -> (output: [UInt8], result: ProcessResult) {
    var service = make()
    var output: [UInt8] = []
    var result = ProcessResult.needMoreData
    let chunks: [[UInt8]]
    switch feeding {
    case .whole: chunks = requests
    case .bytewise: chunks = requests.flatMap { $0.map { [$0] } }
    case .concatenated: chunks = [requests.flatMap { $0 }]
    }
    for chunk in chunks {
        service.receive(chunk)
        let step = service.drain(storage: storage, outputLimit: outputLimit)
        output += step.output
        result = step.result
        if result == .close { break }
    }
    return (output, result)
}

/// Checks that `requests` give `expected` and `result`, fed whole, bytewise and concatenated,
/// each time against a fresh store from `makeStorage`. Returns the stores for further checks.
@discardableResult
func verify<S: ByteService>(
    _ make: () -> S,
    _ requests: [[UInt8]],
    expect expected: [UInt8],
    result expectedResult: ProcessResult = .needMoreData,
    storage makeStorage: () -> InMemoryStorage = { InMemoryStorage() },
    outputLimit: Int = .max,
    sourceLocation: SourceLocation = #_sourceLocation
) -> [InMemoryStorage] {
    var stores: [InMemoryStorage] = []
    for feeding in Feeding.allCases {
        let storage = makeStorage()
        let (output, result) = run(make, requests, storage: storage, feeding: feeding, outputLimit: outputLimit)
        #expect(
            Printable(output) == Printable(expected), "fed \(feeding)", sourceLocation: sourceLocation)
        #expect(result == expectedResult, "fed \(feeding)", sourceLocation: sourceLocation)
        stores.append(storage)
    }
    return stores
}

/// Bytes shown with control characters escaped, so a failed expectation reads well.
struct Printable: Equatable, CustomStringConvertible {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var description: String {
        var text = "\""
        for byte in self.bytes.prefix(2000) {
            switch byte {
            case UInt8(ascii: "\r"): text += "\\r"
            case UInt8(ascii: "\n"): text += "\\n"
            case UInt8(ascii: "\t"): text += "\\t"
            case 0x20..<0x7f: text += String(UnicodeScalar(byte))
            default: text += "\\x" + String(byte, radix: 16)
            }
        }
        if self.bytes.count > 2000 { text += "…(\(self.bytes.count) bytes)" }
        return text + "\""
    }
}

/// `text` as bytes.
func b(_ text: String) -> [UInt8] { Array(text.utf8) }
