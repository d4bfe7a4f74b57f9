// The memory limit end to end: OOM replies past `--max-memory` under noeviction with reads, DEL and
// EXPIRE still served, connection buffers in the account, and the real binary flooded with SETs
// under noeviction and allkeys-lru, restarted, and found to agree with what it acknowledged (no
// evicted key comes back). Servers listen on 127.0.0.1, kernel-chosen ports, stopped by PID.

import Foundation
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct MemoryLimitServerTests {
    static let oom = RESPValue.error("OOM command not allowed when used memory > 'maxmemory'.")

    /// INFO's `name:value` fields.
    static func info(_ client: RESPTestClient, _ section: String = "everything") throws -> [String: String] {
        guard case .bulk(let text?) = try client.call("INFO", section) else { throw TestFailure("INFO gave no bulk") }
        var fields: [String: String] = [:]
        for line in String(decoding: text, as: UTF8.self).split(separator: "\r\n") where !line.hasPrefix("#") {
            if let colon = line.firstIndex(of: ":") { fields[String(line[..<colon])] = String(line[line.index(after: colon)...]) }
        }
        return fields
    }

    static func usedMemory(_ client: RESPTestClient) throws -> Int {
        try #require(Int(try Self.info(client, "memory")["used_memory"] ?? ""))
    }

    /// Sends `count` pipelined SETs of `key:<first + i>` and returns each reply, in order.
    static func pipelineSets(_ client: RESPTestClient, from first: Int, count: Int, valueBytes: Int) throws -> [RESPValue] {
        let value = [UInt8](repeating: UInt8(ascii: "v"), count: valueBytes)
        var requests: [UInt8] = []
        for i in first..<first + count { requests += RESPValue.command([Array("SET".utf8), Array("key:\(i)".utf8), value]) }
        try client.client.send(requests, deadline: .now + .seconds(30))
        return try (0..<count).map { _ in try client.read(deadline: .now + .seconds(30)) }
    }

    /// Fixes a socket's buffer size (`option` SO_RCVBUF or SO_SNDBUF), which stops its autotuning.
    static func setBuffer(_ fd: CInt, _ option: CInt, _ bytes: CInt) -> Bool {
        var value = bytes
        return setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<CInt>.size)) == 0
    }

    /// A socket's buffer size as the kernel reports it (twice what was set: it counts its overhead).
    static func buffer(_ fd: CInt, _ option: CInt) -> Int? {
        var value: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        return getsockopt(fd, SOL_SOCKET, option, &value, &length) == 0 ? Int(value) : nil
    }

    /// The bytes a TCP socket holds: TIOCOUTQ, written and not yet acknowledged; FIONREAD, received
    /// and not yet read.
    static func queued(_ fd: CInt, _ request: Int32) -> Int {
        var value: CInt = 0
        return ioctl(fd, UInt(request), &value) == 0 ? Int(value) : 0
    }

    /// OBJECT IDLETIME reads the per-key LRU stamp, which the loop's 100 ms clock advances: after
    /// 2.5 s untouched a key is at least 2 s idle, asking again does not reset it, and a GET does.
    @Test func objectIdletimeCountsSecondsSinceTheLastAccess() throws {
        try withKVServer(fsync: "no") { server, client in
            #expect(try client.call("SET", "k", "v") == .simple("OK"))
            #expect(try client.call("OBJECT", "IDLETIME", "k") == .integer(0))
            #expect(try client.call("OBJECT", "IDLETIME", "absent") == .bulk(nil))
            Thread.sleep(forTimeInterval: 2.5)  // time passing is what is measured, not a wait for an event
            guard case .integer(let idle) = try client.call("OBJECT", "IDLETIME", "k") else {
                Issue.record("OBJECT IDLETIME did not answer an integer")
                return
            }
            #expect(idle >= 2 && idle <= 30, "idle \(idle) s after 2.5 s")
            guard case .integer(let again) = try client.call("OBJECT", "IDLETIME", "k") else { return }
            #expect(again >= idle, "asking is not an access: \(idle) s, then \(again) s")
            #expect(try client.call("GET", "k") == .bulk("v"))
            #expect(try client.call("OBJECT", "IDLETIME", "k") == .integer(0))
        }
    }

    /// INFO cpu has Redis 7.0's six fields, seconds with six decimals, from getrusage(2): after some
    /// work the process has used CPU, and the loop thread no more than the whole process.
    @Test func infoCPUReportsTheProcessAndTheLoopThread() throws {
        try withKVServer(fsync: "no") { server, client in
            _ = try Self.pipelineSets(client, from: 0, count: 2000, valueBytes: 100)
            let fields = try Self.info(client, "cpu")
            let names = ["used_cpu_sys", "used_cpu_user", "used_cpu_sys_children", "used_cpu_user_children",
                         "used_cpu_sys_main_thread", "used_cpu_user_main_thread"]
            #expect(Set(fields.keys) == Set(names), "\(fields)")
            var seconds: [String: Double] = [:]
            for name in names {
                let text = fields[name] ?? ""
                let parts = text.split(separator: ".")
                #expect(parts.count == 2 && parts[1].count == 6 && parts.allSatisfy { $0.allSatisfy(\.isNumber) }, "\(name):\(text)")
                seconds[name] = Double(text)
            }
            let process = (seconds["used_cpu_sys"] ?? 0) + (seconds["used_cpu_user"] ?? 0)
            let loop = (seconds["used_cpu_sys_main_thread"] ?? 0) + (seconds["used_cpu_user_main_thread"] ?? 0)
            #expect(loop > 0 && loop <= process + 1e-6, "loop \(loop) s, process \(process) s")
        }
    }

    /// CLIENT LIST shows what each connection holds: a half-sent request as `qbuf`, replies a
    /// client does not read as `omem`, their sum as `tot-mem` (the same bytes the memory limit counts).
    ///
    /// How much of the unread replies the kernel takes is the kernel's business (loopback buffers
    /// autotune to tens of MiB on some machines), so the reader's receive buffer and the server's
    /// send buffer for it are fixed small (and read back), and `omem` is checked against what the
    /// server wrote: every reply it produced is either still its own (`omem`) or in one of the two
    /// sockets (SIOCOUTQ on its end, SIOCINQ on the reader's, read in this process).
    @Test func clientListShowsEachConnectionsBuffers() throws {
        try withKVServer(fsync: "no") { server, observer in
            let value = String(repeating: "v", count: 1 << 20)
            #expect(try observer.call("SET", "big", value) == .simple("OK"))
            func field(_ name: String, ofClient id: Int) throws -> Int? {
                guard case .bulk(let bytes?) = try observer.call("CLIENT", "LIST") else { return nil }
                let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("id=\(id) ") }
                let pair = line?.split(separator: " ").first { $0.hasPrefix(name + "=") }
                return pair.flatMap { Int($0.dropFirst(name.count + 1)) }
            }
            /// Asks until `condition` holds for the field (the server reads and writes on its own schedule).
            func waitFor(_ name: String, ofClient id: Int, _ condition: (Int) -> Bool) throws -> Int? {
                let deadline = ContinuousClock.now + .seconds(10)
                var last: Int?
                while ContinuousClock.now < deadline {
                    last = try field(name, ofClient: id)
                    if let last, condition(last) { return last }
                }
                return last
            }

            let halfSent = try RESPTestClient(port: server.kvPort)
            guard case .integer(let halfID) = try halfSent.call("CLIENT", "ID") else { Issue.record("no id"); return }
            let partial = Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n0123456789".utf8)
            try halfSent.client.send(partial)
            #expect(try waitFor("qbuf", ofClient: halfID) { $0 == partial.count } == partial.count)
            #expect(try field("tot-mem", ofClient: halfID) == partial.count)

            let small: CInt = 64 << 10
            let readerFD = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            try #require(readerFD >= 0 && Self.setBuffer(readerFD, SO_RCVBUF, small), "reader socket: errno \(errno)")
            let nonReader = try RESPTestClient(TestClient(socket: readerFD, host: "127.0.0.1", port: server.kvPort))
            guard case .integer(let readerID) = try nonReader.call("CLIENT", "ID") else { Issue.record("no id"); return }
            // The server is in this process: its end of the reader's connection is the descriptor
            // CLIENT LIST names.
            let serverFD = CInt(try #require(try field("fd", ofClient: readerID)))
            try #require(Self.setBuffer(serverFD, SO_SNDBUF, small), "server socket: errno \(errno)")
            let kernelHolds = try #require(Self.buffer(readerFD, SO_RCVBUF)) + (try #require(Self.buffer(serverFD, SO_SNDBUF)))
            let replyBytes = "$\(value.utf8.count)\r\n".utf8.count + value.utf8.count + 2
            // More than the two buffers can hold, so replies are left in the server whatever the kernel.
            let replies = (kernelHolds + 256 << 10) / replyBytes + 2
            let gets = (0..<replies).flatMap { _ in RESPValue.command([Array("GET".utf8), Array("big".utf8)]) }
            try nonReader.client.send(gets)
            // Once the server has stopped (its backlog past the high-water mark, reading paused), what
            // it produced is whole replies: in omem, or in the kernel.
            var last = (omem: -1, kernel: -1)
            let accounted = try pollFor(within: 10) {
                guard let omem = try field("omem", ofClient: readerID) else { return false }
                last = (omem, Self.queued(serverFD, TIOCOUTQ) + Self.queued(readerFD, FIONREAD))
                let again = try field("omem", ofClient: readerID)
                return omem > 0 && (omem + last.kernel) % replyBytes == 0 && omem == again
            }
            #expect(accounted, "omem \(last.omem) + \(last.kernel) bytes in the sockets is not a whole number of \(replyBytes)-byte replies")
            #expect(last.omem >= replyBytes - kernelHolds,
                    "\(replies) replies of \(replyBytes) bytes unread, at most \(kernelHolds) in the kernel, omem \(last.omem)")
            #expect(try field("qbuf", ofClient: readerID) ?? -1 >= 0)
            guard case .integer(let ownID) = try observer.call("CLIENT", "ID") else { return }
            #expect(try field("qbuf", ofClient: ownID) == 0, "the asking connection's request is being answered")
        }
    }

    @Test func pastTheLimitWritesGetOOMWhileReadsDeleteAndExpireWork() throws {
        try withKVServer(fsync: "no", configure: { $0.maxMemoryBytes = 256 << 10 }) { server, client in
            var stored = 0
            var refused = false
            while !refused && stored < 10_000 {
                let replies = try Self.pipelineSets(client, from: stored, count: 100, valueBytes: 100)
                for reply in replies {
                    if reply == Self.oom { refused = true } else if !refused {
                        #expect(reply == .simple("OK"))
                        stored += 1
                    }
                }
            }
            try #require(refused, "no OOM after \(stored) SETs of 100 bytes under a 256 KiB limit")
            #expect(try client.call("SET", "another", "v") == Self.oom)
            #expect(try client.call("APPEND", "key:0", "more") == Self.oom)
            #expect(try client.call("GET", "key:0") == .bulk(String(repeating: "v", count: 100)))
            #expect(try client.call("EXPIRE", "key:1", "1000") == .integer(1))
            #expect(try client.call("TTL", "key:1") == .integer(1000))
            let info = try Self.info(client)
            #expect(info["maxmemory"] == String(256 << 10) && info["maxmemory_policy"] == "noeviction")
            #expect(info["evicted_keys"] == "0")
            // Deleting brings the account back under the limit: writes are taken again.
            var deleted = 0
            for i in stride(from: 0, to: stored, by: 1) where deleted < 200 {
                #expect(try client.call("DEL", "key:\(i)") == .integer(1))
                deleted += 1
            }
            #expect(try Self.usedMemory(client) <= 256 << 10)
            #expect(try client.call("SET", "another", "v") == .simple("OK"))
            // The line protocol's wording, once past the limit again.
            #expect(try client.call("CONFIG", "SET", "maxmemory", "1kb") == .simple("OK"))
            let line = try TestClient(port: server.kvPort)
            #expect(try line.request("set x y") == "ERR out of memory")
            #expect(try line.request("get another") == "v")
        }
    }

    @Test func connectionBuffersAreInTheAccount() throws {
        try withKVServer(fsync: "no", configure: { $0.maxMemoryBytes = 64 << 20 }) { server, client in
            let before = try Self.usedMemory(client)
            // Another client sends most of a 200 KB value and stops: its input stays buffered.
            let partial = try TestClient(port: server.kvPort)
            try partial.send(Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200000\r\n".utf8) + [UInt8](repeating: 0x61, count: 150_000))
            let deadline = ContinuousClock.now + .seconds(10)
            var during = before
            while during < before + 150_000 && ContinuousClock.now < deadline { during = try Self.usedMemory(client) }
            #expect(during >= before + 150_000, "buffered input not counted: \(before) -> \(during)")
            partial.close()
            var after = during
            while after > before + 10_000 && ContinuousClock.now < deadline { after = try Self.usedMemory(client) }
            #expect(after <= before + 10_000, "a closed connection's buffers still counted: \(before) -> \(after)")
        }
    }

    @Test func aBulkPastTheRoomLeftIsRefusedAtItsLength() throws {
        try withKVServer(fsync: "no", configure: { $0.maxMemoryBytes = 1 << 20 }) { server, client in
            // Only the header: the reply comes before any of the 4 MB body was sent.
            try client.client.send(Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4000000\r\n".utf8))
            #expect(try client.read() == Self.oom)
            let (rest, eof) = client.client.read(until: { _ in false }, deadline: .now + .seconds(10))
            #expect(rest.isEmpty && eof, "the connection closes after the refusal")
        }
    }

    @Test func anEvictedWatchedKeyAbortsTheTransaction() throws {
        let dir = try TemporaryDirectory()
        let server = try InProcessServer.kv(dataDirectory: dir.path, fsync: "no") {
            $0.maxMemoryBytes = 128 << 10
            $0.evictionPolicy = .volatileLRU
        }
        defer { server.stop() }
        let watcher = try RESPTestClient(port: server.kvPort)
        // The only key with a deadline: the one volatile-lru may take.
        #expect(try watcher.call("SET", "watched", "v", "EX", "1000") == .simple("OK"))
        #expect(try watcher.call("WATCH", "watched") == .simple("OK"))
        let writer = try RESPTestClient(port: server.kvPort)
        var refused = false
        var next = 0
        while !refused && next < 20_000 {
            refused = try Self.pipelineSets(writer, from: next, count: 200, valueBytes: 100).contains(Self.oom)
            next += 200
        }
        #expect(refused, "plain keys cannot be evicted under volatile-lru: the writes end in OOM")
        #expect(try writer.call("EXISTS", "watched") == .integer(0))
        #expect(try Self.info(writer)["evicted_keys"] == "1")
        #expect(try watcher.call("MULTI") == .simple("OK"))
        #expect(try watcher.call("GET", "watched") == .simple("QUEUED"))
        #expect(try watcher.call("EXEC") == .array(nil), "the eviction counts as a change to the watched key")
    }

    // MARK: The binary

    static func start(_ dir: TemporaryDirectory, policy: String) throws -> (ReactordProcess, Int) {
        let process = try ReactordProcess(arguments: [
            "--kv-port", "0", "--echo-port", "off", "--time-port", "off", "--file-port", "off", "--data-dir", dir.path,
            "--fsync", "everysec", "--log-level", "error", "--max-memory", "2mb", "--eviction", policy,
        ])
        return (process, try process.readyKVPort())
    }

    static func stop(_ process: ReactordProcess) {
        #expect(kill(process.pid, SIGTERM) == 0)
        #expect(process.waitForExit(within: 10) == 0)
    }

    @Test func noevictionFloodStopsAtOOMAndARestartAgrees() throws {
        let dir = try TemporaryDirectory()
        let (first, port) = try Self.start(dir, policy: "noeviction")
        defer { first.kill() }
        let client = try RESPTestClient(port: port)
        var acknowledged = 0
        var refused = 0
        var next = 0
        while refused == 0 && next < 100_000 {
            for reply in try Self.pipelineSets(client, from: next, count: 500, valueBytes: 60) {
                if reply == .simple("OK") { acknowledged += 1 } else if reply == Self.oom { refused += 1 } else {
                    Issue.record("unexpected reply \(reply)")
                }
            }
            next += 500
        }
        try #require(refused > 0, "no OOM after \(next) SETs under --max-memory 2mb")
        #expect(try client.call("GET", "key:0") == .bulk(String(repeating: "v", count: 60)))
        let keys = try client.call("DBSIZE")
        #expect(keys == .integer(acknowledged))
        Self.stop(first)

        let (second, port2) = try Self.start(dir, policy: "noeviction")
        defer { second.kill() }
        let again = try RESPTestClient(port: port2)
        #expect(try again.call("DBSIZE") == keys, "the restart holds exactly the acknowledged keys")
        #expect(try again.call("SET", "one-more", "v") == Self.oom, "and is still past its limit")
        Self.stop(second)
    }

    @Test func allkeysLRUFloodStaysUnderTheLimitAndARestartAgrees() throws {
        let dir = try TemporaryDirectory()
        let (first, port) = try Self.start(dir, policy: "allkeys-lru")
        defer { first.kill() }
        let client = try RESPTestClient(port: port)
        let limit = 2 << 20
        var next = 0
        // About 8 MB of SETs through a 2 MB limit, INFO sampled after every batch.
        while next < 60_000 {
            for reply in try Self.pipelineSets(client, from: next, count: 1000, valueBytes: 60) {
                #expect(reply == .simple("OK"))
            }
            next += 1000
            let used = try Self.usedMemory(client)
            #expect(used <= limit, "used_memory \(used) past maxmemory \(limit) after \(next) SETs")
        }
        let info = try Self.info(client)
        let evicted = try #require(Int(info["evicted_keys"] ?? ""))
        guard case .integer(let count) = try client.call("DBSIZE") else { throw TestFailure("DBSIZE") }
        #expect(evicted > 0 && evicted + count == 60_000, "evicted \(evicted), kept \(count)")
        guard case .array(let present?) = try client.call("KEYS", "*") else { throw TestFailure("KEYS") }
        Self.stop(first)

        let (second, port2) = try Self.start(dir, policy: "allkeys-lru")
        defer { second.kill() }
        let again = try RESPTestClient(port: port2)
        guard case .array(let afterRestart?) = try again.call("KEYS", "*") else { throw TestFailure("KEYS") }
        #expect(Set(afterRestart.map(\.description)) == Set(present.map(\.description)),
                "the same keys after the restart: no evicted key came back, none lost")
        Self.stop(second)
    }
}
