// INFO's sections and per-command counters, MULTI's refusal of `no-multi` commands, CONFIG SET's
// immutable parameters and `save`, each checked against a redis-server started here (the same
// requests to both) where Redis's answer is deterministic, and save points by their effect.

import Foundation
import Reactor
import Server
import Testing

@Suite(.serialized) struct InfoAndTransactionRulesTests {
    /// The `# Section` headers of an INFO reply, this server's own `# Reactord` left out.
    static func headers(_ reply: [UInt8]) -> [String] {
        String(decoding: reply, as: UTF8.self).split(separator: "\r\n").filter { $0.hasPrefix("# ") && $0 != "# Reactord" }
            .map(String.init)
    }

    /// The `cmdstat_` lines without their timings: `name:calls=…,rejected_calls=…,failed_calls=…`
    /// (a subcommand as `config|get`), sorted.
    static func commandCounts(_ reply: [UInt8]) -> [String] {
        String(decoding: reply, as: UTF8.self).split(separator: "\r\n").filter { $0.hasPrefix("cmdstat_") }.map { line in
            line.split(separator: ",").filter { !$0.hasPrefix("usec") }.joined(separator: ",")
        }.sorted()
    }

    static func lines(_ reply: [UInt8], prefix: String) -> [String] {
        String(decoding: reply, as: UTF8.self).split(separator: "\r\n").filter { $0.hasPrefix(prefix) }.map(String.init)
    }

    /// Runs `body` with a connection to a fresh in-process reactord and one to a redis-server
    /// started for the test, both stopped after it.
    static func againstRedis(_ body: (RawRESPConnection, RawRESPConnection) throws -> Void) throws {
        let oracle = try RedisOracle()
        defer { oracle.stop() }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let server = try InProcessServer.kv(dataDirectory: dir.path, fsync: "no")
        defer { server.stop() }
        let ours = try RawRESPConnection(port: server.kvPort)
        let theirs = try RawRESPConnection(port: oracle.port)
        try body(ours, theirs)
    }

    @Test func infoSectionsAndCountersAsRedis() throws {
        try Self.againstRedis { ours, theirs in
            let requests: [[String]] = [
                ["CONFIG", "RESETSTAT"], ["SET", "a", "b"], ["GET", "a"], ["INCR", "a"], ["NOSUCH"], ["GET"], ["SET", "a"],
                ["MULTI"], ["SAVE"], ["SET", "x", "1"], ["EXEC"], ["MULTI"], ["GET", "a"], ["INCR", "a"], ["EXEC"],
                ["TYPE", "a"], ["DEL", "a"], ["EXPIRE", "nope", "x"],
                // Subcommands: counted as `config|get`; the container's arity, an unknown subcommand (counted
                // nowhere) and a subcommand's arity (refused before it runs, also inside MULTI).
                ["CONFIG", "GET", "maxmemory"], ["config", "get", "maxmemory-policy"], ["CONFIG"], ["CONFIG", "NOSUCH"],
                ["CONFIG", "GET"], ["OBJECT", "ENCODING", "nokey"], ["OBJECT", "encoding"], ["SLOWLOG", "LEN"],
                ["MULTI"], ["CONFIG", "GET"], ["OBJECT", "ENCODING", "nokey"], ["EXEC"],
                ["MULTI"], ["CONFIG", "GET", "maxmemory"], ["EXEC"],
            ]
            for request in requests {
                let mine = try ours.call(request.map { Array($0.utf8) })
                let redis = try theirs.call(request.map { Array($0.utf8) })
                #expect(String(decoding: mine, as: UTF8.self) == String(decoding: redis, as: UTF8.self), "\(request)")
            }
            let infoRequests = [
                ["INFO"], ["INFO", "default"], ["INFO", "all"], ["INFO", "everything"], ["INFO", "nosuch"],
                ["INFO", "commandstats", "errorstats"], ["INFO", "latencystats"], ["INFO", "modules", "cluster"],
                ["INFO", "default", "commandstats"], ["INFO", "CPU", "Server"],
            ]
            for arguments in infoRequests {
                let mine = try ours.call(arguments.map { Array($0.utf8) })
                let redis = try theirs.call(arguments.map { Array($0.utf8) })
                #expect(Self.headers(mine) == Self.headers(redis), "\(arguments)")
            }
            let mine = try ours.call("INFO", "commandstats", "errorstats", "latencystats", "cluster")
            let redis = try theirs.call("INFO", "commandstats", "errorstats", "latencystats", "cluster")
            // INFO's own calls differ (this one, and none other before it on either side).
            #expect(Self.commandCounts(mine) == Self.commandCounts(redis))
            #expect(Self.lines(mine, prefix: "errorstat_") == Self.lines(redis, prefix: "errorstat_"))
            #expect(Self.lines(mine, prefix: "cluster_") == Self.lines(redis, prefix: "cluster_"))
            let latency = { (reply: [UInt8]) in
                Self.lines(reply, prefix: "latency_percentiles_usec_").map { $0.split(separator: ":")[0] }.sorted()
            }
            #expect(latency(mine) == latency(redis))
            for line in Self.lines(mine, prefix: "latency_percentiles_usec_") {
                #expect(line.contains(":p50=") && line.contains(",p99=") && line.contains(",p99.9="), "\(line)")
            }
            // CONFIG RESETSTAT clears them, as in Redis.
            for connection in [ours, theirs] { _ = try connection.call("CONFIG", "RESETSTAT") }
            let clearedMine = try ours.call("INFO", "commandstats", "errorstats")
            let clearedRedis = try theirs.call("INFO", "commandstats", "errorstats")
            #expect(Self.commandCounts(clearedMine) == Self.commandCounts(clearedRedis))
            #expect(Self.lines(clearedMine, prefix: "errorstat_").isEmpty)
        }
    }

