// Numbered databases against Redis where one connection's script cannot show it: WATCH is per
// database (a write to the same name elsewhere changes nothing watched; SWAPDB and MOVE touch what
// they change), SWAPDB serves clients blocked on keys that now exist, and the server's own events
// (expiry, eviction) name the database the key was in. The same steps run against a redis-server
// started here and against reactord, every frame each connection receives compared byte for byte.

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct DatabaseDifferentialTests {
    typealias Pair = RedisDifferentialTests.Pair

    /// Runs `script` against `port` on `connections` fresh connections (after FLUSHALL) and returns
    /// what each step received, in order, as text.
    static func transcript(port: Int, connections: Int, _ script: ([RawRESPConnection], inout [String]) throws -> Void) throws
        -> [String]
    {
        let clients = try (0..<connections).map { _ in try RawRESPConnection(port: port) }
        _ = try clients[0].call("FLUSHALL")
        var lines: [String] = []
        try script(clients, &lines)
        for client in clients { client.client.close() }
        return lines
    }

    /// Runs `script` on both servers and expects the same transcript.
    static func expectSame(_ name: String, connections: Int, pair: Pair,
                           _ script: ([RawRESPConnection], inout [String]) throws -> Void) throws {
        let ours = try Self.transcript(port: pair.server.kvPort, connections: connections, script)
        let theirs = try Self.transcript(port: pair.oracle.port, connections: connections, script)
        #expect(ours == theirs, "\(name): reactord \(ours) vs redis \(theirs)")
        #expect(!ours.isEmpty)
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// Waits until the server reports `count` blocked clients (polled, with a deadline).
    static func waitBlocked(_ client: RawRESPConnection, _ count: Int) throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !Self.text(try client.call("INFO", "clients")).contains("blocked_clients:\(count)\r\n") {
            guard ContinuousClock.now < deadline else { throw TestFailure("never \(count) blocked clients") }
            _ = poll(nil, 0, 5)
        }
    }

    @Test func watchIsPerDatabase() throws {
        let pair = try Pair()
        defer { pair.stop() }
        try Self.expectSame("watch", connections: 2, pair: pair) { c, log in
            let (a, b) = (c[0], c[1])
            func step(_ connection: RawRESPConnection, _ words: String...) throws {
                log.append(Self.text(try connection.call(words.map { Array($0.utf8) })))
            }
            // A write to the same name in database 0 leaves a watch in database 2 alone.
            try step(a, "SELECT", "2")
            try step(a, "SET", "w", "1")
            try step(a, "WATCH", "w")
            try step(b, "SET", "w", "9")
            try step(b, "DEL", "w")
            try step(a, "MULTI")
            try step(a, "GET", "w")
            try step(a, "EXEC")
            // The same name in database 2 aborts it.
            try step(a, "WATCH", "w")
            try step(b, "SELECT", "2")
            try step(b, "INCR", "w")
            try step(a, "MULTI")
            try step(a, "GET", "w")
            try step(a, "EXEC")
            // FLUSHDB of another database leaves it; of its own, aborts it.
            try step(a, "WATCH", "w")
            try step(b, "SELECT", "0")
            try step(b, "SET", "w", "0")
            try step(b, "FLUSHDB")
            try step(a, "MULTI")
            try step(a, "EXEC")
            try step(a, "WATCH", "w")
            try step(b, "SELECT", "2")
            try step(b, "FLUSHDB")
            try step(a, "MULTI")
            try step(a, "EXEC")
            // SWAPDB of the watched database (the key is in the other one) aborts; of two others, not.
            try step(a, "WATCH", "w")
            try step(b, "SELECT", "5")
            try step(b, "SET", "w", "5")
            try step(b, "SWAPDB", "3", "4")
            try step(a, "MULTI")
            try step(a, "EXEC")
            try step(a, "WATCH", "w")
            try step(b, "SWAPDB", "2", "5")
            try step(a, "MULTI")
            try step(a, "GET", "w")
            try step(a, "EXEC")
            // MOVE into the watched database aborts; a watch on the moved key in its own database too.
            try step(a, "WATCH", "m")
            try step(b, "SELECT", "0")
            try step(b, "SET", "m", "1")
            try step(b, "MOVE", "m", "2")
            try step(a, "MULTI")
            try step(a, "GET", "m")
            try step(a, "EXEC")
            try step(a, "WATCH", "m")
            try step(b, "SELECT", "2")
            try step(b, "MOVE", "m", "7")
            try step(a, "MULTI")
            try step(a, "EXEC")
            try step(a, "WATCH", "k")
            try step(b, "SELECT", "0")
            try step(b, "SET", "k", "0")
            try step(b, "COPY", "k", "k", "DB", "3")
            try step(a, "MULTI")
            try step(a, "EXEC")
        }
    }

    @Test func swapdbServesClientsBlockedOnKeysThatNowExist() throws {
        let pair = try Pair()
        defer { pair.stop() }
        try Self.expectSame("swapdb wakes", connections: 3, pair: pair) { c, log in
            let (waiter, writer, other) = (c[0], c[1], c[2])
            log.append(Self.text(try waiter.call("SELECT", "1")))
            try waiter.client.send(RESPValue.command(["BLPOP", "q", "10"].map { Array($0.utf8) }))
            log.append(Self.text(try other.call("SELECT", "4")))
            try other.client.send(RESPValue.command(["BZPOPMIN", "z", "10"].map { Array($0.utf8) }))
            try Self.waitBlocked(writer, 2)
            log.append(Self.text(try writer.call("SELECT", "2")))
            log.append(Self.text(try writer.call("RPUSH", "q", "a", "b")))
            log.append(Self.text(try writer.call("SELECT", "5")))
            log.append(Self.text(try writer.call("ZADD", "z", "1", "m", "2", "n")))
            log.append(Self.text(try writer.call("SWAPDB", "1", "2")))
            log.append(Self.text(try waiter.reply()))
            // Databases 3 and 4 hold nothing: the waiter on database 4 stays; then z comes in.
            log.append(Self.text(try writer.call("SWAPDB", "3", "4")))
            log.append(Self.text(try writer.call("SWAPDB", "4", "5")))
            log.append(Self.text(try other.reply()))
            log.append(Self.text(try writer.call("SELECT", "1")))
            log.append(Self.text(try writer.call("LRANGE", "q", "0", "-1")))
            log.append(Self.text(try writer.call("SELECT", "4")))
            log.append(Self.text(try writer.call("ZRANGE", "z", "0", "-1")))
            log.append(Self.text(try writer.call("INFO", "keyspace")))
        }
    }

    /// Expiry and eviction in database 3 are announced on `__keyspace@3__` and `__keyevent@3__`.
    @Test func serverRaisedEventsNameTheirDatabase() throws {
        let pair = try Pair()
        defer { pair.stop() }
        try Self.expectSame("server events", connections: 2, pair: pair) { c, log in
            let (listener, writer) = (c[0], c[1])
            log.append(Self.text(try writer.call("CONFIG", "SET", "notify-keyspace-events", "KEA")))
            log.append(Self.text(try listener.call("PSUBSCRIBE", "__key*__:*")))
            log.append(Self.text(try writer.call("SELECT", "3")))
            /// Reads the listener's frames up to the one that holds `last`.
            func readThrough(_ last: String) throws {
                while true {
                    let frame = Self.text(try listener.reply())
                    log.append(frame)
                    if frame.contains(last) { return }
                }
            }
            log.append(Self.text(try writer.call("SET", "k", "v", "PX", "30")))
            try readThrough("__keyevent@3__:expire\r\n")
            // Active expiry takes it (nobody reads it): expired, in database 3.
            try readThrough("__keyevent@3__:expired")
            log.append(Self.text(try writer.call("SET", "e", "v")))
            try readThrough("__keyevent@3__:set")
            log.append(Self.text(try writer.call("CONFIG", "SET", "maxmemory-policy", "allkeys-random")))
            log.append(Self.text(try writer.call("CONFIG", "SET", "maxmemory", "1")))
            // The next write evicts `e` first (then is refused: nothing is left to evict).
            log.append(Self.text(try writer.call("SET", "f", "v")))
            try readThrough("__keyevent@3__:evicted")
            log.append(Self.text(try writer.call("CONFIG", "SET", "maxmemory", "0")))
            log.append(Self.text(try writer.call("CONFIG", "SET", "maxmemory-policy", "noeviction")))
            log.append(Self.text(try writer.call("CONFIG", "SET", "notify-keyspace-events", "")))
        }
    }
}
