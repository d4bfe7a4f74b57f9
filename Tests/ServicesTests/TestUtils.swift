// Helpers for the Services tests: an in-memory DataStore with injectable failures, a recording
// ServerControl, both over a real ServerState (TestServer), and a
// verifier that feeds the same requests whole, one byte at a time and concatenated, and checks
// that all three give the same replies (in the spirit of swift-nio's ByteToMessageDecoderVerifier).

@testable import Services
import Store
import Testing

/// An in-memory ``DataStore``. Set ``failure`` to make every mutation throw it.
final class InMemoryStorage: DataStore {
    var values: [[UInt8]: [UInt8]] = [:]
    /// Keys holding collections (of the types registered with ``CollectionTypes``).
    var collections: [[UInt8]: any CollectionValue] = [:]
    /// Absolute deadlines (Unix ms) of the keys that have one.
    var deadlines: [[UInt8]: Int64] = [:]
    /// The fake's clock for lazy expiry, Unix ms (the tests' fixed clock by default).
    var nowMilliseconds: Int64 = 1_700_000_000_000
    /// When set, every mutation throws this error and changes nothing.
    var failure: StoreError?
    private(set) var mutationCount = 0
    /// OBJECT IDLETIME's answers, set by a test (absent keys: nil; present ones default to 0).
    var idleSecondsByKey: [[UInt8]: Int] = [:]
    /// Atomic groups run (EXEC), and whether one is running (they never nest).
    private(set) var groups = 0
    private var inGroup = false

    init(_ initial: [String: String] = [:]) {
        for (key, value) in initial { self.values[Array(key.utf8)] = Array(value.utf8) }
    }

    var count: Int { self.values.count + self.collections.count }

    /// Drops `key` if its deadline is at or before `now` (lazy expiry).
    private func expireIfDue(_ key: [UInt8], now: Int64) {
        if let deadline = self.deadlines[key], deadline <= now {
            self.values.removeValue(forKey: key)
            self.collections.removeValue(forKey: key)
            self.deadlines.removeValue(forKey: key)
        }
    }

    /// Throws ``failure`` if set, else counts a mutation.
    private func mutate() throws(StoreError) {
        if let failure = self.failure { throw failure }
        self.mutationCount += 1
    }

