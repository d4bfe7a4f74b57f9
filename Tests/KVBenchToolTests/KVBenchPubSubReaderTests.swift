// kvbench's pub/sub subscribers on reader loops of their own (`--threads`) and its pub/sub sweep
// (`--sweep` with `--workload pubsub`), against redis-server: every message reaches every
// subscriber of its channel once whatever the share of subscribers each loop owns, a subscriber
// the server closes on a reader loop ends the run with exit 3, and the sweep's steps and best rate
// follow its rules.

import Foundation
import Testing

@Suite struct KVBenchPubSubReaderTests {
    @Test("--threads: subscribers spread over reader loops each get every message of their channel once", arguments: [
        ["--threads", "3"], ["--threads", "3", "--patterns"], ["--threads", "16"],
    ])
    func readerLoops(mode: [String]) throws {
        let redis = try KVBenchRedis.start()
        defer { redis.stop() }
        // 7 subscribers over 3 channels (3, 2 and 2 of them); 300 messages, 100 per channel. With
        // --threads 16, more loops than subscribers: one subscriber per loop.
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "pubsub",
                                          "-c", "2", "-P", "4", "--consumers", "7", "--channels", "3", "-n", "300",
                                          "--json"] + mode)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        #expect(object["requests"] as? Int == 300, "\(mode): \(run.stdout)")
        #expect(object["delivered"] as? Int == 700, "\(mode): \(run.stdout)")
        #expect(object["lost"] as? Int == 0 && object["duplicated"] as? Int == 0, "\(mode): \(run.stdout)")
        #expect(object["latency_samples"] as? Int == 700, "\(mode): \(run.stdout)")
        #expect(object["errors"] as? Int == 0, "\(mode): \(run.stdout)")
    }

    @Test("--threads with an open-loop schedule and AUTH: the schedule is kept and nothing is lost")
    func readerLoopsOpenLoopWithPassword() throws {
        let redis = try KVBenchRedis.start(["--requirepass", "sesame"])
        defer { redis.stop() }
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "pubsub",
                                          "-c", "2", "-P", "8", "--consumers", "40", "--channels", "4", "--threads", "2",
                                          "--rate", "400", "--duration", "1", "--password", "sesame", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        // A publication due in the run's last moment may be left unsent when the duration ends
        // (counted as unsent, not lost); every one sent reaches its channel's 10 subscribers.
        let requests = try #require(object["requests"] as? Int, "\(run.stdout)")
        #expect(requests + (object["unsent_requests"] as? Int ?? 0) == 400, "\(run.stdout)")
        #expect(requests >= 390, "\(run.stdout)")
        #expect(object["delivered"] as? Int == requests * 10, "\(run.stdout)")
        #expect(object["lost"] as? Int == 0 && object["duplicated"] as? Int == 0, "\(run.stdout)")
        let refused = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "pubsub",
                                              "-c", "1", "--consumers", "4", "--threads", "2", "-n", "10",
                                              "--password", "wrong"])
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("authentication") && refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
    }

    @Test("a subscriber the server closes on a reader loop ends the run: one line naming it, exit 3")
    func subscriberClosedOnReaderLoop() throws {
        let redis = try KVBenchRedis.start()
        defer { redis.stop() }
        let port = redis.port
        // Once all 6 subscribers are subscribed, the server closes them (CLIENT KILL TYPE pubsub).
        let killer = Thread {
            guard let client = try? RESPTestClient(port: port) else { return }
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if case .array(let items?)? = try? client.call("PUBSUB", "NUMSUB", "kvbench:ch:0:x"),
                   items.count == 2, items[1] == .integer(6) {
                    _ = try? client.call("CLIENT", "KILL", "TYPE", "pubsub")
                    return
                }
                usleep(10_000)
            }
        }
        killer.start()
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(port)", "--workload", "pubsub",
                                          "-c", "1", "--consumers", "6", "--threads", "3", "--rate", "100",
                                          "--duration", "20"], timeout: 60)
        #expect(run.status == 3, "\(run)")
        #expect(run.stderr.contains("closed a subscriber") && run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
    }

    @Test("--sweep with --workload pubsub: rising steps of messages per second, each whole, and the best rate within the target")
    func pubsubSweep() throws {
        let redis = try KVBenchRedis.start()
        defer { redis.stop() }
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "pubsub",
                                          "-c", "2", "--consumers", "20", "--channels", "4", "--threads", "2",
                                          "--sweep", "20", "--duration", "0.3", "--json"], timeout: 180)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        let steps = try #require(object["steps"] as? [[String: Any]], "\(run.stdout)")
        let ceiling = try #require(object["ceiling_ops_per_sec"] as? Double)
        #expect(ceiling > 0)
        #expect(!steps.isEmpty)
        var previous = 0.0
        var best = 0.0
        for (index, step) in steps.enumerated() {
            let rate = try #require(step["intended_rate"] as? Double)
            if index == 0 { #expect(abs(rate - ceiling * 0.1) <= 0.1, "\(rate) vs \(ceiling)") }
            else { #expect(abs(rate - previous * 1.25) <= 0.2, "\(steps)") }
            previous = rate
            let requests = try #require(step["requests"] as? Int)
            let delivered = try #require(step["delivered"] as? Int)
            let lost = try #require(step["lost"] as? Int)
            let within = try #require(step["within_target"] as? Bool)
            // Every message reaches its channel's 5 subscribers (20 over 4 channels), or is counted lost.
            #expect(delivered + lost == requests * 5, "\(step)")
            // Only the last step may miss the target: the sweep stops there.
            if index < steps.count - 1 { #expect(within, "\(steps)") }
            if within {
                #expect(lost == 0 && step["duplicated"] as? Int == 0, "\(step)")
                #expect(try #require(step["p99_us"] as? Int) <= 20_000, "\(step)")
                best = max(best, rate)
            }
        }
        #expect(abs((object["best_rate"] as? Double ?? -1) - best) <= 0.1, "\(run.stdout)")
        let text = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--workload", "pubsub",
                                           "-c", "1", "--consumers", "2", "--sweep", "0.001", "--duration", "0.2"], timeout: 120)
        #expect(text.status == 0, "stderr: \(text.stderr)")
        #expect(text.stdout.contains("workload pubsub (2 subscribers on 1 channels)") && text.stdout.contains("best: "), "\(text.stdout)")
    }

    @Test("reader-loop and sweep flags that make no sense are refused: one line, exit 2", arguments: [
        ["--protocol", "resp", "--workload", "pubsub", "--threads", "0"],
        ["--protocol", "resp", "--workload", "pubsub", "--threads", "65"],
        ["--protocol", "resp", "--workload", "kv", "--threads", "2"],
        ["--protocol", "resp", "--workload", "queue", "--threads", "2"],
        ["--protocol", "resp", "--workload", "scheduler", "--sweep", "1"],
        ["--protocol", "resp", "--workload", "pubsub", "--sweep", "1", "--rate", "100"],
    ])
    func badReaderFlags(arguments: [String]) throws {
        let run = try KVBenchProcess.run(arguments + (arguments.contains("--sweep") ? [] : ["-n", "10"]))
        #expect(run.status == 2, "\(run)")
        #expect(run.stderr.split(separator: "\n").count == 1 && run.stderr.hasPrefix("kvbench: "), "\(run.stderr)")
    }
}
