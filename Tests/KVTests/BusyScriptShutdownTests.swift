// SHUTDOWN NOSAVE while a busy script that wrote is running: Redis exits without the script's
// writes (a script's effects reach its append-only file only once the script ends), and keeps
// everything acknowledged before it. The same scenario runs against a redis-server with an
// append-only file (`appendfsync always`) and against reactord (`--fsync always`); each server is
// restarted on its own files and what it holds is compared byte for byte.

import Foundation
import Testing

@Suite(.serialized) struct BusyScriptShutdownTests {
    typealias Transcript = BusyScriptTests.Transcript

    /// Before the shutdown: writes acknowledged, then a script that writes and never ends, stopped
    /// (with the server) by SHUTDOWN NOSAVE once other clients are answered `-BUSY`.
    static func stopDuringBusyScript(port: Int, _ transcript: inout Transcript) throws {
        let setup = try RawRESPConnection(port: port)
        let caller = try RawRESPConnection(port: port)
        let probe = try RawRESPConnection(port: port)
        transcript.add("SET keep", try setup.call("SET", "keep", "1"))
        transcript.add("RPUSH list", try setup.call("RPUSH", "list", "a", "b"))
        transcript.add("CONFIG SET", try setup.call("CONFIG", "SET", "busy-reply-threshold", "100"))
        try BusyScriptTests.send(
            "EVAL 'redis.call(\"set\", \"w\", \"1\") redis.call(\"incr\", \"keep\") redis.call(\"del\", \"list\") redis.call(\"hset\", \"h\", \"f\", \"v\") while true do end' 0",
            on: caller)
        transcript.add("PING busy", try BusyScriptTests.ping(probe, until: "-BUSY"))
        try probe.client.send(RESPValue.command(BusyScriptTests.words("SHUTDOWN NOSAVE")))
        let gone = pollFor(within: 10) { (try? RawRESPConnection(port: port).call("PING")) == nil }
        transcript.add("server gone", Array("\(gone)".utf8))
    }

    /// After the restart: what the server holds.
    static func inspect(port: Int, _ transcript: inout Transcript) throws {
        let connection = try RawRESPConnection(port: port)
        for line in ["GET keep", "GET w", "LRANGE list 0 -1", "HGETALL h", "DBSIZE"] {
            transcript.add(line, try connection.call(BusyScriptTests.words(line)))
        }
    }

    @Test func shutdownNoSaveDropsTheBusyScriptsWrites() throws {
        var theirs = Transcript()
        let redisFiles = try TemporaryDirectory("reactord-oracle-aof")
        defer { redisFiles.remove() }
        let redisArguments = ["--appendonly", "yes", "--appendfsync", "always", "--dir", redisFiles.path]
        do {
            let oracle = try RedisOracle(redisArguments)
            defer { oracle.stop() }
            try Self.stopDuringBusyScript(port: oracle.port, &theirs)
        }
        do {
            let oracle = try RedisOracle(redisArguments)
            defer { oracle.stop() }
            try Self.inspect(port: oracle.port, &theirs)
        }

        var mine = Transcript()
        let files = try TemporaryDirectory()
        defer { files.remove() }
        let arguments = [
            "--kv-port", "0", "--echo-port", "off", "--time-port", "off", "--file-port", "off",
            "--data-dir", files.path, "--fsync", "always",
        ]
        do {
            let ours = try ReactordProcess(arguments: arguments)
            defer { ours.kill() }
            try Self.stopDuringBusyScript(port: try ours.readyKVPort(), &mine)
            #expect(ours.waitForExit(within: 10) != nil, "reactord still running after SHUTDOWN NOSAVE")
        }
        do {
            let ours = try ReactordProcess(arguments: arguments)
            defer { ours.kill() }
            try Self.inspect(port: try ours.readyKVPort(), &mine)
        }

        #expect(mine.entries.count == theirs.entries.count)
        var differences: [String] = []
        for (a, b) in zip(mine.entries, theirs.entries) where a.0 != b.0 || a.1 != b.1 {
            differences.append("\(a.0): reactord \(String(decoding: a.1, as: UTF8.self).debugDescription) redis \(String(decoding: b.1, as: UTF8.self).debugDescription)")
        }
        #expect(differences.isEmpty, "\(differences.count) differences:\n\(differences.joined(separator: "\n"))")
        // What makes the comparison worth having: Redis kept the acknowledged writes, not the script's.
        #expect(theirs.entries.first { $0.0 == "GET keep" }?.1 == Array("$1\r\n1\r\n".utf8))
        print("differential (shutdown during a busy script): \(mine.entries.count) replies")
    }
}