    func withString(forKey key: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) -> Void) -> TypedLookup<Void> {
        self.expireIfDue(Array(key), now: self.nowMilliseconds)
        if let collection = self.collections[Array(key)] { return .wrongType(collection.type) }
        guard let value = self.values[Array(key)] else { return .missing }
        value.withUnsafeBytes(body)
        return .found(())
    }

    func set(borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>, deadline: WriteDeadline, now: Int64)
        throws(StoreError)
    {
        let key = Array(key)
        try self.mutate()
        self.expireIfDue(key, now: now)
        let kept = self.deadlines[key]
        self.collections.removeValue(forKey: key)
        self.values[key] = Array(value)
        switch deadline {
        case .cleared: self.deadlines[key] = nil
        case .at(let at): self.deadlines[key] = at
        case .kept, .keptEdited: self.deadlines[key] = kept
        }
        self.expireIfDue(key, now: now)
    }

    func removeValue(forKey key: [UInt8]) throws(StoreError) -> Bool {
        try self.mutate()
        self.expireIfDue(key, now: self.nowMilliseconds)
        self.deadlines.removeValue(forKey: key)
        let collection = self.collections.removeValue(forKey: key)
        return self.values.removeValue(forKey: key) != nil || collection != nil
    }

    func removeAll() throws(StoreError) {
        try self.mutate()
        self.values.removeAll()
        self.collections.removeAll()
        self.deadlines.removeAll()
    }

    func expiry(forKey key: [UInt8], now: Int64) -> KeyExpiry {
        self.expireIfDue(key, now: now)
        guard self.values[key] != nil || self.collections[key] != nil else { return .missing }
        return self.deadlines[key].map { .at(milliseconds: $0) } ?? .never
    }

    func expire(_ key: [UInt8], at deadline: Int64?, now: Int64) throws(StoreError) -> Bool {
        if let failure = self.failure { throw failure }
        self.expireIfDue(key, now: now)
        guard self.values[key] != nil || self.collections[key] != nil, deadline != nil || self.deadlines[key] != nil else {
            return false
        }
        try self.mutate()
        self.deadlines[key] = deadline
        self.expireIfDue(key, now: now)
        return true
    }

    func randomKey(now: Int64) -> [UInt8]? { self.allKeys.sorted { $0.lexicographicallyPrecedes($1) }.first }

    private var allKeys: [[UInt8]] { Array(self.values.keys) + Array(self.collections.keys) }

    func scan(cursor: UInt64, count: Int, pattern: [UInt8]?, type: ValueType?, now: Int64) -> (cursor: UInt64, keys: [[UInt8]]) {
        let all = self.sortedKeys(matching: pattern ?? Array("*".utf8)).filter { type == nil || self.type(of: $0) == type }
        let start = min(Int(cursor), all.count)
        let end = min(start + count, all.count)
        return (end == all.count ? 0 : UInt64(end), Array(all[start..<end]))
    }

    private func sortedKeys(matching pattern: [UInt8]) -> [[UInt8]] {
        self.allKeys.filter { Glob.matches(pattern: pattern, $0) }.sorted { $0.lexicographicallyPrecedes($1) }
    }

    private func type(of key: [UInt8]) -> ValueType? {
        self.values[key] != nil ? .string : self.collections[key]?.type
    }

    func inspect(_ key: [UInt8], now: Int64) -> KeyFacts? {
        self.expireIfDue(key, now: now)
        if let value = self.values[key] {
            return KeyFacts(type: .string, encoding: value.count <= 44 ? "embstr" : "raw",
                            idleSeconds: self.idleSecondsByKey[key] ?? 0, usedBytes: value.count + key.count + 64)
        }
        guard let object = self.collections[key] else { return nil }
        return KeyFacts(type: object.type, encoding: object.encoding, idleSeconds: self.idleSecondsByKey[key] ?? 0,
                        usedBytes: object.usedBytes + key.count + 64)
    }

    func collection(forKey key: [UInt8], type: ValueType, now: Int64) -> TypedLookup<any CollectionValue> {
        self.expireIfDue(key, now: now)
        if self.values[key] != nil { return .wrongType(.string) }
        guard let object = self.collections[key] else { return .missing }
        guard object.type == type else { return .wrongType(object.type) }
        return .found(object)
    }

    func apply(_ operation: ElementOperation, position: Int64, _ element: Element, to key: [UInt8], type: ValueType,
               now: Int64) throws(StoreError) -> ElementWrite {
        if let failure = self.failure { throw failure }
        self.expireIfDue(key, now: now)
        if self.values[key] != nil { return .wrongType(.string) }
        if let object = self.collections[key], object.type != type { return .wrongType(object.type) }
        guard let object = self.collections[key] ?? CollectionTypes.makeEmpty(type) else {
            preconditionFailure("no collection type registered for \(type)")
        }
        var inverse = ElementInverse(recording: true)
        let changed = object.apply(operation, position: position, element, inverse: &inverse)
        guard changed else { return .unchanged }
        self.mutationCount += 1
        let replaced = operation == .add && inverse.operation == .add
        if object.count == 0 {
            self.collections.removeValue(forKey: key)
            self.deadlines.removeValue(forKey: key)
            return .changed(sequence: UInt64(self.mutationCount), keyRemoved: true, replaced: replaced)
        }
        self.collections[key] = object
        return .changed(sequence: UInt64(self.mutationCount), keyRemoved: false, replaced: replaced)
    }

    func setCollection(_ object: any CollectionValue, forKey key: [UInt8], deadline: Int64?, now: Int64)
        throws(StoreError)
    {
        try self.mutate()
        self.values.removeValue(forKey: key)
        self.deadlines[key] = nil
        if object.count == 0 {
            self.collections.removeValue(forKey: key)
        } else {
            self.collections[key] = object
            self.deadlines[key] = deadline
        }
    }

    func relocate(_ source: [UInt8], to destination: [UInt8], copying: Bool, now: Int64) throws(StoreError) -> Bool {
        self.expireIfDue(source, now: now)
        guard self.values[source] != nil || self.collections[source] != nil else { return false }
        try self.mutate()
        let value = self.values[source]
        let object = self.collections[source].map { copying ? $0.copy() : $0 }
        let deadline = self.deadlines[source]
        if !copying {
            self.values[source] = nil
            self.collections[source] = nil
            self.deadlines[source] = nil
        }
        self.values[destination] = value
        self.collections[destination] = object
        self.deadlines[destination] = deadline
        return true
    }

    func atomically(_ body: () -> Void) {
        if self.inGroup { return body() }  // joins the open group, as the server's store does
        self.inGroup = true
        self.groups += 1
        body()
        self.inGroup = false
    }
}

