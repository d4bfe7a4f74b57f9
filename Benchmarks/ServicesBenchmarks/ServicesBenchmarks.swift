// Hot paths of the protocol state machines: line framing, the kv line protocol, RESP parsing and
// dispatch, each over a pipelined batch the way a busy connection delivers it.

import Benchmark
import Services

/// An in-memory store, so the benchmark measures the protocol, not persistence.
final class MemoryStorage: KeyValueStorage {
    var map: [[UInt8]: [UInt8]] = [:]
    var count: Int { self.map.count }
    func value(forKey key: [UInt8]) -> [UInt8]? { self.map[key] }
    func set(_ value: [UInt8], forKey key: [UInt8]) throws(StorageError) { self.map[key] = value }
    func removeValue(forKey key: [UInt8]) throws(StorageError) -> Bool { self.map.removeValue(forKey: key) != nil }
    func removeAll() throws(StorageError) { self.map.removeAll() }
    func statistics() -> [(name: String, value: String)] { [("keys", String(self.map.count))] }
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

let benchmarks: @Sendable () -> Void = {
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
        let storage = MemoryStorage()
        var output: [UInt8] = []
        output.reserveCapacity(1 << 16)
        for _ in benchmark.scaledIterations {
            var service = KVLineService()
            lineSetBatch.withUnsafeBytes { service.receive($0) }
            output.removeAll(keepingCapacity: true)
            blackHole(service.process(storage: storage, output: &output, outputLimit: 1 << 20))
        }
    }

    Benchmark("KV line protocol: 1000 pipelined GETs") { benchmark in
        let storage = MemoryStorage()
        for i in 0..<100 { try? storage.set(Array("value-of-sixteen".utf8), forKey: Array("key:\(i)".utf8)) }
        var output: [UInt8] = []
        output.reserveCapacity(1 << 16)
        for _ in benchmark.scaledIterations {
            var service = KVLineService()
            lineBatch.withUnsafeBytes { service.receive($0) }
            output.removeAll(keepingCapacity: true)
            blackHole(service.process(storage: storage, output: &output, outputLimit: 1 << 20))
        }
    }

    Benchmark("RESP: 1000 pipelined SETs") { benchmark in
        let storage = MemoryStorage()
        var output: [UInt8] = []
        output.reserveCapacity(1 << 16)
        for _ in benchmark.scaledIterations {
            var service = RESPService(now: { (0, 0) })
            respSetBatch.withUnsafeBytes { service.receive($0) }
            output.removeAll(keepingCapacity: true)
            blackHole(service.process(storage: storage, output: &output, outputLimit: 1 << 20))
        }
    }

    Benchmark("RESP: 1000 pipelined GETs") { benchmark in
        let storage = MemoryStorage()
        for i in 0..<100 { try? storage.set(Array("value-of-sixteen".utf8), forKey: Array("key:\(i)".utf8)) }
        var output: [UInt8] = []
        output.reserveCapacity(1 << 16)
        for _ in benchmark.scaledIterations {
            var service = RESPService(now: { (0, 0) })
            respGetBatch.withUnsafeBytes { service.receive($0) }
            output.removeAll(keepingCapacity: true)
            blackHole(service.process(storage: storage, output: &output, outputLimit: 1 << 20))
        }
    }
}