    /// `name:value` fields of one INFO section.
    static func fields(_ reply: [UInt8]) -> [String: String] {
        var result: [String: String] = [:]
        for line in String(decoding: reply, as: UTF8.self).split(separator: "\r\n") where !line.hasPrefix("#") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            result[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return result
    }

    @Test func infoMemoryFieldsAreRedisNamesWithTrueValues() throws {
        try Self.againstRedis { ours, theirs in
            _ = try ours.call("CONFIG", "SET", "maxmemory", "3mb")
            _ = try ours.call("SET", "k", String(repeating: "v", count: 100_000))
            let mine = Self.fields(try ours.call("INFO", "memory"))
            let redis = Self.fields(try theirs.call("INFO", "memory"))
            // Every field is one Redis has (this server leaves out the allocator's own figures).
            for name in mine.keys { #expect(redis[name] != nil, "\(name) is not in redis-server's INFO memory") }
            let used = try #require(Int(mine["used_memory"] ?? ""))
            let rss = try #require(Int(mine["used_memory_rss"] ?? ""))
            let peak = try #require(Int(mine["used_memory_peak"] ?? ""))
            #expect(used > 100_000 && peak >= used)
            // The resident set is the process's own (this test process holds far more than the value).
            #expect(rss > used)
            #expect(Int(mine["mem_fragmentation_bytes"] ?? "") == rss - used)
            let ratio = try #require(Double(mine["mem_fragmentation_ratio"] ?? ""))
            #expect(abs(ratio - Double(rss) / Double(used)) < 0.006)
            #expect(mine["maxmemory"] == "3145728" && mine["maxmemory_human"] == "3.00M")
            let rssHuman = mine["used_memory_rss_human"] ?? ""
            #expect(rssHuman.hasSuffix("M") || rssHuman.hasSuffix("G"))
        }
    }

    @Test func noMultiCommandsAndImmutableConfigAsRedis() throws {
        try Self.againstRedis { ours, theirs in
            var requests: [[String]] = [
                ["MULTI"], ["SAVE"], ["SET", "a", "1"], ["EXEC"], ["GET", "a"], ["MULTI"], ["SHUTDOWN"], ["EXEC"],
                ["MULTI"], ["SHUTDOWN", "NOSAVE"], ["DISCARD"],
                ["CONFIG", "SET", "save", "x"], ["CONFIG", "SET", "save", "1 2 3"], ["CONFIG", "SET", "save", "0 1"],
                ["CONFIG", "SET", "save", "1 -1"], ["CONFIG", "SET", "save", "3600 1 300 100"], ["CONFIG", "GET", "save"],
                ["CONFIG", "SET", "save", ""], ["CONFIG", "GET", "save"], ["CONFIG", "SET", "dir", "x"],
                ["CONFIG", "SET", "dbfilename", "x"], ["CONFIG", "SET", "save", "1 1", "daemonize", "yes"],
            ]
            for name in ["aclfile", "always-show-logo", "appenddirname", "appendfilename", "cluster-enabled", "daemonize",
                         "databases", "io-threads", "logfile", "pidfile", "rdbchecksum", "supervised", "syslog-ident",
                         "tcp-backlog", "unixsocket", "unixsocketperm", "enable-debug-command"]
            {
                requests.append(["CONFIG", "SET", name, "1"])
            }
            for request in requests {
                let mine = try ours.call(request.map { Array($0.utf8) })
                let redis = try theirs.call(request.map { Array($0.utf8) })
                #expect(String(decoding: mine, as: UTF8.self) == String(decoding: redis, as: UTF8.self), "\(request)")
            }
        }
    }

    /// A save point that is due starts a compaction into database.txt by itself, as it starts a
    /// BGSAVE in Redis; with none (`save ""`) none starts.
    @Test func savePointsStartACompaction() throws {
        try withKVServer(fsync: "no") { server, client in
            #expect(try client.call("CONFIG", "SET", "save", "1 2") == .simple("OK"))
            let before = try client.call("LASTSAVE")
            #expect(try client.call("SET", "k1", "v") == .simple("OK"))
            // One change: the point (2 changes) is not due, however long we wait past its second.
            Thread.sleep(forTimeInterval: 2.2)
            #expect(try client.call("LASTSAVE") == before)
            #expect(try client.call("SET", "k2", "v") == .simple("OK"))
            let saved = pollFor(within: 10) { (try? client.call("LASTSAVE")) != before }
            #expect(saved, "no compaction started for a due save point")
            #expect(try client.call("CONFIG", "SET", "save", "") == .simple("OK"))
        }
    }
}
