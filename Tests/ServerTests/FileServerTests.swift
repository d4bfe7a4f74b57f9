// The file service over loopback: greeting, byte-exact gets and ranges, pipelining, listings,
// every way out of the root refused, a 256 MiB file streamed by the real binary with flat RSS,
// and a file that shrinks mid-transfer ending that one connection, not the server.

import Dispatch
import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct FileServerTests {
    /// A root with `f` (random 1 MiB), `small.txt`, `empty`, `sub/inner.txt`, `sub/deeper/x`.
    static func makeRoot() throws -> (TemporaryDirectory, [UInt8]) {
        let root = try TemporaryDirectory()
        let f = randomBytes(1 << 20)
        try root.write("f", f)
        try root.write("small.txt", Array("hello, file\n".utf8))
        try root.write("empty", [])
        try root.write("sub/inner.txt", Array("inside\n".utf8))
        try root.write("sub/deeper/x", Array("x".utf8))
        return (root, f)
    }

    static func start(_ root: TemporaryDirectory) throws -> (LoopObservedServer, Int) {
        let server = try LoopObservedServer {
            $0.filePort = .port(0)
            $0.filesRoot = root.path
        }
        return (server, try server.port("file"))
    }

    /// Connects and consumes the greeting.
    static func connect(_ port: Int) throws -> FileClient {
        let client = try FileClient(port: port)
        let greeting = try #require(client.line(), "no greeting")
        #expect(greeting.hasPrefix("HELLO reactord "))
        return client
    }

    @Test func greetingNamesTheServerPidAndThePeer() throws {
        let (root, _) = try Self.makeRoot()
        let (server, port) = try Self.start(root)
        defer { server.stop() }
        let client = try FileClient(port: port)
        let greeting = try #require(client.line())
        #expect(greeting == "HELLO reactord pid=\(getpid()) peer=127.0.0.1:\(localPort(client.client.fd))")
    }

    @Test func getSendsTheFileByteForByte() throws {
        let (root, f) = try Self.makeRoot()
        let (server, port) = try Self.start(root)
        defer { server.stop() }
        let client = try Self.connect(port)
        #expect(bodyMatches(try client.get("get f"), f), "1 MiB body differs")
        #expect(try client.get("get small.txt") == .success(Array("hello, file\n".utf8)))
        #expect(try client.get("get sub/inner.txt") == .success(Array("inside\n".utf8)))
        #expect(try client.get("get ./sub//deeper/x") == .success(Array("x".utf8)))
        #expect(try client.get("get empty") == .success([]))
    }

    @Test func rangesAreHonouredAndBadOnesRefused() throws {
        let (root, f) = try Self.makeRoot()
        let (server, port) = try Self.start(root)
        defer { server.stop() }
        let client = try Self.connect(port)
        let size = f.count
        #expect(try client.get("get f 10 20") == .success(Array(f[10..<30])))
        #expect(try client.get("get f 1000") == .success(Array(f[1000...])))
        #expect(try client.get("get f \(size - 5) 100") == .success(Array(f[(size - 5)...])), "length past the end is cut")
        #expect(try client.get("get f 7 0") == .success([]))
        #expect(try client.get("get f \(size)") == .success([]), "offset == size is OK 0")
        #expect(try client.get("get f \(size) 10") == .success([]))
        #expect(try client.get("get f \(size + 1)") == .failure(FileReplyError(line: "ERR bad range")))
        #expect(try client.get("get f x") == .failure(FileReplyError(line: "ERR bad range")))
        #expect(try client.get("get f 1 y") == .failure(FileReplyError(line: "ERR bad range")))
        #expect(try client.get("get f -1") == .failure(FileReplyError(line: "ERR bad range")))
        #expect(try client.get("get empty 0") == .success([]))
        #expect(try client.get("get empty 1") == .failure(FileReplyError(line: "ERR bad range")))
        // Still in step after every error.
        #expect(try client.get("get small.txt 7 4") == .success(Array("file".utf8)))
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let (root, f) = try Self.makeRoot()
        let (server, port) = try Self.start(root)
        defer { server.stop() }
        var deeper = stat()
        stat(root.url("sub/deeper"), &deeper)
        let client = try Self.connect(port)
        // Three full copies of the 1 MiB file (more than the high-water mark) with small
        // requests and errors between them, all sent before reading anything.
        var requests = ""
        for i in 0..<3 { requests += "get f\nget small.txt \(i)\nget nope\nlist sub\nget f \(i * 1000) 10\n" }
        try client.send(requests + "bye\n")
        for i in 0..<3 {
            #expect(bodyMatches(client.readGetReply(), f), "copy \(i)")
            #expect(client.readGetReply() == .success(Array("hello, file\n".utf8.dropFirst(i))))
            #expect(client.line() == "ERR not found")
            #expect(client.line() == "OK 2")
            #expect(client.line() == "d \(deeper.st_size) deeper")
            #expect(client.line() == "f 7 inner.txt")
            #expect(client.readGetReply() == .success(Array(f[(i * 1000)..<(i * 1000 + 10)])))
        }
        #expect(client.line() == "Goodbye")
        #expect(client.endsWithoutMore())
    }

    @Test func listGivesKindSizeAndNameSorted() throws {
        let (root, f) = try Self.makeRoot()
        try root.symlink("link-to-small", to: "small.txt")
        try root.symlink("link-out", to: "/etc/passwd")
        try root.symlink("dir-out", to: "/etc")
        try root.symlink("dangling", to: "nowhere")
        let (server, port) = try Self.start(root)
        defer { server.stop() }
        let client = try Self.connect(port)
        let top = try client.list().get()
        var subStat = stat()
        stat(root.url("sub"), &subStat)
        #expect(top == [
            "f 0 empty", "f \(f.count) f", "f 12 link-to-small", "f 12 small.txt", "d \(subStat.st_size) sub",
        ], "symlinks leading outside the root and dangling ones are not listed")
        var deeperStat = stat()
        stat(root.url("sub/deeper"), &deeperStat)
        #expect(try client.list("list sub") == .success(["d \(deeperStat.st_size) deeper", "f 7 inner.txt"]))
        #expect(try client.list("list sub/deeper") == .success(["f 1 x"]))
        #expect(try client.list("list sub/") == .success(["d \(deeperStat.st_size) deeper", "f 7 inner.txt"]))
        for line in top {
            #expect(line.wholeMatch(of: /[fd] [0-9]+ [^ ].*/) != nil, "\(line)")
        }
        #expect(try client.list("list nope") == .failure(FileReplyError(line: "ERR not found")))
        #expect(try client.list("list ..") == .failure(FileReplyError(line: "ERR forbidden")))
        #expect(try client.list("list dir-out") == .failure(FileReplyError(line: "ERR forbidden")))
    }

    @Test func directoriesAndMissingFilesGetTheirErrors() throws {
        let (root, _) = try Self.makeRoot()
        let (server, port) = try Self.start(root)
        defer { server.stop() }
        let client = try Self.connect(port)
        #expect(try client.get("get sub") == .failure(FileReplyError(line: "ERR is a directory")))
        #expect(try client.get("get sub/") == .failure(FileReplyError(line: "ERR is a directory")))
        #expect(try client.get("get .") == .failure(FileReplyError(line: "ERR is a directory")))
        #expect(try client.get("get nope") == .failure(FileReplyError(line: "ERR not found")))
        #expect(try client.get("get sub/nope") == .failure(FileReplyError(line: "ERR not found")))
        #expect(try client.get("get f/x") == .failure(FileReplyError(line: "ERR not found")))
        #expect(try client.get("get small.txt 0 1") == .success(Array("h".utf8)))
    }

    @Test func everyWayOutOfTheRootIsForbidden() throws {
        let (root, _) = try Self.makeRoot()
        let outside = try TemporaryDirectory("reactord-outside")
        try outside.write("secret", Array("secret\n".utf8))
        try root.symlink("passwd", to: "/etc/passwd")
        try root.symlink("outdir", to: outside.path)
        try root.symlink("sub/up", to: "../..")
        try root.symlink("relative-out", to: "../" + (outside.path as NSString).lastPathComponent + "/secret")
        try root.symlink("inside", to: "sub/inner.txt")
        try root.symlink("sub/sibling", to: "../small.txt")
        let (server, port) = try Self.start(root)
        defer { server.stop() }
        let client = try Self.connect(port)
        let forbidden: [[UInt8]] = [
            Array("get ../x".utf8), Array("get /etc/passwd".utf8), Array("get a/../../x".utf8),
            Array("get sub/../small.txt".utf8), Array("get passwd".utf8), Array("get outdir/secret".utf8),
            Array("get outdir".utf8), Array("get sub/up/etc/passwd".utf8), Array("get relative-out".utf8),
            Array("get small.txt".utf8) + [0] + Array("x".utf8), Array("get ".utf8) + [0],
            Array("list outdir".utf8), Array("list /".utf8), Array("list sub/up".utf8),
        ]
        for request in forbidden {
            try client.send(request + [10])
            #expect(client.line() == "ERR forbidden", "\(String(decoding: request, as: UTF8.self).debugDescription)")
        }
        // Symlinks that stay inside the root are served.
        #expect(try client.get("get inside") == .success(Array("inside\n".utf8)))
        #expect(try client.get("get sub/sibling") == .success(Array("hello, file\n".utf8)))
        #expect(try client.get("get sub/../sub/inner.txt") == .failure(FileReplyError(line: "ERR forbidden")), "any .. component")
    }

    @Test func getOfAFIFOIsRefusedWithoutBlockingTheLoop() throws {
        let (root, _) = try Self.makeRoot()
        let fifo = root.url("fifo")
        try #require(mkfifo(fifo, 0o644) == 0)
        let (server, port) = try Self.start(root)
        // If the server's open(2) blocks waiting for a writer, the whole loop is stuck: open the
        // write side (which succeeds only while a reader waits) so the thread can be stopped.
        defer {
            let fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            if fd >= 0 { Glibc.close(fd) }
            server.stop()
        }
        let client = try Self.connect(port)
        #expect(try client.get("get fifo") == .failure(FileReplyError(line: "ERR forbidden")))
        let other = try Self.connect(port)
        #expect(try other.get("get small.txt") == .success(Array("hello, file\n".utf8)))
    }

    @Test func byeSaysGoodbyeAndCloses() throws {
        let (root, _) = try Self.makeRoot()
        let (server, port) = try Self.start(root)
        defer { server.stop() }
        let client = try Self.connect(port)
        try client.send("BYE\r\nget small.txt\n")
        #expect(client.line() == "Goodbye")
        #expect(client.endsWithoutMore(), "nothing after Goodbye, then EOF")
        // Unknown commands and a half-close are answered before the close (a request is a
        // terminated line, as on the other line protocols: an unterminated tail is dropped).
        let other = try Self.connect(port)
        try other.send("frobnicate\nget small.txt 0 5\nget small.txt")
        other.client.shutdownWrite()
        #expect(other.line() == "ERR unknown command 'frobnicate'")
        #expect(other.readGetReply() == .success(Array("hello".utf8)))
        #expect(other.endsWithoutMore())
    }

    @Test func fileThatShrinksWhileStreamingEndsThatConnectionOnly() throws {
        let (root, _) = try Self.makeRoot()
        try root.writePattern("shrinking", count: 64 << 20)
        let (server, port) = try Self.start(root)
        defer { server.stop() }
        let victim = try Self.connect(port)
        try victim.send("get shrinking\n")
        #expect(victim.line() == "OK \(64 << 20)")
        let first = victim.bytes(1 << 20)
        #expect(first.count == patternBlock.count && first == patternBlock ? true : false, "first MiB differs")
        // The socket buffers fill while we do not read; then the file loses most of its bytes.
        #expect(truncate(root.url("shrinking"), 2 << 20) == 0)
        // Reading on must end (EOF or reset) well before the promised 64 MiB, and soon.
        let deadline = ContinuousClock.now + .seconds(15)
        var received = first.count
        var ended = false
        while ContinuousClock.now < deadline {
            guard let chunk = victim.client.readSome(max: 1 << 20) else {
                guard pollFor(victim.client.fd, events: Int16(POLLIN), until: deadline) else { break }
                continue
            }
            if chunk.isEmpty { ended = true; break }
            received += chunk.count
        }
        #expect(ended, "the client was left waiting for bytes that will never come (got \(received))")
        #expect(received < 64 << 20)
        // Everyone else is still served, including a new get of the same (now short) file.
        let other = try Self.connect(port)
        #expect(try other.get("get small.txt") == .success(Array("hello, file\n".utf8)))
        #expect(try other.get("get shrinking 0 16") == .success(Array(patternBlock[0..<16])))
        #expect(try other.list("list sub") .map(\.count) == .success(2))
    }

    @Test func clientsLeavingMidTransferLeaveNoDescriptorOpenInTheBinary() throws {
        let root = try TemporaryDirectory()
        try root.writePattern("big", count: 16 << 20)
        let process = try ReactordProcess(arguments: [
            "--kv-port", "off", "--echo-port", "off", "--time-port", "off", "--file-port", "0",
            "--files-root", root.path, "--data-dir", root.url("data"),
        ])
        defer { process.kill() }
        let lines = try #require(process.waitForReady(), "no 'reactord: ready' within 20 s")
        let listening = try #require(lines.first { $0.hasPrefix("reactord: listening file tcp ") })
        let port = try #require(listening.split(separator: ":").last.flatMap { Int($0) })
        // Sockets and files beneath the root only: Dispatch opens its own descriptors (epoll,
        // eventfd, timerfd) lazily, which says nothing about connections or files.
        func openDescriptors() -> Int? {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.pid)/fd") else { return nil }
            return names.filter { name in
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(process.pid)/fd/\(name)") else {
                    return false
                }
                return target.hasPrefix("socket:") || target.hasPrefix(root.path + "/")
            }.count
        }
        let baseline = try #require(openDescriptors())
        var clients: [FileClient] = []
        for _ in 0..<40 {
            let client = try Self.connect(port)
            try client.send("get big\nget big 100\n")
            #expect(client.line() == "OK \(16 << 20)")
            #expect(client.bytes(4096) == Array(patternBlock[0..<4096]))
            clients.append(client)
        }
        // Every client holds its connection and (at least) one open file on the server.
        #expect((openDescriptors() ?? 0) >= baseline + 80)
        for (i, client) in clients.enumerated() {
            if i % 2 == 0 {
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(client.client.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            }
            client.client.close()
        }
        // The server notices each departure on its own schedule: watch the count, bounded.
        let deadline = ContinuousClock.now + .seconds(15)
        var now = openDescriptors()
        while now != baseline && ContinuousClock.now < deadline {
            var p = pollfd(fd: -1, events: 0, revents: 0)
            _ = poll(&p, 0, 20)
            now = openDescriptors()
        }
        #expect(now == baseline, "descriptors: \(baseline) before, \(String(describing: now)) after 40 clients left mid-transfer")
        let after = try Self.connect(port)
        #expect(try after.get("get big 5 10") == .success(Array(patternBlock[5..<15])))
    }

    @Test func largeFileStreamedByTheBinaryKeepsItsMemoryFlat() throws {
        let root = try TemporaryDirectory()
        let size = 256 << 20
        try root.writePattern("big", count: size)
        let process = try ReactordProcess(arguments: [
            "--kv-port", "off", "--echo-port", "off", "--time-port", "off", "--file-port", "0",
            "--files-root", root.path, "--data-dir", root.url("data"),
        ])
        defer { process.kill() }
        let lines = try #require(process.waitForReady(), "no 'reactord: ready' within 20 s")
        let listening = try #require(lines.first { $0.hasPrefix("reactord: listening file tcp ") })
        let port = try #require(listening.split(separator: ":").last.flatMap { Int($0) })
        let client = try FileClient(port: port)
        #expect(client.line() == "HELLO reactord pid=\(process.pid) peer=127.0.0.1:\(localPort(client.client.fd))")
        let before = try #require(residentKiB(pid: process.pid))
        try client.send("get big\n")
        #expect(client.line() == "OK \(size)")
        var received = 0
        var samples: [Int] = []
        var mismatchAt: Int?
        let deadline = ContinuousClock.now + .seconds(60)
        var nextSample = 0
        while received < size {
            var chunk: [UInt8]
            if !client.pending.isEmpty {
                chunk = client.pending
                client.pending = []
            } else if let some = client.client.readSome(max: 1 << 20) {
                chunk = some
                if chunk.isEmpty { break }
            } else {
                guard pollFor(client.client.fd, events: Int16(POLLIN), until: deadline) else { break }
                continue
            }
            chunk = Array(chunk.prefix(size - received))
            // Check against the repeating pattern without building the 256 MiB expectation.
            if mismatchAt == nil {
                var i = 0
                while i < chunk.count {
                    let at = (received + i) & ((1 << 20) - 1)
                    let run = min(chunk.count - i, (1 << 20) - at)
                    let same = chunk.withUnsafeBytes { c in patternBlock.withUnsafeBytes { p in
                        memcmp(c.baseAddress! + i, p.baseAddress! + at, run) == 0 } }
                    if !same { mismatchAt = received + i; break }
                    i += run
                }
            }
            received += chunk.count
            if received >= nextSample {
                if let rss = residentKiB(pid: process.pid) { samples.append(rss) }
                nextSample += 8 << 20
            }
        }
        #expect(received == size)
        #expect(mismatchAt == nil, "content differs at byte \(mismatchAt ?? -1)")
        let peak = samples.max() ?? before
        #expect(samples.count >= 16)
        #expect(peak - before < 40 * 1024, "RSS grew from \(before) KiB to \(peak) KiB while streaming \(size >> 20) MiB")
        // The connection takes the next request afterwards.
        try client.send("bye\n")
        #expect(client.line() == "Goodbye")
        #expect(kill(process.pid, SIGTERM) == 0)
        #expect(process.waitForExit(within: 5) == 0)
    }
}
