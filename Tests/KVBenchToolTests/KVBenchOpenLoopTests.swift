// kvbench beyond the closed loop, end to end against the built binary: the open loop and its
// coordinated-omission correction (a fake server that pauses 200 ms once), the Zipf key
// generator checked against the analytic distribution, --key-prefix, --password, --sweep and its
// plot, and --protocol memcache against a memcached the test starts (127.0.0.1, a kernel-chosen
// port, stopped by PID).

import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension KVBenchTests {
    @Test("--rate: requests follow the schedule (n/rate seconds), exact counts, intended_rate in the JSON")
    func openLoopKeepsTheSchedule() throws {
        // A CI machine busy compiling can stall kvbench itself for tens of ms, and then the
        // schedule truly was not kept. Such a run says so by its own send lag (how late requests
        // left): it is run again, at most three times; a run the client sent on time must keep it.
        var attempt = 0
        var server: KVBenchFakeServer
        var run: KVBenchProcess.Outcome
        var object: [String: Any]
        repeat {
            attempt += 1
            server = try KVBenchFakeServer(errorKey: nil)
            run = try KVBenchProcess.run(["--port", "\(server.port)", "--rate", "2000", "-n", "1000", "-c", "4", "--json"])
            #expect(run.status == 0, "stderr: \(run.stderr)")
            object = try KVBenchProcess.json(run.stdout)
            if object["schedule_kept"] as? Bool == true || attempt == 3 { break }
            server.stop()
            print("kvbench open loop: schedule not kept on attempt \(attempt), send lag max \(object["send_lag_max_us"] ?? "?") µs")
        } while (object["send_lag_max_us"] as? Int ?? 0) >= 20_000
        defer { server.stop() }
        #expect(object["requests"] as? Int == 1000)
        #expect(object["intended_rate"] as? Double == 2000)
        #expect(object["schedule_kept"] as? Bool == true, "\(run.stdout)")
        // Request 999 is due 0.4995 s after request 0: an open loop cannot finish sooner.
        let elapsed = try #require(object["elapsed_s"] as? Double)
        #expect(elapsed >= 0.499, "\(run.stdout)")
        let rate = try #require(object["ops_per_sec"] as? Double)
        #expect(rate <= 2002 && rate >= 1500, "\(run.stdout)")
        server.stop()
        #expect(server.requestsHandled == 1000)
    }

    @Test("--rate far above what the server can do: the summary says the schedule was not kept")
    func openLoopSaysWhenTheScheduleIsNotKept() throws {
        let server = try KVBenchFakeServer(errorKey: nil)
        defer { server.stop() }
        let arguments = ["--port", "\(server.port)", "--rate", "50000000", "--duration", "0.5", "-c", "2"]
        let run = try KVBenchProcess.run(arguments)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.contains("SCHEDULE NOT KEPT") && run.stdout.contains("intended 50000000 ops/s"), "\(run.stdout)")
        let json = try KVBenchProcess.run(arguments + ["--json"])
        let object = try KVBenchProcess.json(json.stdout)
        #expect(object["schedule_kept"] as? Bool == false)
        #expect((object["unsent_requests"] as? Int ?? 0) > 0)
        #expect((object["ops_per_sec"] as? Double ?? .infinity) < 0.95 * 50_000_000)
    }

    @Test("a 200 ms pause shows in the open loop's p99 and max, and only in the closed loop's max")
    func openLoopCorrectsCoordinatedOmission() throws {
        // Open loop at 2,000 ops/s for 2 s: the ~400 requests due during the pause wait for it,
        // late by 200 ms down to nothing, about a tenth of the samples. Closed loop over the same
        // pause: the four requests in flight wait 200 ms, nothing else was sent meanwhile.
        // A run in which kvbench itself was stalled by a busy machine (its send lag says so, beyond
        // the server's pause) is run again, at most three times.
        var attempt = 0
        var openRun: KVBenchProcess.Outcome
        var o: [String: Any]
        repeat {
            attempt += 1
            let open = try KVBenchFakeServer(errorKey: nil, stallOnceAfter: 0.8)
            defer { open.stop() }
            openRun = try KVBenchProcess.run(["--port", "\(open.port)", "--rate", "2000", "--duration", "2", "-c", "4",
                                              "--json"])
            #expect(openRun.status == 0, "stderr: \(openRun.stderr)")
            o = try KVBenchProcess.json(openRun.stdout)
        } while o["schedule_kept"] as? Bool != true && attempt < 3
            && (o["send_lag_p99_us"] as? Int ?? 0) >= 20_000
        let closed = try KVBenchFakeServer(errorKey: nil, stallOnceAfter: 0.8)
        defer { closed.stop() }
        let closedRun = try KVBenchProcess.run(["--port", "\(closed.port)", "--duration", "2", "-c", "4", "--json"])
        #expect(closedRun.status == 0, "stderr: \(closedRun.stderr)")
        let c = try KVBenchProcess.json(closedRun.stdout)
        let openP90 = o["p90_us"] as? Int ?? 0, openP99 = o["p99_us"] as? Int ?? 0, openMax = o["max_us"] as? Int ?? 0
        let closedP99 = c["p99_us"] as? Int ?? .max, closedMax = c["max_us"] as? Int ?? 0
        let numbers = "open p90 \(openP90) p99 \(openP99) max \(openMax) µs; closed p99 \(closedP99) max \(closedMax) µs"
        #expect(o["schedule_kept"] as? Bool == true, "\(openRun.stdout)")
        #expect(openP99 >= 100_000, "the pause must show in the open loop's p99: \(numbers)")
        #expect(openMax >= 190_000 && openMax < 1_000_000, "\(numbers)")
        #expect(closedMax >= 190_000, "the closed loop still sees the pause in max: \(numbers)")
        #expect(closedP99 < 50_000, "…but not in p99 (coordinated omission): \(numbers)")
        #expect(openP99 > 2 * closedP99, "\(numbers)")
        print("kvbench coordinated omission: \(numbers)")
    }

    @Test("--distribution zipf: the hottest 1% of keys get their analytic share; uniform gives them 1%")
    func zipfKeysFollowTheDistribution() throws {
        let keyspace = 5000, requests = 50_000, hottest = keyspace / 100
        func share(_ distribution: String, prefix: String) throws -> Double {
            let server = try KVBenchFakeServer(errorKey: nil)
            defer { server.stop() }
            let run = try KVBenchProcess.run(["--port", "\(server.port)", "-n", "\(requests)", "-c", "4", "-P", "32",
                                              "--keyspace", "\(keyspace)", "--distribution", distribution, "--seed", "7",
                                              "--key-prefix", prefix, "--json"])
            #expect(run.status == 0, "stderr: \(run.stderr)")
            server.stop()
            let counts = server.keyCounts
            #expect(counts.values.reduce(0, +) == requests)
            #expect(counts.keys.allSatisfy { $0.hasPrefix(prefix) && $0.count == prefix.count + 6 }, "keys: \(counts.keys.prefix(3))")
            // Key number r-1 is the key of rank r: the hottest 1% are keys 0..<50.
            let hot = (0..<hottest).reduce(0) { sum, key in
                let digits = String(key)
                return sum + (counts[prefix + String(repeating: "0", count: 6 - digits.count) + digits] ?? 0)
            }
            return Double(hot) / Double(requests)
        }
        func harmonic(_ n: Int, _ s: Double) -> Double { (1...n).reduce(0) { $0 + pow(Double($1), -s) } }
        let expected99 = harmonic(hottest, 0.99) / harmonic(keyspace, 0.99)  // 0.593
        let zipf = try share("zipf", prefix: "kvbench:")
        #expect(abs(zipf - expected99) < 0.01, "zipf:0.99 hottest 1% share \(zipf), analytic \(expected99)")
        let expected12 = harmonic(hottest, 1.2) / harmonic(keyspace, 1.2)
        let steep = try share("zipf:1.2", prefix: "z:")
        #expect(abs(steep - expected12) < 0.01, "zipf:1.2 hottest 1% share \(steep), analytic \(expected12)")
        let uniform = try share("uniform", prefix: "u-")
        #expect(abs(uniform - 0.01) < 0.003, "uniform hottest 1% share \(uniform)")
    }

    @Test("--password: every connection authenticates first; a wrong one ends the run with exit 1 and one line")
    func passwordAuthenticatesFirst() throws {
        let server = try KVBenchFakeServer(errorKey: nil, password: "s3cret")
        defer { server.stop() }
        let run = try KVBenchProcess.run(["--port", "\(server.port)", "--password", "s3cret", "-n", "500", "-c", "3", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        #expect(object["requests"] as? Int == 500)
        #expect(object["errors"] as? Int == 0, "\(run.stdout)")
        #expect(server.passwordsTried == ["s3cret", "s3cret", "s3cret"])
        let wrong = try KVBenchProcess.run(["--port", "\(server.port)", "--password", "nope", "-n", "500", "-c", "3"])
        #expect(wrong.status == 1)
        #expect(wrong.stderr.split(separator: "\n").count == 1 && wrong.stderr.contains("authentication")
            && wrong.stderr.contains("ERR invalid password"), "\(wrong.stderr)")
        #expect(wrong.stdout.isEmpty)
    }

    @Test("--password with RESP: redis-server with requirepass is driven without errors")
    func passwordWithRedis() throws {
        let redis = try KVBenchRedis.start(["--requirepass", "s3cret"])
        defer { redis.stop() }
        let run = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "--password", "s3cret",
                                          "-n", "1000", "-c", "2", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        #expect(object["requests"] as? Int == 1000)
        #expect(object["errors"] as? Int == 0, "\(run.stdout)")
        let without = try KVBenchProcess.run(["--protocol", "resp", "--port", "\(redis.port)", "-n", "100", "-c", "1", "--json"])
        #expect(without.status == 0)
        #expect(try KVBenchProcess.json(without.stdout)["errors"] as? Int == 100, "NOAUTH must count as errors")
    }

    @Test("--protocol memcache drives memcached: exact counts, no errors, preloaded GETs all hit; open loop too")
    func memcacheAgainstMemcached() throws {
        let memcached = try KVBenchMemcached.start()
        defer { memcached.stop() }
        let run = try KVBenchProcess.run(["--protocol", "memcache", "--port", "\(memcached.port)", "-n", "2000", "-c", "4",
                                          "-P", "4", "--value-size", "100", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        #expect(object["requests"] as? Int == 2000)
        #expect(object["errors"] as? Int == 0, "\(run.stdout)")
        #expect((object["misses"] as? Int ?? 0) > 0, "GETs of keys never set are misses (END)")

        let hits = try KVBenchProcess.run(["--protocol", "memcache", "--port", "\(memcached.port)", "-n", "1000", "-c", "2",
                                           "--ratio", "0:1", "--keyspace", "300", "--preload", "--distribution", "zipf",
                                           "--json"])
        #expect(hits.status == 0, "stderr: \(hits.stderr)")
        let hitObject = try KVBenchProcess.json(hits.stdout)
        #expect(hitObject["requests"] as? Int == 1000)
        #expect(hitObject["misses"] as? Int == 0, "\(hits.stdout)")
        #expect(hitObject["errors"] as? Int == 0)
        #expect(hitObject["preloaded_keys"] as? Int == 300)

        let open = try KVBenchProcess.run(["--protocol", "memcache", "--port", "\(memcached.port)", "--rate", "3000",
                                           "-n", "900", "-c", "3", "--json"])
        #expect(open.status == 0, "stderr: \(open.stderr)")
        let openObject = try KVBenchProcess.json(open.stdout)
        #expect(openObject["requests"] as? Int == 900)
        #expect(openObject["errors"] as? Int == 0)
        #expect(openObject["intended_rate"] as? Double == 3000)
        // Request 899 is due 0.2997 s after request 0: paced, not sent as fast as memcached answers.
        // (Whether 3,000/s was kept is the machine's business: the suite builds the fuzz package
        // meanwhile; keeping a schedule is asserted against the fake server, above.)
        #expect((openObject["elapsed_s"] as? Double ?? 0) >= 0.2996, "\(open.stdout)")
    }

    @Test("memcache replies dribbled one byte per write (VALUE line, data, END split anywhere) are parsed and counted")
    func memcacheRepliesSplitAcrossReads() throws {
        let server = try KVBenchFakeServer(errorKey: "kvbench:000004", dribble: true, memcache: true)
        defer { server.stop() }
        let run = try KVBenchProcess.run(["--protocol", "memcache", "--port", "\(server.port)", "-n", "400", "-c", "2",
                                          "-P", "4", "--keyspace", "10", "--value-size", "5", "--json"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let object = try KVBenchProcess.json(run.stdout)
        let requests = try #require(object["requests"] as? Int)
        let replies = try #require(object["replies"] as? Int)
        let errors = try #require(object["errors"] as? Int)
        #expect(requests == 400)
        #expect(replies + errors == requests)
        #expect(errors > 0, "SERVER_ERROR for kvbench:000004 must count as an error")
        #expect(object["last_error"] as? String == "SERVER_ERROR injected")
        // Over 10 keys, most GETs after the first SETs hit: VALUE replies were parsed, not only END.
        #expect((object["misses"] as? Int ?? 400) < 100, "\(run.stdout)")
        server.stop()
        #expect(server.keyCounts.values.reduce(0, +) == 400)
    }

    @Test("--sweep: steps from 10% of the ceiling rising 25% each until the target is passed; --json and --plot")
    func sweepFindsTheBestRate() throws {
        let server = try KVBenchFakeServer(errorKey: nil)
        defer { server.stop() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvbench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let svgPath = directory.appendingPathComponent("sweep.svg").path
        let run = try KVBenchProcess.run(["--port", "\(server.port)", "--sweep", "20", "--duration", "0.25", "-c", "2",
                                          "--json", "--plot", svgPath], timeout: 120)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.split(separator: "\n").count == 1)
        let object = try KVBenchProcess.json(run.stdout)
        let ceiling = try #require(object["ceiling_ops_per_sec"] as? Double)
        let steps = try #require(object["steps"] as? [[String: Any]])
        try #require(!steps.isEmpty)
        let rates = steps.compactMap { $0["intended_rate"] as? Double }
        #expect(abs(rates[0] - ceiling * 0.1) < 1)
        for (a, b) in zip(rates, rates.dropFirst()) { #expect(abs(b / a - 1.25) < 0.001, "\(rates)") }
        // Every step but the last is within the target; the last passed it or fell behind the
        // schedule (unless the step limit ended the sweep).
        for step in steps.dropLast() { #expect(step["within_target"] as? Bool == true, "\(step)") }
        let last = try #require(steps.last)
        if steps.count < 40 {
            let p99 = last["p99_us"] as? Int ?? 0
            let achieved = last["ops_per_sec"] as? Double ?? 0, asked = last["intended_rate"] as? Double ?? 1
            #expect(last["within_target"] as? Bool == false && (p99 > 20_000 || achieved < 0.95 * asked), "\(last)")
        }
        let best = try #require(object["best_rate"] as? Double)
        let within = steps.filter { $0["within_target"] as? Bool == true }.compactMap { $0["intended_rate"] as? Double }
        #expect(best == (within.max() ?? 0))

        let data = try Data(contentsOf: URL(fileURLWithPath: svgPath))
        let collector = KVBenchSVGCollector()
        let parser = XMLParser(data: data)
        parser.delegate = collector
        #expect(parser.parse(), "SVG does not parse: \(String(describing: parser.parserError))")
        #expect(collector.elements.filter { $0 == "polyline" }.count >= (steps.count > 1 ? 4 : 0))
        for label in ["p50", "p90", "p99", "p99.9", "throughput achieved (ops/s)", "latency (ms", "kvbench sweep"] {
            #expect(collector.text.contains(label), "plot lacks '\(label)'")
        }
    }

    @Test("--sweep without --json prints a table row per step and the best rate")
    func sweepPrintsATable() throws {
        let server = try KVBenchFakeServer(errorKey: nil)
        defer { server.stop() }
        let run = try KVBenchProcess.run(["--port", "\(server.port)", "--sweep", "0.001", "--duration", "0.2", "-c", "1"],
                                         timeout: 60)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.contains("closed-loop ceiling") && run.stdout.contains("rate asked") && run.stdout.contains("p99.9 ms"),
                "\(run.stdout)")
        // 1 µs is beyond any server: the first step misses, and the sweep says so.
        #expect(run.stdout.contains("best: none"), "\(run.stdout)")
    }
}
