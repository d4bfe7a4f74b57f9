// A relative expiry is counted from the same reading of the clock that the write's "already past"
// test uses. With two readings, a millisecond boundary between them made a deadline 1 ms ahead
// look past: the key was dropped at once, unannounced, where Redis stores it and later publishes
// `expired`.

@testable import Services
import Synchronization
import Testing

@Suite struct ExpiryClockTests {
    /// A clock that moves on by a millisecond at every reading: the worst case of a boundary
    /// falling between any two readings of one command.
    static func tickingClock() -> () -> (seconds: Int, microseconds: Int) {
        let readings = Mutex(0)
        return {
            let n = readings.withLock { value in
                value += 1
                return value
            }
            return (1_700_000_000 + n / 1000, (n % 1000) * 1000)
        }
    }

    @Test(arguments: [
        ["SET", "k", "v", "PX", "1"], ["SET", "k", "v", "PX", "1", "GET"], ["SET", "k", "v", "EX", "1"],
        ["PSETEX", "k", "1", "v"], ["SETEX", "k", "1", "v"],
    ])
    func aKeyGivenOneMillisecondIsStored(command: [String]) {
        let storage = TestServer()
        var request = Array("*\(command.count)\r\n".utf8)
        for word in command { request += Array("$\(word.utf8.count)\r\n\(word)\r\n".utf8) }
        _ = run({ KVSession(speaking: .resp, now: Self.tickingClock()) }, [request], storage: storage, feeding: .whole)
        #expect(storage["k"] == "v", "\(command) dropped the key it was given to store")
        #expect(storage.data.deadlines[Array("k".utf8)] != nil)
    }

    @Test func getexWithOneMillisecondKeepsTheKey() {
        let storage = TestServer(["k": "v"])
        let request = RESPValueEncoder.command("GETEX", "k", "PX", "1")
        let (output, _) = run({ KVSession(speaking: .resp, now: Self.tickingClock()) }, [request], storage: storage,
                              feeding: .whole)
        #expect(output == Array("$1\r\nv\r\n".utf8))
        #expect(storage["k"] == "v", "GETEX PX 1 dropped the key")
    }
}
