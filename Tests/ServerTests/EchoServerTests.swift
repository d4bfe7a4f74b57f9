// The echo service over loopback against an in-process server bound to port 0: many clients,
// pipelining, framing edge cases, limits, idle timeout, half-close, UDP and IPv6.

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct EchoServerTests {
    @Test func thousandConcurrentClientsEachGetTheirOwnLineBack() throws {
        try withServer { server in
            let count = 1000
            let deadline = ContinuousClock.now + .seconds(60)
            // Every client connects before any of them is served, so all 1,000 are open at once.
            var clients: [TestClient] = []
            for _ in 0..<count { clients.append(try TestClient(port: server.echoPort, wait: false)) }
            let expected = (0..<count).map { Array("client \($0) of \(count): \(String(repeating: "x", count: $0 % 37))\n".utf8) }
            var sent = [Bool](repeating: false, count: count)
            var received = [[UInt8]](repeating: [], count: count)
            var done = 0
            while done < count {
                var fds = clients.indices.map { i -> pollfd in
                    let finished = received[i].count >= expected[i].count
                    let events = finished ? 0 : (sent[i] ? POLLIN : POLLOUT)
                    return pollfd(fd: finished ? -1 : clients[i].fd, events: Int16(events), revents: 0)
                }
                let r = poll(&fds, nfds_t(fds.count), millisecondsLeft(deadline))
                try #require(r > 0, "clients stalled with \(done) of \(count) answered")
                for i in fds.indices where fds[i].revents != 0 {
                    if !sent[i] {
                        try clients[i].waitConnected(deadline: deadline)
                        try clients[i].send(expected[i], deadline: deadline)
                        sent[i] = true
                    } else if let chunk = clients[i].readSome() {
                        try #require(!chunk.isEmpty, "client \(i) was closed before its reply")
                        received[i].append(contentsOf: chunk)
                        if received[i].count >= expected[i].count { done += 1 }
                    }
                }
            }
            for i in 0..<count { #expect(received[i] == expected[i], "client \(i)") }
        }
    }

    @Test func thousandPipelinedLinesComeBackIdenticalAndInOrder() throws {
        try withServer { server in
            let client = try TestClient(port: server.echoPort)
            let request = (0..<1000).flatMap { Array("line \($0) \(String(repeating: "p", count: $0 % 50))\n".utf8) }
            try client.send(request)
            let reply = client.read(count: request.count)
            #expect(reply == request)
        }
    }

    @Test func halfClosedClientGetsEveryEchoIncludingUnterminatedLastLineThenEOF() throws {
        try withServer { server in
            let client = try TestClient(port: server.echoPort)
            let request = (0..<200).flatMap { Array("half \($0)\n".utf8) } + Array("no newline at the end".utf8)
            try client.send(request)
            client.shutdownWrite()
            let (reply, eof) = client.readToEOF()
            #expect(reply == request)
            #expect(eof)
        }
    }

    @Test func exitClosesWithoutReply() throws {
        try withServer { server in
            let client = try TestClient(port: server.echoPort)
            try client.send("before\n:exit\nafter\n")
            let (reply, eof) = client.readToEOF()
            #expect(reply == Array("before\n".utf8))
            #expect(eof)
        }
    }

    @Test(arguments: [
        Array("crlf stays\r\n".utf8),
        Array("\n".utf8),
        Array("\r\n".utf8),
        [0xFF, 0xFE, 0x00, 0x80, 0xC3, 0x28, 0x0A],
        Array("a\n\nb\r\n\n".utf8),
    ])
    func bytesComeBackExactly(_ request: [UInt8]) throws {
        try withServer { server in
            let client = try TestClient(port: server.echoPort)
            try client.send(request)
            #expect(client.read(count: request.count) == request)
            // Still serving afterwards.
            try client.send("next\n")
            #expect(client.readLine() == Array("next\n".utf8))
        }
    }

    @Test func lineLongerThanMaximumGetsErrorThenEOF() throws {
        try withServer(configure: { $0.maxLineBytes = 64 }) { server in
            let ok = try TestClient(port: server.echoPort)
            let exact = Array(String(repeating: "a", count: 64).utf8) + [0x0D, 0x0A]
            try ok.send(exact)
            #expect(ok.read(count: exact.count) == exact, "a 64-byte line (CRLF not counted) is within the limit")

            let client = try TestClient(port: server.echoPort)
            try client.send(String(repeating: "b", count: 65) + "\n")
            let (reply, eof) = client.readToEOF()
            #expect(reply == Array("ERR line too long\n".utf8))
            #expect(eof)
        }
    }

    @Test func idleConnectionIsClosedByTheServer() throws {
        try withServer(configure: { $0.idleTimeout = .milliseconds(300) }) { server in
            let client = try TestClient(port: server.echoPort)
            try client.send("hi\n")
            #expect(client.readLine() == Array("hi\n".utf8))
            let start = ContinuousClock.now
            let (rest, eof) = client.readToEOF(deadline: .now + .seconds(5))
            #expect(rest.isEmpty)
            #expect(eof, "the server did not close an idle connection")
            #expect(ContinuousClock.now - start >= .milliseconds(250))
        }
    }

    @Test func connectionPastTheLimitGetsOneErrorLineAndEOF() throws {
        try withServer(configure: { $0.maxConnections = 3 }) { server in
            var first: [TestClient] = []
            for i in 0..<3 {
                let client = try TestClient(port: server.echoPort)
                try client.send("first \(i)\n")
                #expect(client.readLine() == Array("first \(i)\n".utf8))
                first.append(client)
            }
            let fourth = try TestClient(port: server.echoPort)
            let (reply, eof) = fourth.readToEOF()
            #expect(eof)
            let text = String(decoding: reply, as: UTF8.self)
            #expect(text.hasPrefix("ERR "))
            #expect(text.hasSuffix("\n") && text.filter { $0 == "\n" }.count == 1, "one line: \(text.debugDescription)")
            for (i, client) in first.enumerated() {
                try client.send("again \(i)\n")
                #expect(client.readLine() == Array("again \(i)\n".utf8))
            }
            // A slot frees when a client leaves.
            first[0].close()
            let deadline = ContinuousClock.now + .seconds(5)
            var replaced: [UInt8] = []
            while replaced != Array("late\n".utf8) && ContinuousClock.now < deadline {
                let late = try TestClient(port: server.echoPort)
                try? late.send("late\n")
                replaced = late.readLine(deadline: deadline)
            }
            #expect(replaced == Array("late\n".utf8))
        }
    }

    @Test func udpDatagramsComeBackUnchanged() throws {
        try withServer { server in
            let fd = socket(AF_INET, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            try #require(fd >= 0)
            defer { Glibc.close(fd) }
            let connected = withSocketAddress(host: "127.0.0.1", port: server.udpEchoPort) { sa, len, _ in connect(fd, sa, len) }
            try #require(connected == 0)
            for payload: [UInt8] in [Array("hello udp".utf8), [0x00, 0xFF, 0x0A, 0x0D], Array(repeating: 0x41, count: 1200)] {
                let sent = payload.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
                #expect(sent == payload.count)
                // Loopback UDP is not lost, but bound the wait all the same.
                try #require(pollFor(fd, events: Int16(POLLIN), until: .now + .seconds(5)), "no datagram back")
                var buffer = [UInt8](repeating: 0, count: 65536)
                let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
                #expect(n == payload.count && Array(buffer[0..<max(n, 0)]) == payload)
            }
        }
    }

    @Test(.enabled(if: hasIPv6Loopback, "no IPv6 loopback on this machine"))
    func echoesOverIPv6Loopback() throws {
        try withServer(configure: { $0.host = "::1" }) { server in
            #expect(server.endpoints.allSatisfy { $0.address.family == AF_INET6 })
            let client = try TestClient(host: "::1", port: server.echoPort)
            try client.send("over six\n")
            #expect(client.readLine() == Array("over six\n".utf8))
        }
    }

    @Test func gracefulStopFinishesWithClientsConnected() throws {
        let server = try InProcessServer()
        let client = try TestClient(port: server.echoPort)
        try client.send("x\n")
        #expect(client.readLine() == Array("x\n".utf8))
        #expect(server.stop(within: 5), "the server did not stop within 5 s")
        let (_, eof) = client.readToEOF(deadline: .now + .seconds(5))
        #expect(eof)
    }
}
