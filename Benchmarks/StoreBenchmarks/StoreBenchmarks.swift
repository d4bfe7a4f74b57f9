// Hot paths of the durable store: set/get on the map with log-record encoding into the buffer,
// and one write(2) of a group of records (the per-iteration cost under --fsync no/everysec).

import Benchmark
import Glibc
import Store

func temporaryDirectory() -> String {
    var template = Array("/tmp/reactord-bench-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

let keys: [[UInt8]] = (0..<10_000).map { Array("key:\($0)".utf8) }
let value = Array("value-of-sixteen".utf8)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration.maxDuration = .seconds(2)
    Benchmark.defaultConfiguration.metrics = [.throughput, .wallClock, .mallocCountTotal]

    Benchmark("Store: 1000 sets + one log write (fsync no)") { benchmark in
        let directory = temporaryDirectory()
        let store = try DurableStore(configuration: .init(directory: directory, fsync: .no))
        var k = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<1000 {
                blackHole(try store.set(value, forKey: keys[k % keys.count]))
                k += 1
            }
            blackHole(store.writeBuffered())
        }
        benchmark.stopMeasurement()  // close() compacts and fsyncs: not what is measured here
        try store.close()
    }

    Benchmark("Store: 1000 gets") { benchmark in
        let directory = temporaryDirectory()
        let store = try DurableStore(configuration: .init(directory: directory, fsync: .no))
        for key in keys { _ = try store.set(value, forKey: key) }
        _ = store.writeBuffered()
        var k = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<1000 {
                blackHole(store.value(forKey: keys[k % keys.count]))
                k += 1
            }
        }
        benchmark.stopMeasurement()  // close() compacts and fsyncs: not what is measured here
        try store.close()
    }
}
