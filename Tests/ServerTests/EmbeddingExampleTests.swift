// The embedding examples (Examples/echo-server, line-client, multi-loop-echo), each run as its
// own process over loopback and stopped by its PID: SIGTERM must stop each gracefully (status 0,
// a client's queued answer delivered), SIGKILL only as the bound if it does not.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct EmbeddingExampleTests {
    /// The address line's port (`…: listening on 127.0.0.1:PORT`).
    static func port(of process: ReactordProcess, name: String) throws -> Int {
        let lines = try #require(process.waitForLine { $0.hasPrefix("\(name): ") && $0.contains("listening on") }, "no listening line")
        return try #require(lines.last?.split(separator: ":").last.flatMap { Int($0) })
    }

    @Test func echoServerEchoesAndStopsGracefullyOnSIGTERM() throws {
        let server = try ReactordProcess(executable: "echo-server", arguments: ["0"])
        defer { server.kill() }
        let port = try Self.port(of: server, name: "echo-server")
        let client = try TestClient(port: port)
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }  // any bytes, not lines
        try client.send(bytes)
        #expect(client.read(count: bytes.count) == bytes)
        let idle = try TestClient(port: port)
        kill(server.pid, SIGTERM)
        // A graceful stop: each client sees its connection end, the process exits by itself.
        #expect(idle.readToEOF().eof)
        #expect(server.waitForExit(within: 10) == 0)
        #expect(server.waitForLine { $0 == "echo-server: stopped" } != nil)
    }

    @Test func echoServerServesAUnixDomainSocket() throws {
        let directory = try TemporaryDirectory("echo-unix")
        let path = directory.file("echo.sock")
        let server = try ReactordProcess(executable: "echo-server", arguments: ["unix:\(path)"])
        defer { server.kill() }
        #expect(server.waitForLine { $0 == "echo-server: listening on unix:\(path)" } != nil)
        let fd = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(connected == 0)
        var limit = timeval(tv_sec: 10, tv_usec: 0)  // bounds the blocking receive below
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let line = Array("over a path\n".utf8)
        #expect(send(fd, line, line.count, CInt(MSG_NOSIGNAL)) == line.count)
        var answer = [UInt8](repeating: 0, count: line.count)
        #expect(recv(fd, &answer, answer.count, CInt(MSG_WAITALL)) == line.count)
        #expect(answer == line)
        kill(server.pid, SIGTERM)
        #expect(server.waitForExit(within: 10) == 0)
    }

    @Test func lineClientConnectsByNameSendsAndPrintsTheAnswers() throws {
        let server = try ReactordProcess(executable: "echo-server", arguments: ["0"])
        defer { server.kill() }
        let port = try Self.port(of: server, name: "echo-server")
        let run = try runExecutable("line-client", ["localhost", "\(port)", "first line", "second"], in: NSTemporaryDirectory())
        #expect(run.status == 0, "\(run)")
        #expect(run.stdout == "first line\nsecond\n", "\(run)")

        let refused = try runExecutable("line-client", ["no-such-host.invalid", "\(port)", "x"], in: NSTemporaryDirectory())
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stdout.hasPrefix("line-client: "), "\(refused)")
    }

    @Test func multiLoopEchoSpreadsConnectionsOverItsLoopsAndStopsOnSIGTERM() throws {
        let server = try ReactordProcess(executable: "multi-loop-echo", arguments: ["0", "2"])
        defer { server.kill() }
        let lines = try #require(server.waitForLine { $0.hasPrefix("multi-loop-echo: 2 loops listening on 127.0.0.1:") })
        let port = try #require(lines.last?.split(separator: ":").last.flatMap { Int($0) })
        // The kernel hashes each connection to one of the two listeners: over 32 connections both
        // serve some (all on one would happen with odds of 2^-31).
        var loopsSeen = Set<String>()
        let clients = try (0..<32).map { _ in try TestClient(port: port) }
        for (i, client) in clients.enumerated() {
            try client.send("hello \(i)\n")
            let answer = String(decoding: client.readLine(), as: UTF8.self)
            #expect(answer.hasSuffix(": hello \(i)\n"), "\(answer)")
            loopsSeen.insert(String(answer.prefix { $0 != ":" }))
        }
        #expect(loopsSeen == ["loop 0", "loop 1"])
        kill(server.pid, SIGTERM)
        #expect(clients[0].readToEOF().eof)
        #expect(server.waitForExit(within: 10) == 0)
    }
}
