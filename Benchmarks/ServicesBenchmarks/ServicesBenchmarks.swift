// Hot paths of the protocol state machines: line framing, the kv line protocol, RESP parsing and
// dispatch, each over a pipelined batch the way a busy connection delivers it.

import Benchmark
import LineFraming
import Services
import Store

/// An in-memory store, so the benchmark measures the protocol, not persistence. Only GET's and
/// SET's paths matter here; the rest answers plainly (no deadlines, no log, no groups).
final class MemoryStore: DataStore {
    var map: [[UInt8]: [UInt8]] = [:]
    var count: Int { self.map.count }
    func withValue(forKey key: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        guard let value = self.map[Array(key)] else { return false }
        value.withUnsafeBytes(body)
        return true
    }
    func set(borrowing value: ArraySlice<UInt8>, forKey key: ArraySlice<UInt8>) throws(StoreError) {
        self.map[Array(key)] = Array(value)
    }
    func set(_ value: [UInt8], forKey key: [UInt8], deadline: Int64?, now: Int64) throws(StoreError) {
        if let deadline, deadline <= now { self.map.removeValue(forKey: key) } else { self.map[key] = value }
    }
    func removeValue(forKey key: [UInt8]) throws(StoreError) -> Bool { self.map.removeValue(forKey: key) != nil }
    func removeAll() throws(StoreError) { self.map.removeAll() }
    func expiry(forKey key: [UInt8], now: Int64) -> KeyExpiry { self.map[key] == nil ? .missing : .never }
    func expire(_ key: [UInt8], at deadline: Int64?, now: Int64) throws(StoreError) -> Bool { false }
    func randomKey(now: Int64) -> [UInt8]? { self.map.keys.first }
    func scan(cursor: UInt64, count: Int, pattern: [UInt8]?, now: Int64) -> (cursor: UInt64, keys: [[UInt8]]) { (0, []) }
    func keys(matching pattern: [UInt8], now: Int64) -> [[UInt8]] { [] }
    func idleSeconds(forKey key: [UInt8], now: Int64) -> Int? { self.map[key] == nil ? nil : 0 }
    func usedBytes(forKey key: [UInt8], now: Int64) -> Int? { self.map[key].map { $0.count + key.count } }
    func atomically(_ body: () -> Void) { body() }
}

/// A server that does nothing to itself: the benchmarked commands never call it (no memory limit
/// is set, so SET asks no room).
final class IdleControl: ServerControl {
    func facts() -> ServerFacts { ServerFacts() }
    func statistics() -> [(name: String, value: String)] { [] }
    func configuration() -> [(name: String, value: String)] { [] }
    func apply(_ change: ConfigChange) -> String? { nil }
    func resetStatistics() {}
    func requestCompaction(replyWhenDone: Bool) -> CompactionRequest { .started }
    func shutdown(save: Bool?) {}
    func makeRoom(forBytes bytes: Int) -> Bool { true }
    func settleMemory() {}
}

/// A session's context over a fresh in-memory store, optionally holding the 100 keys the GET
/// batches read.
func makeContext(preloaded: Bool) -> CommandContext {
    let store = MemoryStore()
    if preloaded {
        for i in 0..<100 { try? store.set(Array("value-of-sixteen".utf8), forKey: Array("key:\(i)".utf8)) }
    }
    return CommandContext(store: store, state: ServerState(), control: IdleControl())
}

func batch(_ count: Int, _ make: (Int) -> String) -> [UInt8] {
    var bytes: [UInt8] = []
    for i in 0..<count { bytes.append(contentsOf: make(i).utf8) }
    return bytes
}

let lineBatch = batch(1000) { "get key:\($0 % 100)\r\n" }
let lineSetBatch = batch(1000) { "set key:\($0 % 100) value-of-sixteen\n" }
let respGetBatch = batch(1000) { i in
    let key = "key:\(i % 100)"
    return "*2\r\n$3\r\nGET\r\n$\(key.utf8.count)\r\n\(key)\r\n"
}
let respSetBatch = batch(1000) { i in
    let key = "key:\(i % 100)"
    return "*3\r\n$3\r\nSET\r\n$\(key.utf8.count)\r\n\(key)\r\n$16\r\nvalue-of-sixteen\r\n"
}

