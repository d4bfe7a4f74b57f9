// Busy scripts against Redis: a script that never ends on one connection, the other connections
// answered `-BUSY` while it runs, SCRIPT KILL / FUNCTION KILL stopping it, an UNKILLABLE one that
// wrote, SHUTDOWN NOSAVE stopping the server. The same scenario runs against a redis-server
// started here and a reactord child process (SHUTDOWN ends both); every reply is compared byte
// for byte. Waits are polls with deadlines (`busy-reply-threshold` is set to 100 ms).

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct BusyScriptTests {
    /// A reactord child process with the kv port only, and its data directory.
    final class Reactord {
        let directory: TemporaryDirectory
        let process: ReactordProcess
        let port: Int

        init() throws {
            self.directory = try TemporaryDirectory()
            self.process = try ReactordProcess(arguments: [
                "--kv-port", "0", "--echo-port", "off", "--time-port", "off", "--file-port", "off",
                "--data-dir", self.directory.path, "--fsync", "no",
            ])
            self.port = try self.process.readyKVPort()
        }

        func stop() {
            self.process.kill()
            self.directory.remove()
        }
    }

    static func words(_ line: String) -> [[UInt8]] { RedisDifferentialTests.words([line])[0] }

    /// What one run saw: each step's name and reply bytes, in order.
    struct Transcript {
        var entries: [(String, [UInt8])] = []
        mutating func add(_ step: String, _ reply: [UInt8]) { self.entries.append((step, reply)) }
    }

    /// Sends `line` on `connection` without reading its reply (the script's caller).
    static func send(_ line: String, on connection: RawRESPConnection) throws {
        try connection.client.send(RESPValue.command(Self.words(line)))
    }

    /// Polls PING on `probe` until its reply starts with `prefix`. - Returns: that reply.
    static func ping(_ probe: RawRESPConnection, until prefix: String, line: Int = #line) throws -> [UInt8] {
        var last: [UInt8] = []
        let reached = try pollFor(within: 10) {
            last = try probe.call("PING")
            return last.starts(with: Array(prefix.utf8))
        }
        guard reached else { throw TestFailure("PING never answered \(prefix) (line \(line)): \(String(decoding: last, as: UTF8.self))") }
        return last
    }

    /// The scenario, on a server at `port`. It ends with SHUTDOWN NOSAVE while an unkillable
    /// script runs: the server is gone afterwards.
    static func scenario(port: Int, _ transcript: inout Transcript) throws {
        let setup = try RawRESPConnection(port: port)
        let caller = try RawRESPConnection(port: port)
        let probe = try RawRESPConnection(port: port)
        func step(_ line: String) throws { transcript.add(line, try probe.call(Self.words(line))) }

        transcript.add("CONFIG SET", try setup.call("CONFIG", "SET", "busy-reply-threshold", "100"))
        transcript.add("CONFIG GET", try setup.call("CONFIG", "GET", "lua-time-limit"))
        transcript.add("SCRIPT KILL idle", try setup.call("SCRIPT", "KILL"))
        transcript.add("FUNCTION KILL idle", try setup.call("FUNCTION", "KILL"))

        // 1. An EVAL that never ends: busy, then killed; its caller gets Redis's error.
        try Self.send("EVAL 'while true do end' 0", on: caller)
        transcript.add("PING busy", try Self.ping(probe, until: "-BUSY"))
        for line in ["GET x", "SET x 1", "NOSUCH", "GET", "FUNCTION KILL", "FUNCTION STATS", "SHUTDOWN", "MULTI",
                     "SET x 1", "EXEC", "DISCARD", "WATCH x", "UNWATCH"] {
            try step(line)
        }
        // A client connecting meanwhile is accepted and answered too.
        let newcomer = try RawRESPConnection(port: port)
        transcript.add("newcomer", try newcomer.call("GET", "x"))
        try step("SCRIPT KILL")
        transcript.add("caller", try caller.reply())
        transcript.add("PING after", try Self.ping(probe, until: "+PONG"))
        transcript.add("caller after", try caller.call("PING"))

        // 2. Killable even when it loops in pcall; the caller's pipelined PING is answered after.
        let pipelined = RESPValue.command(Self.words("EVAL 'local f = function() while 1 do redis.call(\"ping\") end end while 1 do pcall(f) end' 0"))
            + RESPValue.command(Self.words("PING"))
        try caller.client.send(pipelined)
        transcript.add("PING busy pcall", try Self.ping(probe, until: "-BUSY"))
        try step("SCRIPT KILL")
        transcript.add("caller pcall", try caller.reply())
        transcript.add("caller pipelined PING", try caller.reply())

        // 3. FCALL: FUNCTION KILL's wording, SCRIPT KILL refused, FUNCTION KILL stops it.
        transcript.add("FUNCTION LOAD", try setup.call(
            "FUNCTION", "LOAD", "#!lua name=spinlib\nredis.register_function('spin', function() while true do end end)"))
        try Self.send("FCALL spin 0", on: caller)
        transcript.add("PING busy fcall", try Self.ping(probe, until: "-BUSY"))
        try step("SCRIPT KILL")
        try step("GET x")
        let stats = try probe.call("FUNCTION", "STATS")
        // Its duration differs from run to run: compared by what it names.
        let shown = String(decoding: stats, as: UTF8.self)
        transcript.add("FUNCTION STATS names", Array("\(shown.contains("running_script") && shown.contains("spin") && shown.contains("duration_ms"))".utf8))
        try step("FUNCTION KILL")
        transcript.add("caller fcall", try caller.reply())
        transcript.add("PING after fcall", try Self.ping(probe, until: "+PONG"))

        // 4. A blocked client is not served while the script runs: it gets the script's last push.
        let blocked = try RawRESPConnection(port: port)
        try Self.send("BLPOP q 0", on: blocked)
        _ = try pollFor(within: 10) {
            String(decoding: try setup.call("INFO", "clients"), as: UTF8.self).contains("blocked_clients:1")
        }
        try Self.send(
            "EVAL 'redis.call(\"lpush\", KEYS[1], \"y\") local s = redis.call(\"time\") repeat local n = redis.call(\"time\") until (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > 1000000 redis.call(\"lpush\", KEYS[1], \"z\") return \"done\"' 1 q",
            on: caller)
        transcript.add("PING busy writer", try Self.ping(probe, until: "-BUSY"))
        try step("SCRIPT KILL")
        transcript.add("caller writer", try caller.reply())
        transcript.add("blocked", try blocked.reply())

        // 5. A script that wrote cannot be killed; SHUTDOWN NOSAVE stops it and the server.
        try Self.send("EVAL 'redis.call(\"set\", \"w\", \"1\") while true do end' 0", on: caller)
        transcript.add("PING busy unkillable", try Self.ping(probe, until: "-BUSY"))
        try step("SCRIPT KILL")
        try step("PING")
        try probe.client.send(RESPValue.command(Self.words("SHUTDOWN NOSAVE")))
        let gone = pollFor(within: 10) { (try? RawRESPConnection(port: port).call("PING")) == nil }
        transcript.add("server gone", Array("\(gone)".utf8))
    }

    /// redis.log writes to the server's log at its level; below `loglevel` (info, Redis's notice)
    /// nothing is written.
    @Test func redisLogWritesTheServerLog() throws {
        let ours = try Reactord()
        defer { ours.stop() }
        let connection = try RawRESPConnection(port: ours.port)
        #expect(try connection.call("EVAL", "redis.log(redis.LOG_WARNING, 'warned', 7)", "0") == Array("$-1\r\n".utf8))
        _ = try connection.call("EVAL", "redis.log(redis.LOG_NOTICE, 'noticed')", "0")
        _ = try connection.call("EVAL", "redis.log(redis.LOG_DEBUG, 'debugged')", "0")
        _ = try connection.call("FUNCTION", "LOAD", "#!lua name=loglib\nredis.log(redis.LOG_WARNING, 'loading')\nredis.register_function('f', function() return 1 end)")
        try connection.client.send(RESPValue.command(Self.words("SHUTDOWN NOSAVE")))
        #expect(ours.process.waitForExit(within: 10) != nil)
        let log = ours.process.standardError()
        #expect(log.contains("warning") && log.contains("warned 7"), "\(log)")
        #expect(log.contains("noticed") && log.contains("loading"), "\(log)")
        #expect(!log.contains("debugged"), "\(log)")
    }

    @Test func busyScriptsGetRedisReplies() throws {
        let oracle = try RedisOracle()
        defer { oracle.stop() }
        let ours = try Reactord()
        defer { ours.stop() }
        var theirs = Transcript()
        try Self.scenario(port: oracle.port, &theirs)
        var mine = Transcript()
        try Self.scenario(port: ours.port, &mine)
        #expect(ours.process.waitForExit(within: 10) != nil, "reactord still running after SHUTDOWN NOSAVE")
        #expect(mine.entries.count == theirs.entries.count)
        var differences: [String] = []
        for (a, b) in zip(mine.entries, theirs.entries) where a.0 != b.0 || a.1 != b.1 {
            differences.append("\(a.0): reactord \(String(decoding: a.1, as: UTF8.self).debugDescription) redis \(String(decoding: b.1, as: UTF8.self).debugDescription)")
        }
        #expect(differences.isEmpty, "\(differences.count) differences:\n\(differences.joined(separator: "\n"))")
        print("differential (busy scripts): \(mine.entries.count) replies")
    }
}
