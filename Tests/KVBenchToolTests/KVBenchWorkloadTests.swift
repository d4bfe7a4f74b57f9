// kvbench's collection and script workloads (`--workload hash|set|script`) against redis-server,
// the reference they must drive as they drive reactord: the counts add up, the preload leaves
// exactly the hashes and sets it should, reads of preloaded elements all hit, EVALSHA runs the
// script loaded once, and bad input is refused before any load.

import Foundation
import Testing

@Suite struct KVBenchWorkloadTests {
    @Test("--workload hash: HSET preloads --keyspace fields in hashes of --fields; HGETs of them all hit")
    func hashWorkload() throws {
        let redis = try KVBenchRedis.start()
        defer { redis.stop() }
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "hash",
                                          "--keyspace", "250", "--fields", "10", "--preload", "--ratio", "0:1",
                                          "-n", "2000", "-c", "4", "-P", "4", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        #expect(object["requests"] as? Int == 2000)
        #expect(object["errors"] as? Int == 0)
        #expect(object["misses"] as? Int == 0)
        #expect(object["preload_errors"] as? Int == 0)
        #expect(object["workload"] as? String == "hash")
        let client = try RESPTestClient(port: redis.port)
        #expect(try client.call("DBSIZE") == .integer(25))
        #expect(try client.call("HLEN", "kvbench:000024") == .integer(10))
        #expect(try client.call("HGET", "kvbench:000024", "f000249") == .bulk("abcdefghijklmnop"))
        #expect(try client.call("TYPE", "kvbench:000000") == .simple("hash"))
    }

    @Test("--workload set: SADD writes members m<element> into sets of --fields; mixed load has no errors")
    func setWorkload() throws {
        let redis = try KVBenchRedis.start()
        defer { redis.stop() }
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "set",
                                          "--keyspace", "100", "--fields", "20", "--preload", "-n", "1000", "-c", "2",
                                          "--key-prefix", "s:", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        #expect(object["requests"] as? Int == 1000)
        #expect(object["errors"] as? Int == 0)
        #expect(object["misses"] as? Int == 0)
        let client = try RESPTestClient(port: redis.port)
        #expect(try client.call("DBSIZE") == .integer(5))
        #expect(try client.call("SCARD", "s:000004") == .integer(20))
        #expect(try client.call("SISMEMBER", "s:000004", "m000099") == .integer(1))
    }

    @Test("--workload script: the script is loaded once and every request is an EVALSHA of it")
    func scriptWorkload() throws {
        let redis = try KVBenchRedis.start()
        defer { redis.stop() }
        let directory = try TemporaryDirectory()
        let path = directory.path + "/count.lua"
        try "return redis.call('INCR', KEYS[1])".write(toFile: path, atomically: true, encoding: .utf8)
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "script",
                                          "--script", path, "--keyspace", "7", "-n", "700", "-c", "3", "-P", "2",
                                          "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        #expect(object["errors"] as? Int == 0)
        let client = try RESPTestClient(port: redis.port)
        // Every call incremented one of the seven keys: the counts add up to the requests sent.
        var total = 0
        for key in 0..<7 {
            guard case .bulk(let value?) = try client.call("GET", "kvbench:00000\(key)") else { continue }
            total += Int(String(decoding: value, as: UTF8.self)) ?? 0
        }
        #expect(total == 700)
        guard case .bulk(let info?) = try client.call("INFO", "commandstats") else {
            Issue.record("INFO commandstats did not answer a bulk string")
            return
        }
        let text = String(decoding: info, as: UTF8.self)
        #expect(text.contains("cmdstat_script|load:calls=1,"), "\(text)")
        #expect(text.contains("cmdstat_evalsha:calls=700,"), "\(text)")
    }

    @Test("a script that does not compile ends the run before any load, naming the server's error")
    func scriptThatDoesNotCompile() throws {
        let redis = try KVBenchRedis.start()
        defer { redis.stop() }
        let directory = try TemporaryDirectory()
        let path = directory.path + "/broken.lua"
        try "this is not lua".write(toFile: path, atomically: true, encoding: .utf8)
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "script",
                                          "--script", path, "-n", "100", "-c", "2"])
        #expect(run.status == 1, "\(run)")
        #expect(run.stderr.contains("SCRIPT LOAD") && run.stderr.contains("Error compiling script"), "\(run.stderr)")
    }

    @Test("bad workload flags: one line, exit 2", arguments: [
        ["--workload", "hash"],  // the line protocol has no HSET
        ["--workload", "queue2"],
        ["--protocol", "resp", "--workload", "set", "--fields", "0"],
        ["--protocol", "resp", "--script", "/dev/null"],
        ["--protocol", "resp", "--workload", "script", "--script", "/nonexistent/script.lua"],
    ])
    func badWorkloadFlags(arguments: [String]) throws {
        let run = try KVBenchProcess.run(arguments + ["-n", "10"])
        #expect(run.status == 2, "\(run)")
        #expect(run.stderr.split(separator: "\n").count == 1 && run.stderr.hasPrefix("kvbench: "), "\(run.stderr)")
    }
}

