// The differential test: the same command sequences sent to a redis-server started here (7.0,
// the Redis whose behaviour the kv port matches) and to reactord, in RESP2 and in RESP3, replies
// compared byte for byte (time-dependent ones by property, ReplyComparison). Hand-written edge
// cases per command, then seeded random sequences over the command list with a small keyspace so
// that commands collide. A difference prints the sequence, the command and both replies.

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct RedisDifferentialTests {
    /// Both servers, fresh.
    final class Pair {
        let oracle: RedisOracle
        let dir: TemporaryDirectory
        let server: InProcessServer

        init(password: String? = nil) throws {
            self.oracle = try RedisOracle(password.map { ["--requirepass", $0] } ?? [])
            self.dir = try TemporaryDirectory()
            self.server = try InProcessServer.kv(dataDirectory: self.dir.path, fsync: "no") {
                $0.requirePassword = password
            }
        }

        func stop() {
            self.server.stop()
            self.oracle.stop()
            self.dir.remove()
        }
    }

    /// What a run compared.
    struct Tally {
        var sequences = 0
        var replies = 0
        var commands: Set<String> = []
        var differences: [String] = []
    }

    /// Runs `sequence` against both servers on fresh connections in `protocolVersion`, after
    /// FLUSHALL. Stops the sequence at its first difference (the states have diverged).
    static func run(_ name: String, _ sequence: [[[UInt8]]], protocolVersion: Int, on pair: Pair, tally: inout Tally,
                    fresh: Bool = true) throws {
        let ours = try RawRESPConnection(port: pair.server.kvPort)
        let theirs = try RawRESPConnection(port: pair.oracle.port)
        for connection in [ours, theirs] where fresh {
            _ = try connection.call("FLUSHALL")
            if protocolVersion == 3 { _ = try connection.call("HELLO", "3") }
        }
        tally.sequences += 1
        for arguments in sequence {
            let mine = try ours.call(arguments)
            let redis = try theirs.call(arguments)
            tally.replies += 1
            tally.commands.insert(String(decoding: arguments[0], as: UTF8.self).uppercased())
            let rule = ReplyComparison.rule(for: arguments)
            if !rule.matches(mine, redis) {
                let shown = arguments.map { String(decoding: $0, as: UTF8.self).debugDescription }.joined(separator: " ")
                tally.differences.append("""
                [\(name), RESP\(protocolVersion)] \(shown)
                    reactord: \(String(decoding: mine, as: UTF8.self).debugDescription)
                    redis:    \(String(decoding: redis, as: UTF8.self).debugDescription)
                """)
                return
            }
        }
    }

    /// Splits each line at spaces; `'…'` quotes one argument (spaces kept, `''` is empty).
    static func words(_ lines: [String]) -> [[[UInt8]]] {
        lines.map { line in
            var arguments: [[UInt8]] = []
            var current: [UInt8]?
            var quoted = false
            for byte in line.utf8 {
                if byte == UInt8(ascii: "'") {
                    quoted.toggle()
                    current = current ?? []
                } else if byte == UInt8(ascii: " ") && !quoted {
                    if let word = current { arguments.append(word) }
                    current = nil
                } else {
                    current = (current ?? []) + [byte]
                }
            }
            if let word = current { arguments.append(word) }
            return arguments
        }
    }

    /// Hand-written edge cases, one sequence per command family.
    static let handWritten: [(String, [[[UInt8]]])] = [
        ("get-set", words([
            "GET k", "SET k v", "GET k", "SET k w NX", "SET k w XX", "GET k", "SET k v NX XX", "SET k v XX NX",
            "SET k v FOO", "SET k", "GET", "GET k extra", "SETNX k x", "SETNX k2 x", "GET k2",
        ])),
        ("del-exists", words([
            "MSET a 1 b 2 c 3", "EXISTS a b c d a", "DEL a d", "DEL a", "EXISTS a", "MGET a b c d", "MSET a",
            "MSET a 1 b", "DBSIZE",
        ])),
        ("incr", words([
            "INCR n", "INCR n", "SET n 9223372036854775806", "INCR n", "INCR n", "SET n 010", "INCR n",
            "SET n -0", "INCR n", "SET n ' 1'", "INCR n", "SET n abc", "INCR n", "SET n -9223372036854775808", "INCR n",
        ])),
        ("connection", words([
            "PING", "PING hi", "PING a b", "ECHO x", "ECHO", "SELECT 0", "SELECT x",
            "NOSUCH a b", "CLIENT GETNAME", "CLIENT SETNAME n1", "CLIENT GETNAME", "CLIENT SETNAME",
            "CLIENT NOSUCH", "COMMAND NOSUCH", "CONFIG NOSUCH", "HELLO x", "HELLO 4", "HELLO 1",
        ])),
        ("strings", words([
            "GETSET k v", "GETSET k w", "GET k", "GETDEL k", "GETDEL k", "MSETNX a 1 b 2", "MSETNX b 3 c 4",
            "MGET a b c", "MSETNX a", "MSETNX a 1 b", "APPEND s ab", "APPEND s cd", "STRLEN s", "STRLEN nope",
            "GETRANGE s 0 -1", "GETRANGE s 1 2", "GETRANGE s -3 -1", "GETRANGE s -1 -3", "GETRANGE s 5 10",
            "GETRANGE s -100 100", "GETRANGE s 2 1", "GETRANGE nope 0 -1", "GETRANGE s x 1", "GETRANGE s 0 y",
            "SUBSTR s 1 -1", "SETRANGE s 2 XY", "GET s", "SETRANGE s 6 Z", "GET s", "SETRANGE new 3 q", "GET new",
            "SETRANGE empty 3 ''", "SETRANGE s 0 ''", "SETRANGE s -1 x", "SETRANGE s x y", "EXISTS empty",
        ])),
        ("counters", words([
            "DECR d", "DECR d", "INCRBY d 10", "INCRBY d -20", "DECRBY d 5", "DECRBY d -5", "INCRBY d x",
            "DECRBY d -9223372036854775808", "DECRBY d 9223372036854775807", "DECRBY d 9223372036854775807",
            "SET d 9223372036854775807", "INCRBY d 1", "DECRBY d -1", "SET s abc", "INCRBY s 1", "DECR s",
            "INCRBY nope 9223372036854775807", "INCRBY nope 1",
        ])),
        ("incrbyfloat", words([
            "INCRBYFLOAT f 1.5", "INCRBYFLOAT f 0.1", "INCRBYFLOAT f -1.6", "GET f", "INCRBYFLOAT f 1e3",
            "INCRBYFLOAT f 3.0e-2", "INCRBYFLOAT f x", "INCRBYFLOAT f inf", "INCRBYFLOAT f nan", "INCRBYFLOAT f 1e5000",
            "INCRBYFLOAT f -1e-400", "SET f 10.50", "INCRBYFLOAT f 0", "SET f 5.0e3", "INCRBYFLOAT f 2.0e2",
            "SET f abc", "INCRBYFLOAT f 1", "SET f ' 1'", "INCRBYFLOAT f 1", "INCRBYFLOAT g 0.1", "INCRBYFLOAT g 0.2",
            "INCRBYFLOAT h 123456789012345678901234567890", "INCRBYFLOAT h 1e300", "INCRBYFLOAT i -0.0",
            "INCRBYFLOAT j 3", "INCRBYFLOAT j -3", "INCRBYFLOAT k 1.23456789012345678", "INCRBYFLOAT l +5",
            "INCRBYFLOAT m 0x10", "INCRBYFLOAT m .5", "INCRBYFLOAT m 5.", "INCRBYFLOAT n 1e-20",
        ])),
        ("lcs", words([
            "MSET a ohmytext b mynewtext", "LCS a b", "LCS a b LEN", "LCS a b IDX", "LCS a b IDX MINMATCHLEN 4",
            "LCS a b IDX WITHMATCHLEN", "LCS a b IDX MINMATCHLEN 4 WITHMATCHLEN", "LCS a b LEN IDX", "LCS a b FOO",
            "LCS a b MINMATCHLEN", "LCS a b IDX MINMATCHLEN x", "LCS a nope", "LCS nope nope2 IDX", "LCS a a IDX",
            "MSET c abcabc d xbxcxaxbxc", "LCS c d IDX WITHMATCHLEN", "LCS d c IDX MINMATCHLEN -1", "LCS a",
        ])),
        ("keys", words([
            "MSET a 1 b 2", "UNLINK a nope", "TOUCH a b b nope", "TYPE b", "TYPE nope", "RENAME b c", "GET c",
            "RENAME nope x", "RENAME c c", "RENAME nope nope", "SET d 4", "RENAME c d", "GET d", "RENAMENX d e",
            "SET f 6", "RENAMENX e f", "RENAMENX e e", "RENAMENX nope x", "COPY e g", "GET g", "COPY e g", "COPY e g REPLACE",
            "COPY nope g", "COPY e e", "COPY e h DB 0", "COPY e h DB x", "COPY e h FOO", "COPY e h DB", "COPY e h DB 99999999999",
            "COPY e h DB -1", "EXISTS e f g h", "TYPE", "RENAME a",
        ])),
        ("transactions", words([
            "MULTI", "MULTI", "SET a 1", "NOSUCH", "GET", "EXEC", "EXEC", "DISCARD", "GET a", "WATCH a", "MULTI",
            "WATCH b", "INCR a", "SET a x", "INCR a", "UNWATCH", "EXEC", "MULTI", "EXEC", "WATCH a", "SET a 2", "MULTI",
            "GET a", "EXEC", "WATCH a b", "DEL a", "MULTI", "GET a", "EXEC", "WATCH nope", "MULTI", "GET nope",
            "EXEC", "WATCH a", "MULTI", "SET a 3", "DISCARD", "MULTI", "GET a", "EXEC", "WATCH a", "FLUSHALL",
            "MULTI", "PING", "EXEC", "SET a 1", "WATCH a", "FLUSHALL", "MULTI", "PING", "EXEC", "MULTI", "SET a 1",
            "GETRANGE a x y", "RENAME nope b", "EXEC", "MULTI", "DISCARD", "DISCARD", "WATCH", "MULTI", "EXEC x",
            "DISCARD", "RESET", "MULTI", "SET a 5", "RESET", "GET a", "WATCH a", "RESET", "SET a 6", "MULTI",
            "GET a", "EXEC", "MULTI", "HELLO 3", "GET nope", "HELLO 2", "GET nope", "EXEC",
        ])),
        ("server", words([
            "INFO", "INFO server", "INFO keyspace", "INFO nosuch", "INFO all", "INFO default", "TIME", "LASTSAVE",
            "FUNCTION FLUSH", "FUNCTION FLUSH ASYNC", "FUNCTION FLUSH x", "FUNCTION NOSUCH", "FUNCTION",
            "CONFIG GET save", "CONFIG GET appendonly", "CONFIG GET databases", "CONFIG GET nosuch", "CONFIG GET",
            "CONFIG RESETSTAT", "CONFIG RESETSTAT x", "COMMAND COUNT x", "COMMAND INFO get set nosuch",
            "COMMAND INFO incr", "COMMAND INFO mset", "COMMAND LIST x", "WAIT 0 0", "WAIT x 0", "WAIT 0 x", "WAIT 0 -1",
            "WAIT 1", "CLIENT NO-EVICT on", "CLIENT NO-EVICT off", "CLIENT NO-EVICT x", "CLIENT NO-EVICT",
            "CLIENT SETNAME 'a b'", "CLIENT SETNAME ''", "CLIENT GETNAME", "CLIENT INFO", "CLIENT LIST",
            "CLIENT KILL 1.2.3.4:5", "CLIENT KILL ID 0", "CLIENT KILL ID x", "CLIENT KILL ID 99999", "CLIENT KILL FOO bar",
            "CLIENT KILL ID", "CLIENT KILL SKIPME x", "SHUTDOWN FOO", "CONFIG SET foo 1", "CONFIG SET databases 3",
            "CONFIG SET a", "CONFIG SET requirepass a foo b", "CONFIG SET requirepass ''", "CONFIG SET requirepass ''",
            "CONFIG GET requirepass",
        ])),
        ("expire", words([
            "SET k v", "TTL k", "PTTL k", "EXPIRETIME k", "PEXPIRETIME k", "TTL nope", "PTTL nope", "EXPIRE nope 10",
            "EXPIRE k 100", "TTL k", "EXPIRE k 200 NX", "EXPIRE k 200 XX", "TTL k", "EXPIRE k 100 GT", "EXPIRE k 300 GT",
            "TTL k", "EXPIRE k 400 LT", "EXPIRE k 50 LT", "TTL k", "EXPIRE k 10 NX XX", "EXPIRE k 10 GT LT",
            "EXPIRE k 10 FOO", "EXPIRE k x", "EXPIRE k 9223372036854775807", "EXPIRE k 9223372036854775", "TTL k",
            "PEXPIRE k 100000", "PTTL k", "PERSIST k", "PERSIST k", "TTL k", "EXPIRE k 100 XX", "EXPIRE k 100 GT",
            "EXPIRE k 100 LT", "TTL k", "PERSIST nope", "EXPIREAT k 4000000000", "EXPIRETIME k", "PEXPIREAT k 4000000000000",
            "PEXPIRETIME k", "EXPIREAT k 1", "EXISTS k", "SET k v", "EXPIRE k 0", "EXISTS k", "SET k v", "EXPIRE k -5",
            "GET k", "SET k v", "PEXPIRE k -1", "EXISTS k", "SET k v", "EXPIRE k 100 NX", "EXPIRE k 100 NX",
            "PEXPIREAT k -9223372036854775808", "EXISTS k",
        ])),
        ("set-expiry", words([
            "SET k v EX 100", "TTL k", "SET k v PX 100000", "PTTL k", "SET k v EXAT 4000000000", "EXPIRETIME k",
            "SET k v PXAT 4000000000000", "PEXPIRETIME k", "SET k w KEEPTTL", "PEXPIRETIME k", "GET k", "SET k v",
            "TTL k", "SET k v EX 0", "SET k v EX -1", "SET k v EX x", "SET k v PX 0", "SET k v EX", "SET k v EX 10 PX 10",
            "SET k v EX 10 KEEPTTL", "SET k v KEEPTTL EX 10", "SET k v EX 10 EX 20", "TTL k", "SET k v EXAT 1", "EXISTS k",
            "SET k v GET", "SET k w GET", "SET nope v GET NX", "SET k x GET NX", "SET k y GET XX", "GET k",
            "SET k v EX 9223372036854775807", "SET k v EX 9223372036854776", "SET k v PX 9223372036854775807",
            "SETEX k 100 v", "TTL k", "SETEX k 0 v", "SETEX k -1 v", "SETEX k x v", "PSETEX k 100000 v", "PTTL k",
            "PSETEX k 0 v", "SETEX k 10", "GETEX nope", "GETEX k", "GETEX k EX 100", "TTL k", "GETEX k PX 200000",
            "PTTL k", "GETEX k PERSIST", "TTL k", "GETEX k EXAT 4000000000", "EXPIRETIME k", "GETEX k PXAT 1",
            "EXISTS k", "SET k v", "GETEX k EX 0", "GETEX k EX x", "GETEX k FOO", "GETEX k PERSIST EX 10",
            "GETEX k EX 10 PERSIST", "GETEX k KEEPTTL", "GETEX nope EX 0",
        ])),
        ("keep-ttl", words([
            "SET k 1 EX 100", "INCR k", "TTL k", "INCRBY k 5", "DECR k", "INCRBYFLOAT k 1.5", "TTL k", "APPEND k x",
            "TTL k", "SETRANGE k 0 y", "TTL k", "GETSET k z", "TTL k", "SET k v EX 100", "RENAME k j", "TTL j",
            "COPY j k", "TTL k", "MSET k 1", "TTL k", "SET j v EX 100", "SET j v", "TTL j", "SET a 1 EX 100", "GETDEL a",
            "TTL a", "SET a 1 EX 100", "PERSIST a", "TTL a",
        ])),
        ("keys", words([
            "MSET a 1 b 2 c 3 ab 4", "KEYS nope", "DBSIZE", "RANDOMKEY", "OBJECT ENCODING a", "OBJECT ENCODING nope",
            "SET s abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz", "OBJECT ENCODING s", "SET t hello",
            "OBJECT ENCODING t", "SET u -12", "OBJECT ENCODING u", "SET u 012", "OBJECT ENCODING u", "OBJECT NOSUCH a",
            "OBJECT ENCODING", "OBJECT FREQ a", "OBJECT REFCOUNT a", "OBJECT REFCOUNT s", "OBJECT IDLETIME a", "MEMORY NOSUCH", "MEMORY USAGE nope",
            "MEMORY USAGE a SAMPLES x", "SCAN x", "SCAN 0 COUNT 0", "SCAN 0 COUNT x", "SCAN 0 MATCH", "SCAN 0 FOO bar",
            "SCAN 0 MATCH nope* COUNT 1000", "SCAN 0 TYPE list COUNT 1000", "SCAN -1", "KEYS", "RANDOMKEY x",
        ])),
        ("slowlog", words([
            "SLOWLOG RESET", "SLOWLOG LEN", "CONFIG SET slowlog-log-slower-than 0", "SET a 1", "GET a", "SLOWLOG LEN",
            "SLOWLOG GET", "SLOWLOG GET 1", "SLOWLOG GET -1", "SLOWLOG GET -2", "SLOWLOG GET x", "SLOWLOG NOSUCH",
            "SLOWLOG LEN x", "CONFIG SET slowlog-log-slower-than x", "CONFIG SET slowlog-log-slower-than -2",
            "CONFIG SET slowlog-max-len -1", "CONFIG GET slowlog-max-len", "CONFIG SET slowlog-max-len 1", "SLOWLOG LEN",
            "CONFIG SET slowlog-max-len 128", "CONFIG SET slowlog-log-slower-than -1", "SLOWLOG RESET", "GET a",
            "SLOWLOG LEN", "CONFIG SET slowlog-log-slower-than 10000",
        ])),
        ("config-set", words([
            "CONFIG SET appendfsync foo", "CONFIG SET appendfsync EVERYSEC", "CONFIG GET appendfsync",
            "CONFIG SET timeout -1", "CONFIG SET timeout abc", "CONFIG SET timeout 1.5", "CONFIG SET timeout 2147483648",
            "CONFIG SET timeout 10", "CONFIG GET timeout", "CONFIG SET appendfsync always timeout x",
            "CONFIG GET appendfsync", "CONFIG GET timeout", "CONFIG SET appendfsync no timeout 20", "CONFIG GET appendfsync",
            "CONFIG GET timeout", "CONFIG SET appendfsync everysec", "SET a 1", "GET a",
        ])),
        ("flush", words(["SET a 1", "FLUSHDB", "DBSIZE", "SET a 1", "FLUSHALL SYNC", "FLUSHALL ASYNC", "FLUSHDB x", "DBSIZE"])),
        ("bits", words([
            "SETBIT b 7 1", "GET b", "GETBIT b 7", "GETBIT b 6", "GETBIT b 100", "SETBIT b 100 1", "STRLEN b", "GET b",
            "SETBIT b 7 0", "SETBIT b 7 0", "GET b", "SETBIT b -1 1", "SETBIT b x 1", "SETBIT b 4294967296 1",
            "SETBIT b 0 2", "SETBIT b 0 -1", "SETBIT b 0 x", "SETBIT b 0 01", "SETBIT b 0", "SETBIT b 01 1",
            "GETBIT nope 3", "GETBIT b -1", "GETBIT b 4294967295", "GETBIT b 4294967296", "GETBIT b", "LPUSH l a",
            "SETBIT l 0 1", "GETBIT l 0", "SETBIT l -1 x", "SETBIT l 0 x", "SET i 1", "SETBIT i 6 1", "GET i",
            "SET t v EX 100", "SETBIT t 1 1", "TTL t", "GET t",
        ])),
        ("databases", words([
            "SET a 0", "SELECT 1", "GET a", "SET a 1", "DBSIZE", "KEYS *", "SELECT 16", "SELECT -1", "SELECT x",
            "SELECT 99999999999", "SELECT 1 2", "GET a", "SELECT 0", "GET a", "MOVE a 1", "SET b 0", "MOVE b 1",
            "MOVE b 0", "MOVE b 16", "MOVE b -1", "MOVE b x", "MOVE b 99999999999", "MOVE nope 2", "SELECT 1", "GET b",
            "DBSIZE", "SET e v EX 100", "MOVE e 3", "EXISTS e", "SELECT 3", "TTL e", "GET e", "SWAPDB 0 3", "GET e",
            "SELECT 0", "GET e", "TTL e", "SWAPDB 0 0", "SWAPDB 0 16", "SWAPDB x 1", "SWAPDB 1 x", "SWAPDB -1 0",
            "SWAPDB 99999999999 0", "SWAPDB 1", "COPY e e", "COPY e e DB 0", "COPY e e DB 5", "SELECT 5", "GET e",
            "TTL e", "COPY e e DB 0", "COPY e e DB 0 REPLACE", "COPY e f DB 16", "COPY e f DB 1", "SELECT 1", "GET f",
            "GET e", "SELECT 5", "SELECT 2", "SET z 1", "FLUSHDB",
            "DBSIZE", "SELECT 5", "DBSIZE", "RANDOMKEY", "SCAN 0", "FLUSHALL", "DBSIZE", "SELECT 0", "DBSIZE",
            "SELECT 4", "MULTI", "SET m 1", "SELECT 6", "SET m 2", "MOVE m 4", "EXEC", "GET m", "SELECT 4", "GET m",
            "SET n 1", "MOVE n 6", "MULTI", "SWAPDB 4 6", "EXEC", "GET n", "GET m", "SELECT 6", "KEYS *", "RESET",
            "GET m", "SET big 12345", "APPEND big x", "MOVE big 9", "SELECT 9", "GET big", "TYPE big",
            "INCR missing", "MOVE missing 0", "SELECT 0", "GET missing",
        ])),
        ("maxmemory", words([
            "SET a 1", "CONFIG SET maxmemory 1", "CONFIG GET maxmemory", "CONFIG GET maxmemory-policy", "SET b 2",
            "INCR a", "APPEND a x", "MSET c 1 d 2", "GET a", "EXISTS a b", "EXPIRE a 100", "TTL a", "PERSIST a",
            "MULTI", "GET a", "SET b 2", "DEL a", "EXEC", "MULTI", "DISCARD", "DEL a", "DBSIZE",
            "CONFIG SET maxmemory 1.5gb", "CONFIG SET maxmemory -1", "CONFIG SET maxmemory 12x",
            "CONFIG SET maxmemory 64MB", "CONFIG GET maxmemory", "SET b 2", "GET b", "CONFIG SET maxmemory 1k",
            "CONFIG GET maxmemory", "CONFIG SET maxmemory-policy ALLKEYS-RANDOM", "CONFIG GET maxmemory-policy",
            "CONFIG SET maxmemory-policy noeviction", "CONFIG SET maxmemory 0", "SET b 3", "GET b",
        ])),
    ]

    @Test func handWrittenSequencesGetRedisReplies() throws {
        let pair = try Pair()
        defer { pair.stop() }
        var tally = Tally()
        for version in [2, 3] {
            for (name, sequence) in Self.handWritten {
                try Self.run(name, sequence, protocolVersion: version, on: pair, tally: &tally)
            }
        }
        #expect(tally.differences.isEmpty, "\(tally.differences.count) differences:\n\(tally.differences.joined(separator: "\n"))")
        print("differential (hand-written): \(tally.sequences) sequences, \(tally.replies) replies, \(tally.commands.count) commands")
    }

    /// WATCH across connections: a second client's write, delete or FLUSHALL aborts the first
    /// client's EXEC; a closed watcher leaves nothing behind.
    @Test func watchSeesOtherClientsWrites() throws {
        let pair = try Pair()
        defer { pair.stop() }
        for port in [pair.server.kvPort, pair.oracle.port] {
            let a = try RawRESPConnection(port: port)
            let b = try RawRESPConnection(port: port)
            _ = try a.call("FLUSHALL")
            for change in [["SET", "w", "2"], ["DEL", "w"], ["FLUSHALL"], ["INCRBY", "w", "3"], ["RENAME", "v", "w"]] {
                _ = try a.call("MSET", "w", "1", "v", "0")
                #expect(try a.call("WATCH", "w") == Array("+OK\r\n".utf8))
                _ = try b.call(change.map { Array($0.utf8) })
                _ = try a.call("MULTI")
                _ = try a.call("GET", "w")
                #expect(try a.call("EXEC") == Array("*-1\r\n".utf8), "\(change) on port \(port)")
            }
            // A change to another key, or before the WATCH, does not abort.
            _ = try a.call("SET", "w", "1")
            _ = try a.call("WATCH", "w")
            _ = try b.call("SET", "other", "1")
            _ = try a.call("MULTI")
            _ = try a.call("GET", "w")
            #expect(try a.call("EXEC") == Array("*1\r\n$1\r\n1\r\n".utf8), "port \(port)")
            // A watcher that goes away without UNWATCH leaves the key unwatched for others.
            let c = try RawRESPConnection(port: port)
            _ = try c.call("WATCH", "w")
            c.client.close()
            _ = try a.call("WATCH", "w")
            _ = try a.call("MULTI")
            _ = try a.call("SET", "w", "9")
            #expect(try a.call("EXEC") == Array("*1\r\n+OK\r\n".utf8), "port \(port)")
        }
    }

    /// With a password: what an unauthenticated connection may do, AUTH's and HELLO AUTH's
    /// answers, and the unauthenticated request limits (a bulk over 16 KiB closes the connection).
    @Test func authenticationAsRedisAnswersIt() throws {
        let pair = try Pair(password: "s3cret")
        defer { pair.stop() }
        var tally = Tally()
        let sequences: [(String, [String])] = [
            ("before auth", ["GET k", "SET k v", "NOSUCH x", "GET", "PING", "HELLO", "HELLO 3", "MULTI", "AUTH", "AUTH a b c d",
                             "AUTH wrong", "AUTH default wrong", "AUTH nobody s3cret", "CLIENT ID", "AUTH s3cret", "SET k v",
                             "GET k", "AUTH wrong", "GET k", "AUTH default s3cret"]),
            ("hello auth", ["HELLO 3 AUTH default wrong", "GET k", "HELLO 3 AUTH default s3cret SETNAME x", "GET nope",
                            "CLIENT GETNAME"]),
            ("hello auth user", ["HELLO 2 AUTH DEFAULT s3cret", "HELLO 2 AUTH default", "GET k"]),
        ]
        for (name, lines) in sequences {
            try Self.run(name, Self.words(lines), protocolVersion: 2, on: pair, tally: &tally, fresh: false)
        }
        #expect(tally.differences.isEmpty, "\(tally.differences.count) differences:\n\(tally.differences.joined(separator: "\n"))")
        // The unauthenticated limits, then the close, on both servers alike.
        for request in [RESPValue.command((0..<11).map { _ in Array("x".utf8) }),
                        RESPValue.command([Array("GET".utf8), [UInt8](repeating: 120, count: 16385)])] {
            var replies: [[UInt8]] = []
            for port in [pair.server.kvPort, pair.oracle.port] {
                let client = try TestClient(port: port)
                try client.send(request)
                let (bytes, eof) = client.readToEOF()
                #expect(eof, "port \(port) left the connection open")
                replies.append(bytes)
            }
            #expect(replies[0] == replies[1], "\(String(decoding: replies[0], as: UTF8.self)) vs \(String(decoding: replies[1], as: UTF8.self))")
        }
        // After AUTH the limits are Redis's usual ones.
        let client = try RawRESPConnection(port: pair.server.kvPort)
        #expect(try client.call("AUTH", "s3cret") == Array("+OK\r\n".utf8))
        let big = [UInt8](repeating: 7, count: 100_000)
        #expect(try client.call([Array("SET".utf8), Array("big".utf8), big]) == Array("+OK\r\n".utf8))
        // The line protocol: `auth`, then commands.
        let line = try TestClient(port: pair.server.kvPort)
        #expect(try line.request("get big") == "ERR authentication required")
        #expect(try line.request("auth nope") == "ERR invalid password")
        #expect(try line.request("help") == "ERR authentication required")
        #expect(try line.request("auth s3cret") == "OK")
        #expect(try line.request("count") == "2")
        #expect(try line.request("bye") == "Goodbye")
        // CONFIG SET requirepass: new connections need the new password; open ones stay in.
        #expect(try client.call("CONFIG", "SET", "requirepass", "next") == Array("+OK\r\n".utf8))
        #expect(try client.call("DBSIZE") == Array(":2\r\n".utf8))
        let later = try RawRESPConnection(port: pair.server.kvPort)
        #expect(try later.call("AUTH", "s3cret").starts(with: Array("-WRONGPASS".utf8)))
        #expect(try later.call("AUTH", "next") == Array("+OK\r\n".utf8))
        // Passwords never reach SLOWLOG or MONITOR.
        _ = try later.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
        _ = try later.call("AUTH", "default", "next")
        _ = try later.call("CONFIG", "SET", "requirepass", "third")
        _ = try later.call("HELLO", "2", "AUTH", "default", "third")
        let log = String(decoding: try later.call("SLOWLOG", "GET", "-1"), as: UTF8.self)
        #expect(log.contains("(redacted)") && !log.contains("next") && !log.contains("third"), "\(log)")
    }

    /// MONITOR shows other clients' commands as Redis formats them (escapes, redacted passwords).
    @Test func monitorLinesMatchRedis() throws {
        let pair = try Pair()
        defer { pair.stop() }
        var tails: [[String]] = []
        for port in [pair.server.kvPort, pair.oracle.port] {
            let monitor = try RawRESPConnection(port: port)
            #expect(try monitor.call("MONITOR") == Array("+OK\r\n".utf8))
            let client = try RawRESPConnection(port: port)
            _ = try client.call([Array("SET".utf8), Array("k".utf8), Array("a\"b\n\u{1}\\é".utf8)])
            _ = try client.call("AUTH", "default", "secret")
            _ = try client.call("HELLO", "2", "AUTH", "default", "secret", "SETNAME", "n")
            var lines: [String] = []
            for _ in 0..<3 {
                let line = String(decoding: try monitor.reply(), as: UTF8.self)
                #expect(line.wholeMatch(of: /\+[0-9]+\.[0-9]{6} \[0 127\.0\.0\.1:[0-9]+\] .*\r\n/) != nil, "\(line.debugDescription)")
                lines.append(String(line.drop(while: { $0 != "]" })))
            }
            tails.append(lines)
        }
        #expect(tails[0] == tails[1])
    }

    /// SAVE answers once `database.txt` holds the data; BGSAVE answers at once and INFO and
    /// LASTSAVE show it end; both keep the loop serving other clients.
    @Test func saveAndBackgroundSaveCompactIntoTheSnapshot() throws {
        let dir = try TemporaryDirectory()
        try withKVServer(dataDirectory: dir.path) { server, client in
            #expect(try client.call("SET", "saved", "yes") == .simple("OK"))
            guard case .integer(let before) = try client.call("LASTSAVE") else { throw TestFailure("LASTSAVE") }
            #expect(try client.call("SAVE") == .simple("OK"))
            let snapshot = try readSnapshotFile(dir.file("database.txt"))
            #expect(snapshot.pairs[Array("saved".utf8)] == Array("yes".utf8), "SAVE replied before the snapshot held the key")
            guard case .integer(let after) = try client.call("LASTSAVE") else { throw TestFailure("LASTSAVE") }
            #expect(after >= before)
            #expect(try client.call("SET", "later", "1") == .simple("OK"))
            #expect(try client.call("BGSAVE") == .simple("Background saving started"))
            // Pipelined behind BGSAVE, reads are answered at once; the compaction ends on its own.
            #expect(try client.call("GET", "later") == .bulk("1"))
            #expect(try client.call("BGREWRITEAOF") == .simple("Background append only file rewriting started"))
        }
    }

    /// The random sequences' command generators over a small keyspace.
    static func randomCommand(_ g: inout SeededGenerator) -> [[UInt8]] {
        let keys = ["k1", "k2", "k3", "n"]
        let values = ["v", "", "10", "-3", "abc def", "9223372036854775807", "0", "x\r\ny"]
        func key() -> String { keys.randomElement(using: &g)! }
        func value() -> String { values.randomElement(using: &g)! }
        let command: [String]
        switch Int.random(in: 0..<41, using: &g) {
        case 0: command = ["GET", key()]
        case 1: command = ["SET", key(), value()]
        case 2: command = ["SET", key(), value(), ["NX", "XX"].randomElement(using: &g)!]
        case 3: command = ["SETNX", key(), value()]
        case 4: command = ["DEL", key(), key()]
        case 5: command = ["EXISTS", key(), key(), key()]
        case 6: command = ["MGET", key(), key()]
        case 7: command = ["MSET", key(), value(), key(), value()]
        case 8: command = ["INCR", key()]
        case 9: command = ["DBSIZE"]
        case 10: command = ["GETSET", key(), value()]
        case 11: command = ["GETDEL", key()]
        case 12: command = ["MSETNX", key(), value(), key(), value()]
        case 13: command = ["APPEND", key(), value()]
        case 14: command = ["STRLEN", key()]
        case 15: command = ["GETRANGE", key(), ["0", "-1", "2", "-3"].randomElement(using: &g)!, ["-1", "1", "5"].randomElement(using: &g)!]
        case 16: command = ["SETRANGE", key(), ["0", "2", "5"].randomElement(using: &g)!, value()]
        case 17: command = ["DECR", key()]
        case 18: command = ["INCRBY", key(), ["5", "-7", "9223372036854775807"].randomElement(using: &g)!]
        case 19: command = ["DECRBY", key(), ["5", "-7"].randomElement(using: &g)!]
        case 20: command = ["INCRBYFLOAT", key(), ["0.1", "-2.5", "1e2", "3"].randomElement(using: &g)!]
        case 21: command = ["UNLINK", key(), key()]
        case 22: command = ["TOUCH", key(), key()]
        case 23: command = ["TYPE", key()]
        case 24: command = ["RENAME", key(), key()]
        case 25: command = ["RENAMENX", key(), key()]
        case 26: command = ["COPY", key(), key()] + (Bool.random(using: &g) ? ["REPLACE"] : [])
        case 27: command = ["LCS", key(), key()]
        case 28: command = ["MULTI"]
        case 29: command = ["EXEC"]
        case 30: command = ["DISCARD"]
        case 31: command = ["WATCH", key()]
        case 32: command = ["UNWATCH"]
        case 33: command = ["EXPIRE", key(), ["100", "0", "-1", "50"].randomElement(using: &g)!] + (Bool.random(using: &g) ? [] : [["NX", "XX", "GT", "LT"].randomElement(using: &g)!])
        case 34: command = ["TTL", key()]
        case 35: command = ["PERSIST", key()]
        case 36: command = ["SET", key(), value(), ["EX", "PX"].randomElement(using: &g)!, ["100", "100000"].randomElement(using: &g)!]
        case 37: command = ["SET", key(), value(), "KEEPTTL"]
        case 38: command = ["GETEX", key()] + (Bool.random(using: &g) ? ["PERSIST"] : ["EX", "100"])
        case 39: command = ["SETEX", key(), "100", value()]
        default: command = ["SET", key(), value(), "GET"]
        }
        return command.map { Array($0.utf8) }
    }

    @Test func seededRandomSequencesGetRedisReplies() throws {
        let pair = try Pair()
        defer { pair.stop() }
        var tally = Tally()
        for seed in UInt64(1)...40 {
            var g = SeededGenerator(seed: seed)
            let sequence = (0..<60).map { _ in Self.randomCommand(&g) }
            try Self.run("seed \(seed)", sequence, protocolVersion: seed % 2 == 0 ? 3 : 2, on: pair, tally: &tally)
        }
        #expect(tally.differences.isEmpty, "\(tally.differences.count) differences:\n\(tally.differences.joined(separator: "\n"))")
        print("differential (random): \(tally.sequences) sequences, \(tally.replies) replies, \(tally.commands.count) commands")
    }
}
