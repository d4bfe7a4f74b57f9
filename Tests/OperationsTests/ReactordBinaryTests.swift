// The real `reactord` executable: start-up lines, SIGTERM, a port in use, a bad flag, and a slow
// reader whose memory must stay bounded (RSS read from /proc/<pid>/status). Every process is
// bounded in time and stopped by its PID.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ReactordBinaryTests {
    static let echoOnly = ["--echo-port", "0", "--kv-port", "off", "--time-port", "off", "--file-port", "off"]

    /// Starts reactord with echo on port 0 and returns it with the TCP port it printed.
    static func startEcho(_ extra: [String] = []) throws -> (ReactordProcess, Int, [String]) {
        let process = try ReactordProcess(arguments: Self.echoOnly + extra)
        let lines = try #require(process.waitForReady(), "no 'reactord: ready' within 20 s")
        let tcp = try #require(lines.first { $0.hasPrefix("reactord: listening echo tcp ") })
        let port = try #require(tcp.split(separator: ":").last.flatMap { Int($0) })
        return (process, port, lines)
    }

    @Test func printsListeningLinesThenReadyAndExitsZeroOnSIGTERM() throws {
        let (process, port, lines) = try Self.startEcho()
        defer { process.kill() }
        #expect(lines.last == "reactord: ready")
        let listening = lines.dropLast()
        #expect(listening.count == 2, "\(lines)")
        for line in listening {
            #expect(line.wholeMatch(of: /reactord: listening echo (tcp|udp) 127\.0\.0\.1:[1-9][0-9]*/) != nil, "\(line)")
        }
        #expect(port > 0)
        let client = try TestClient(port: port)
        try client.send("from the binary\n")
        #expect(client.readLine() == Array("from the binary\n".utf8))

        #expect(kill(process.pid, SIGTERM) == 0)
        #expect(process.waitForExit(within: 5) == 0, "no exit 0 within 5 s of SIGTERM")
    }

    @Test func portInUseFailsWithOneLineOnStderr() throws {
        // Hold a listening socket on a kernel-chosen port, then ask reactord for it.
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        defer { Glibc.close(fd) }
        try #require(withSocketAddress(host: "127.0.0.1", port: 0) { sa, len, _ in bind(fd, sa, len) } == 0)
        try #require(listen(fd, 1) == 0)
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))

        let process = try ReactordProcess(arguments: ["--echo-port", "\(port)", "--kv-port", "off", "--time-port", "off", "--file-port", "off"])
        defer { process.kill() }
        let status = try #require(process.waitForExit(within: 10), "reactord kept running on a port in use")
        #expect(status != 0)
        let lines = process.standardError().split(separator: "\n")
        #expect(lines.count == 1, "\(lines)")
        let line = String(lines.first ?? "")
        #expect(line.contains("\(port)") && line.lowercased().contains("in use"), "\(line)")
    }

    @Test func badFlagExitsTwoWithOneLineOnStderr() throws {
        let process = try ReactordProcess(arguments: ["--no-such-flag"])
        defer { process.kill() }
        let status = try #require(process.waitForExit(within: 10))
        #expect(status == 2)
        let lines = process.standardError().split(separator: "\n")
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.contains("--no-such-flag") == true, "\(lines)")
    }

    @Test(.enabled(if: hasIPv6Loopback, "no IPv6 loopback on this machine"))
    func binaryEchoesOverIPv6() throws {
        let (process, port, lines) = try Self.startEcho(["--host", "::1"])
        defer { process.kill() }
        #expect(lines.contains { $0.hasPrefix("reactord: listening echo tcp [::1]:") }, "\(lines)")
        let client = try TestClient(host: "::1", port: port)
        try client.send("six\n")
        #expect(client.readLine() == Array("six\n".utf8))
        #expect(kill(process.pid, SIGTERM) == 0)
        #expect(process.waitForExit(within: 5) == 0)
    }

    /// Line `i` of the slow reader's stream: deterministic, so the echo is checked as it arrives
    /// without keeping 20 MiB around on the client side.
    static func streamLine(_ i: Int) -> [UInt8] {
        Array("\(i) the quick brown fox jumps over the lazy dog \(i &* 2654435761 % 1_000_003)\n".utf8)
    }

    @Test func slowReaderGetsEveryByteWhileServerMemoryStaysBounded() throws {
        let (process, port, _) = try Self.startEcho()
        defer { process.kill() }
        let baseline = try #require(residentKiB(pid: process.pid))
        // The client's buffers are fixed small before it connects (no autotuning to tens of MiB),
        // so what phase 1 gets in before it is pushed back is the server's doing, not the kernel's.
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0, "socket: errno \(errno)")
        for option in [SO_SNDBUF, SO_RCVBUF] {
            var bytes: CInt = 64 << 10
            try #require(setsockopt(fd, SOL_SOCKET, option, &bytes, socklen_t(MemoryLayout<CInt>.size)) == 0, "errno \(errno)")
        }
        let client = try TestClient(socket: fd, host: "127.0.0.1", port: port)
        let total = 20 << 20
        let deadline = ContinuousClock.now + .seconds(120)

        var sendLine = 0
        var pendingSend: [UInt8] = []
        var sentBytes = 0
        var expectLine = 0
        var expected: [UInt8] = []
        var expectedIndex = 0
        var receivedBytes = 0
        var mismatchAt: Int?
        var peakKiB = baseline

        func sendSome() throws -> Bool {
            var progressed = false
            while sentBytes < total {
                if pendingSend.isEmpty {
                    while pendingSend.count < 64 * 1024 && sentBytes + pendingSend.count < total {
                        pendingSend += Self.streamLine(sendLine)
                        sendLine += 1
                    }
                }
                let n = pendingSend.withUnsafeBytes { Glibc.send(client.fd, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
                if n > 0 {
                    pendingSend.removeFirst(n)
                    sentBytes += n
                    progressed = true
                } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                    return progressed
                } else {
                    throw TestFailure("send failed: errno \(errno)")
                }
            }
            return progressed
        }

        // Phase 1: write without reading until the server stops taking bytes (its output passed
        // the high-water mark, it paused reading, and the socket buffers filled up).
        while sentBytes < total {
            if try sendSome() { continue }
            if !pollFor(client.fd, events: Int16(POLLOUT), until: .now + .milliseconds(500)) { break }
        }
        #expect(sentBytes < total, "20 MiB went in without reading: the server never pushed back")
        peakKiB = max(peakKiB, residentKiB(pid: process.pid) ?? 0)

        // Phase 2: read everything, sending the rest as the server takes it.
        while receivedBytes < sentBytes || sentBytes < total {
            var fds = pollfd(fd: client.fd, events: Int16(POLLIN | (sentBytes < total ? POLLOUT : 0)), revents: 0)
            try #require(poll(&fds, 1, millisecondsLeft(deadline)) > 0, "stalled: sent \(sentBytes), received \(receivedBytes)")
            if fds.revents & Int16(POLLOUT) != 0 { _ = try sendSome() }
            if fds.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                guard let chunk = client.readSome(max: 256 * 1024) else { continue }
                try #require(!chunk.isEmpty, "server closed after \(receivedBytes) bytes")
                for byte in chunk {
                    if expectedIndex == expected.count {
                        expected = Self.streamLine(expectLine)
                        expectLine += 1
                        expectedIndex = 0
                    }
                    if mismatchAt == nil && byte != expected[expectedIndex] { mismatchAt = receivedBytes }
                    expectedIndex += 1
                    receivedBytes += 1
                }
                try #require(mismatchAt == nil, "echo differs at byte \(mismatchAt ?? -1)")
                if receivedBytes % (1 << 20) < chunk.count { peakKiB = max(peakKiB, residentKiB(pid: process.pid) ?? 0) }
            }
        }
        // Whole lines are sent, so the stream ends a little past 20 MiB.
        #expect(sentBytes >= total && pendingSend.isEmpty)
        #expect(receivedBytes == sentBytes)
        #expect(expectedIndex == expected.count, "the echo stopped mid-line")
        #expect(mismatchAt == nil)
        let growthMiB = (peakKiB - baseline) / 1024
        #expect(growthMiB < 64, "server RSS grew by \(growthMiB) MiB for one slow reader")
        #expect(kill(process.pid, SIGTERM) == 0)
        #expect(process.waitForExit(within: 5) == 0)
    }
}
