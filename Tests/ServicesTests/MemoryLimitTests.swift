// The memory limit as the command path sees it: which commands are refused with OOM past the
// limit (and which keep working), MULTI/EXEC as Redis 7 treats them, CONFIG SET of the limit and
// policy, and a RESP bulk announced past the room left refused before its body is buffered.

@testable import Services
import Testing

@Suite struct MemoryLimitTests {
    static let oom = "-OOM command not allowed when used memory > 'maxmemory'.\r\n"

    static func pastTheLimit() -> TestServer {
        let storage = TestServer(["k": "v", "n": "1"])
        storage.state.maxMemoryBytes = 1000
        storage.control.outOfMemory = true
        return storage
    }

    @Test func writesThatMayAddMemoryAreRefusedWhileReadsDeleteAndExpireWork() {
        let stores = verify(
            makeRESP,
            [resp("SET", "a", "b"), resp("INCR", "n"), resp("APPEND", "k", "x"), resp("GET", "k"), resp("EXISTS", "k"),
             resp("EXPIRE", "k", "100"), resp("TTL", "k"), resp("DEL", "n"), resp("DBSIZE")],
            expect: b(Self.oom + Self.oom + Self.oom + "$1\r\nv\r\n:1\r\n:1\r\n:100\r\n:1\r\n:1\r\n"),
            storage: Self.pastTheLimit)
        for storage in stores {
            #expect(storage["a"] == nil && storage["k"] == "v" && storage["n"] == nil)
            // SET, INCR and APPEND asked for room; GET, EXISTS, EXPIRE, TTL, DEL, DBSIZE did not.
            #expect(storage.control.roomRequests.count == 3)
        }
    }

    @Test func theLineProtocolSaysOutOfMemory() {
        verify(
            { KVSession(speaking: .line, now: fixedClock) }, [b("set a b\n"), b("get k\n"), b("del k\n")],
            expect: b("ERR out of memory\nv\nOK\n"), storage: Self.pastTheLimit)
    }

    @Test func underTheLimitWritesAskForRoomForWhatTheyAddThenSettle() {
        let stores = verify(
            makeRESP, [resp("SET", "key", "value")], expect: b("+OK\r\n"),
            storage: {
                let storage = TestServer()
                storage.state.maxMemoryBytes = 1 << 20
                return storage
            })
        for storage in stores {
            #expect(storage.control.roomRequests == [3 + 5 + 2 * 96], "key and value bytes plus an entry's cost each")
            #expect(storage.control.settles == 1)
        }
    }

    @Test func withoutALimitNothingIsAsked() {
        let stores = verify(makeRESP, [resp("SET", "key", "value")], expect: b("+OK\r\n"))
        for storage in stores { #expect(storage.control.roomRequests.isEmpty && storage.control.settles == 0) }
    }

    /// Redis 7.0 (checked against redis-server 7.0.15): past the limit every command inside MULTI is
    /// refused, reads included, and the transaction is flagged.
    @Test func insideMultiEveryQueuedCommandIsRefusedAndExecAborts() {
        verify(
            makeRESP, [resp("MULTI"), resp("GET", "k"), resp("SET", "x", "y"), resp("EXEC"), resp("GET", "k")],
            expect: b("+OK\r\n" + Self.oom + Self.oom
                + "-EXECABORT Transaction discarded because of previous errors.\r\n$1\r\nv\r\n"),
            storage: Self.pastTheLimit)
    }

    @Test func execPastTheLimitIsRefusedWhenItsQueueMayAddMemory() {
        let storage = TestServer(["k": "v"])
        storage.state.maxMemoryBytes = 1000
        var session = makeRESP()
        session.receive(resp("MULTI") + resp("SET", "x", "y") + resp("GET", "k"))
        #expect(Printable(session.drain(storage: storage).output) == Printable(b("+OK\r\n+QUEUED\r\n+QUEUED\r\n")))
        storage.control.outOfMemory = true
        session.receive(resp("EXEC") + resp("EXEC"))
        let reply = "-EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'.\r\n"
        #expect(Printable(session.drain(storage: storage).output) == Printable(b(reply + "-ERR EXEC without MULTI\r\n")))
        #expect(storage["x"] == nil)
        // A queue of reads runs however full memory is.
        storage.control.outOfMemory = false
        session.receive(resp("MULTI") + resp("GET", "k"))
        _ = session.drain(storage: storage)
        storage.control.outOfMemory = true
        session.receive(resp("EXEC"))
        #expect(Printable(session.drain(storage: storage).output) == Printable(b("*1\r\n$1\r\nv\r\n")))
    }

    @Test func configSetChangesTheLimitAndPolicyWithRedisUnits() {
        let storage = TestServer()
        var session = makeRESP()
        session.receive(resp("CONFIG", "SET", "maxmemory", "64mb", "maxmemory-policy", "ALLKEYS-LRU"))
        #expect(Printable(session.drain(storage: storage).output) == Printable(b("+OK\r\n")))
        #expect(storage.state.maxMemoryBytes == 64 << 20 && storage.state.evictionPolicy == .allKeysLRU)
        session.receive(resp("CONFIG", "SET", "maxmemory", "1GB"))
        _ = session.drain(storage: storage)
        #expect(storage.state.maxMemoryBytes == 1 << 30)
        session.receive(resp("CONFIG", "SET", "maxmemory", "3k"))
        _ = session.drain(storage: storage)
        #expect(storage.state.maxMemoryBytes == 3000)
        for bad in ["1.5gb", "-1", "12x", "", "99999999999999999999"] {
            session.receive(resp("CONFIG", "SET", "maxmemory", bad))
            #expect(Printable(session.drain(storage: storage).output) == Printable(b(
                "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value\r\n")))
        }
        session.receive(resp("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"))
        #expect(Printable(session.drain(storage: storage).output) == Printable(b(
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the "
                + "following: volatile-lru, volatile-random, volatile-ttl, allkeys-lru, allkeys-random, noeviction\r\n")))
        #expect(storage.state.maxMemoryBytes == 3000 && storage.state.evictionPolicy == .allKeysLRU, "a refused SET changes nothing")
    }

    @Test func aBulkAnnouncedPastTheRoomLeftIsRefusedBeforeItsBodyIsBuffered() {
        let room = MemoryRoom()
        room.bytesLeft = { 100_000 }
        let storage = TestServer()
        // Just under the room: waits for its body as usual.
        var fits = KVSession(speaking: .resp, now: fixedClock, memoryRoom: room)
        fits.receive(b("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$99999\r\n"))
        #expect(fits.drain(storage: storage).result == .needMoreData)
        // Past it: OOM at once, then the close; nothing of the claimed length was reserved.
        var refused = KVSession(speaking: .resp, now: fixedClock, memoryRoom: room)
        refused.receive(b("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200000\r\n"))
        let (output, result) = refused.drain(storage: storage)
        #expect(Printable(output) == Printable(b(Self.oom)))
        #expect(result == .close)
        #expect(refused.parserCapacity < 4096)
        // Small bulks never ask (the command check covers them).
        room.bytesLeft = { 0 }
        verify({ KVSession(speaking: .resp, now: fixedClock, memoryRoom: room) }, [resp("SET", "k", "v")], expect: b("+OK\r\n"))
    }
}