/// Runs `batch` once through a fresh session and stops the suite unless every request got the
/// reply it should, so no benchmark measures an error path by mistake.
func check(_ wireProtocol: KVSession.WireProtocol, _ batch: [UInt8], preloaded: Bool, expect reply: String) {
    var session = KVSession(speaking: wireProtocol, now: { (0, 0) })
    batch.withUnsafeBytes { session.receive($0) }
    var output: [UInt8] = []
    let result = session.process(context: makeContext(preloaded: preloaded), output: &output, outputLimit: 1 << 20)
    precondition(result == .needMoreData && output == Array(String(repeating: reply, count: 1000).utf8),
                 "\(wireProtocol) batch: unexpected replies \(String(decoding: output.prefix(200), as: UTF8.self))")
}

let benchmarks: @Sendable () -> Void = {
    check(.line, lineSetBatch, preloaded: false, expect: "OK\n")
    check(.line, lineBatch, preloaded: true, expect: "value-of-sixteen\n")
    check(.resp, respSetBatch, preloaded: false, expect: "+OK\r\n")
    check(.resp, respGetBatch, preloaded: true, expect: "$16\r\nvalue-of-sixteen\r\n")

    Benchmark.defaultConfiguration.maxDuration = .seconds(2)
    Benchmark.defaultConfiguration.metrics = [.throughput, .wallClock, .mallocCountTotal]

    Benchmark("LineFramer: 1000 pipelined lines") { benchmark in
        for _ in benchmark.scaledIterations {
            var framer = LineFramer(maxLineBytes: 65536)
            framer.append(contentsOf: lineBatch)
            var lines = 0
            while case .line = framer.next() { lines += 1 }
            blackHole(lines)
        }
    }

    Benchmark("KV line protocol: 1000 pipelined SETs") { benchmark in
        let context = makeContext(preloaded: false)
        var output: [UInt8] = []
        output.reserveCapacity(1 << 16)
        for _ in benchmark.scaledIterations {
            var service = KVSession(speaking: .line, now: { (0, 0) })
            lineSetBatch.withUnsafeBytes { service.receive($0) }
            output.removeAll(keepingCapacity: true)
            blackHole(service.process(context: context, output: &output, outputLimit: 1 << 20))
        }
    }

    Benchmark("KV line protocol: 1000 pipelined GETs") { benchmark in
        let context = makeContext(preloaded: true)
        var output: [UInt8] = []
        output.reserveCapacity(1 << 16)
        for _ in benchmark.scaledIterations {
            var service = KVSession(speaking: .line, now: { (0, 0) })
            lineBatch.withUnsafeBytes { service.receive($0) }
            output.removeAll(keepingCapacity: true)
            blackHole(service.process(context: context, output: &output, outputLimit: 1 << 20))
        }
    }

    Benchmark("RESP: 1000 pipelined SETs") { benchmark in
        let context = makeContext(preloaded: false)
        var output: [UInt8] = []
        output.reserveCapacity(1 << 16)
        for _ in benchmark.scaledIterations {
            var service = KVSession(speaking: .resp, now: { (0, 0) })
            respSetBatch.withUnsafeBytes { service.receive($0) }
            output.removeAll(keepingCapacity: true)
            blackHole(service.process(context: context, output: &output, outputLimit: 1 << 20))
        }
    }

    Benchmark("RESP: 1000 pipelined GETs") { benchmark in
        let context = makeContext(preloaded: true)
        var output: [UInt8] = []
        output.reserveCapacity(1 << 16)
        for _ in benchmark.scaledIterations {
            var service = KVSession(speaking: .resp, now: { (0, 0) })
            respGetBatch.withUnsafeBytes { service.receive($0) }
            output.removeAll(keepingCapacity: true)
            blackHole(service.process(context: context, output: &output, outputLimit: 1 << 20))
        }
    }
}