/// A ``ServerControl`` that records what it was asked. Past the memory limit while
/// ``outOfMemory`` is set.
final class FakeControl: ServerControl {
    /// CONFIG SET maxmemory changes the state's figure, as the server's does.
    private let state: ServerState
    private let data: InMemoryStorage
    var fsyncPolicy = "always"
    var idleTimeoutSeconds = 300
    var outOfMemory = false
    /// The byte counts ``makeRoom(forBytes:)`` was asked for, in order.
    private(set) var roomRequests: [Int] = []
    private(set) var settles = 0
    private(set) var compactionRequests = 0
    private(set) var shutdowns: [Bool?] = []

    init(state: ServerState, data: InMemoryStorage) {
        self.state = state
        self.data = data
    }

    func facts() -> ServerFacts {
        var facts = ServerFacts()
        facts.keys = self.data.count
        facts.totalCommandsProcessed = self.state.commandsProcessed
        facts.extra = self.statistics()
        return facts
    }

    func statistics() -> [(name: String, value: String)] {
        [("keys", String(self.data.count)), ("mutations", String(self.data.mutationCount))]
    }

    func configuration() -> [(name: String, value: String)] { [("save", ""), ("appendonly", "yes"), ("databases", "1")] }

    func apply(_ change: ConfigChange) -> String? {
        switch change {
        case .fsyncPolicy(let policy): self.fsyncPolicy = policy
        case .idleTimeout(let seconds): self.idleTimeoutSeconds = seconds
        case .memoryLimit(let bytes, let policy):
            if let bytes { self.state.maxMemoryBytes = bytes }
            if let policy { self.state.evictionPolicy = policy }
        }
        return nil
    }

    func resetStatistics() { self.state.commandsProcessed = 0 }

    func requestCompaction(replyWhenDone: Bool) -> CompactionRequest {
        self.compactionRequests += 1
        return self.compactionRequests == 1 ? .started : .alreadyRunning
    }

    func shutdown(save: Bool?) { self.shutdowns.append(save) }

    func makeRoom(forBytes bytes: Int) -> Bool {
        self.roomRequests.append(bytes)
        return !self.outOfMemory
    }

    func settleMemory() { self.settles += 1 }
}

/// What a test session runs against: the fake data store and control over a real ``ServerState``.
final class TestServer {
    let data: InMemoryStorage
    let state: ServerState
    let control: FakeControl
    let context: CommandContext

    init(_ initial: [String: String] = [:], commandStatistics: CommandStatistics? = nil) {
        self.data = InMemoryStorage(initial)
        self.state = ServerState(commandStatistics: commandStatistics)
        self.control = FakeControl(state: self.state, data: self.data)
        self.context = CommandContext(store: self.data, state: self.state, control: self.control)
    }

    subscript(key: String) -> String? {
        self.data.values[Array(key.utf8)].map { String(decoding: $0, as: UTF8.self) }
    }
}

/// The shape shared by the kv protocol machines, so one verifier drives them all.
protocol ByteService {
    mutating func receive(_ bytes: UnsafeRawBufferPointer)
    mutating func process(context: CommandContext, output: inout [UInt8], outputLimit: Int) -> ProcessResult
}



extension ByteService {
    mutating func receive(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { self.receive($0) }
    }

    mutating func receive(_ text: String) {
        self.receive(Array(text.utf8))
    }

    /// Processes until the service wants more input or closes, draining output as it fills.
    mutating func drain(storage: TestServer, outputLimit: Int = .max) -> (output: [UInt8], result: ProcessResult) {
        var collected: [UInt8] = []
        var output: [UInt8] = []
        while true {
            let result = self.process(context: storage.context, output: &output, outputLimit: outputLimit)
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
    storage: TestServer,
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
    storage makeStorage: () -> TestServer = { TestServer() },
    outputLimit: Int = .max,
    sourceLocation: SourceLocation = #_sourceLocation
) -> [TestServer] {
    var stores: [TestServer] = []
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
