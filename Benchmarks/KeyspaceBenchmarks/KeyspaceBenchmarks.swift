// The keyspace table on its own and the store's expiry step: lookup, insert, delete, growth through
// incremental resizes, and one active-expiry step over keys that all expired together. Sizes follow the
// issue's redis-benchmark runs: 16-byte keys (`key:000000000000`) with 16-byte values.

import Benchmark
import Glibc
import Store

let keyCount = 100_000
let tableKeys: [[UInt8]] = (0..<keyCount).map { index in
    var text = String(index)
    text = String(repeating: "0", count: 12 - text.count) + text
    return Array("key:\(text)".utf8)
}
let sixteenBytes = Array("value-of-sixteen".utf8)

func filledKeyspace(_ count: Int) -> Keyspace {
    let keyspace = Keyspace()
    for key in tableKeys.prefix(count) { keyspace.set(key, sixteenBytes) }
    while keyspace.rehash(steps: 1000) {}
    return keyspace
}

/// Resident set size from /proc/self/statm (second field, in pages).
func residentBytes() -> Int {
    let fd = open("/proc/self/statm", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 128)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { return 0 }
    let fields = buffer[..<count].split(separator: UInt8(ascii: " "))
    guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

func scratchDirectory() -> String {
    var template = Array("/tmp/reactord-bench-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration.maxDuration = .seconds(2)
    Benchmark.defaultConfiguration.metrics = [.throughput, .wallClock, .instructions, .mallocCountTotal]

    Benchmark("Keyspace: 1000 lookups in 100k keys") { benchmark in
        let keyspace = filledKeyspace(keyCount)
        var k = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<1000 {
                tableKeys[k].withUnsafeBytes { key in
                    if let index = keyspace.find(key) { blackHole(keyspace.value(at: index).count) }
                }
                k = k == keyCount - 1 ? 0 : k + 1
            }
        }
    }

    Benchmark("Keyspace: 1000 overwrites in 100k keys") { benchmark in
        let keyspace = filledKeyspace(keyCount)
        var k = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<1000 {
                tableKeys[k].withUnsafeBytes { key in
                    sixteenBytes.withUnsafeBytes { value in blackHole(keyspace.set(key, value)) }
                }
                k = k == keyCount - 1 ? 0 : k + 1
            }
        }
    }

    Benchmark("Keyspace: insert 100k keys into an empty table (grows by incremental resizes)",
              configuration: .init(maxIterations: 20)) { benchmark in
        for _ in benchmark.scaledIterations {
            let keyspace = Keyspace()
            for key in tableKeys {
                key.withUnsafeBytes { key in
                    sixteenBytes.withUnsafeBytes { value in blackHole(keyspace.set(key, value)) }
                }
            }
            blackHole(keyspace)
        }
    }

    Benchmark("Keyspace: delete 100k keys (shrinks by incremental resizes)",
              configuration: .init(maxIterations: 20)) { benchmark in
        let keyspace = filledKeyspace(keyCount)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for key in tableKeys {
                key.withUnsafeBytes { blackHole(keyspace.remove($0)) }
            }
        }
        benchmark.stopMeasurement()
    }

    Benchmark("Keyspace: 1000 inserts across a doubling (65,536 -> 131,072 buckets)",
              configuration: .init(maxIterations: 50)) { benchmark in
        // The table is full at 65,536 keys: the next insert starts a resize, and these 1000 inserts each
        // move two buckets. Compare with the overwrites above: no request pays for the whole table.
        let keyspace = filledKeyspace(65_536)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for key in tableKeys[65_536..<66_536] {
                key.withUnsafeBytes { key in
                    sixteenBytes.withUnsafeBytes { value in blackHole(keyspace.set(key, value)) }
                }
            }
        }
        benchmark.stopMeasurement()
        blackHole(keyspace.isResizing)
    }

    Benchmark("Keyspace: memory for 1,000,000 keys of 16 bytes with 16-byte values",
              configuration: .init(metrics: [.custom("rss_bytes_per_key"), .custom("used_bytes_per_key")],
                                   maxIterations: 3)) { benchmark in
        // Redis 7.0 on this machine: ~113 B of RSS per key for the same keys (issue 10); the target is <= 90.
        let keys = (0..<1_000_000).map { index -> [UInt8] in
            var text = String(index)
            text = String(repeating: "0", count: 12 - text.count) + text
            return Array("key:\(text)".utf8)
        }
        for _ in benchmark.scaledIterations {
            let before = residentBytes()
            let keyspace = Keyspace()
            for key in keys { keyspace.set(key, sixteenBytes) }
            while keyspace.rehash(steps: 1000) {}
            benchmark.measurement(.custom("rss_bytes_per_key"), (residentBytes() - before) / keys.count)
            benchmark.measurement(.custom("used_bytes_per_key"), keyspace.usedBytes / keys.count)
            blackHole(keyspace)
        }
    }

    Benchmark("Store: open (recover) 1,000,000 keys from database.txt",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal, .peakMemoryResident],
                                   maxIterations: 5)) { benchmark in
        // The restart target: <= 0.5 s for 1,000,000 keys (Redis's RDB load: 0.73 s, 950,000 keys).
        let directory = scratchDirectory()
        do {
            let store = try DurableStore(configuration: .init(directory: directory, fsync: .no))
            for index in 0..<1_000_000 {
                _ = try store.set(sixteenBytes, forKey: tableKeys[index % keyCount] + Array(String(index / keyCount).utf8))
            }
            try store.close()  // compacts into database.txt
        }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let store = try DurableStore(configuration: .init(directory: directory, fsync: .no))
            blackHole(store.count)
            benchmark.stopMeasurement()
            try store.close()
        }
    }

    Benchmark("Store: expire cycles, budget 1000, until 100k keys expired together are gone",
              configuration: .init(maxIterations: 20)) { benchmark in
        let directory = scratchDirectory()
        let now: Int64 = 1_800_000_000_000
        let store = try DurableStore(configuration: .init(directory: directory, fsync: .no, clock: { now }))
        for key in tableKeys {
            _ = try store.set(sixteenBytes, forKey: key, deadline: now + 1, now: now)
        }
        _ = store.writeBuffered()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            // Every step logs its deletes; the loop runs until nothing is left, as the timer would.
            while store.expireCycle(now: now + 2, budget: 1000).expired > 0 {
                blackHole(store.writeBuffered())
            }
        }
        benchmark.stopMeasurement()
        try store.close()
    }
}