@Suite struct KVBenchFlowTests {
    @Test("--workload queue: every element pushed is popped once by the consumers waiting in BRPOP")
    func queueFlow() throws {
        let redis = try KVBenchRedis.start()
        defer { redis.stop() }
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "queue",
                                          "-c", "2", "--consumers", "3", "-P", "4", "-n", "3000", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        #expect(object["requests"] as? Int == 3000)
        #expect(object["delivered"] as? Int == 3000)
        #expect(object["lost"] as? Int == 0 && object["duplicated"] as? Int == 0, "\(run.stdout)")
        #expect(object["errors"] as? Int == 0)
        #expect(object["latency_samples"] as? Int == 3000)
        let client = try RESPTestClient(port: redis.port)
        #expect(try client.call("LLEN", "kvbench:queue") == .integer(0))
    }

    @Test("--workload pubsub: each message reaches every subscriber once; open loop keeps its schedule")
    func pubsubFlow() throws {
        let redis = try KVBenchRedis.start()
        defer { redis.stop() }
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "pubsub",
                                          "-c", "1", "--consumers", "5", "-P", "8", "-n", "1000", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        #expect(object["requests"] as? Int == 1000)
        #expect(object["delivered"] as? Int == 5000)
        #expect(object["lost"] as? Int == 0 && object["duplicated"] as? Int == 0, "\(run.stdout)")
        let paced = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "pubsub",
                                            "-c", "2", "--consumers", "2", "-P", "8", "--rate", "500", "--duration", "1"])
        #expect(paced.status == 0, "stderr: \(paced.stderr)")
        #expect(paced.stdout.contains("0 LOST, 0 DUPLICATED") && paced.stdout.contains("intended 500 ops/s"), "\(paced.stdout)")
    }

    @Test("--workload scheduler: every job ZADDed is taken once, by ZRANGEBYSCORE + ZREM, once due")
    func schedulerFlow() throws {
        let redis = try KVBenchRedis.start()
        defer { redis.stop() }
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "scheduler",
                                          "-c", "2", "--consumers", "3", "-P", "4", "-n", "2000", "--delay-ms", "20", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        #expect(object["requests"] as? Int == 2000)
        #expect(object["delivered"] as? Int == 2000)
        #expect(object["lost"] as? Int == 0 && object["duplicated"] as? Int == 0, "\(run.stdout)")
        let client = try RESPTestClient(port: redis.port)
        #expect(try client.call("ZCARD", "kvbench:schedule") == .integer(0))
    }

    @Test("--workload pubsub over channels and patterns: a message reaches exactly its channel's subscribers")
    func pubsubChannelsAndPatterns() throws {
        let redis = try KVBenchRedis.start()
        defer { redis.stop() }
        for mode in [[], ["--patterns"]] {
            // 7 subscribers over 3 channels: 3, 2 and 2 of them; 300 messages, 100 per channel.
            let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "pubsub",
                                              "-c", "2", "--consumers", "7", "--channels", "3", "-n", "300", "--json"] + mode)
            #expect(run.status == 0, "stderr: \(run.stderr)")
            let object = try KVBenchProcess.json(run.stdout)
            #expect(object["delivered"] as? Int == 700, "\(mode): \(run.stdout)")
            #expect(object["lost"] as? Int == 0 && object["duplicated"] as? Int == 0, "\(mode): \(run.stdout)")
        }
    }

    @Test("--slow-subscribers: a subscriber that never reads is closed by the server at its output limit, and counted")
    func slowSubscriberIsClosed() throws {
        let redis = try KVBenchRedis.start(["--client-output-buffer-limit", "pubsub 256kb 0 0"])
        defer { redis.stop() }
        // More than the kernel's socket buffers hold for it (a few MiB) plus the server's limit.
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "pubsub",
                                          "-c", "1", "--consumers", "1", "--slow-subscribers", "1", "--value-size", "16000",
                                          "-n", "1100", "--json"], timeout: 120)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        #expect(object["slow_subscribers_closed"] as? Int == 1, "\(run.stdout)")
        #expect(object["delivered"] as? Int == 1100 && object["lost"] as? Int == 0, "\(run.stdout)")
    }

    @Test("a queue nobody can push to: the producers' errors are counted and named, nothing is delivered")
    func queueOnWrongType() throws {
        let redis = try KVBenchRedis.start()
        defer { redis.stop() }
        let client = try RESPTestClient(port: redis.port)
        #expect(try client.call("SET", "kvbench:queue", "a string") == .simple("OK"))
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "queue",
                                          "-c", "1", "--consumers", "1", "-n", "50"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.contains("errors      ") && run.stdout.contains("WRONGTYPE"), "\(run.stdout)")
    }

    @Test("flow flags that make no sense are refused: one line, exit 2", arguments: [
        ["--protocol", "resp", "--workload", "queue", "--sweep", "1"],
        ["--protocol", "resp", "--workload", "pubsub", "--preload"],
        ["--protocol", "resp", "--workload", "kv", "--consumers", "3"],
        ["--protocol", "resp", "--workload", "queue", "--consumers", "0"],
        ["--protocol", "resp", "--workload", "queue", "--channels", "4"],
        ["--protocol", "resp", "--workload", "scheduler", "--delay-ms", "-1"],
    ])
    func badFlowFlags(arguments: [String]) throws {
        let run = try KVBenchProcess.run(arguments + ["-n", "10"])
        #expect(run.status == 2, "\(run)")
        #expect(run.stderr.split(separator: "\n").count == 1 && run.stderr.hasPrefix("kvbench: "), "\(run.stderr)")
    }
}
