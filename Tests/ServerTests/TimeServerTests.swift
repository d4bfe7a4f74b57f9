// The time service over loopback against an in-process server on port 0: time lines agree with
// the test's own clock, `watch` ticks keep their cadence and stop at once, UDP, and thousands of
// watchers that leave without a word leave no timer behind on the loop.

import Dispatch
import Foundation
import Logging
@testable import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct TimeServerTests {
    static func startTime() throws -> LoopObservedServer {
        try LoopObservedServer { $0.timePort = .port(0) }
    }

    @Test func eachRequestLineGetsISO8601UTCWithMicrosecondsCloseToOurClock() throws {
        let server = try Self.startTime()
        defer { server.stop() }
        let client = try TestClient(port: try server.port("time"))
        var pending: [UInt8] = []
        for request in ["time\n", "what time is it?\r\n", "\u{1}\n"] {
            let before = wallClockNow()
            try client.send(request)
            let line = try #require(client.nextLine(&pending), "no reply to \(request.debugDescription)")
            let after = wallClockNow()
            let stamp = try #require(parseTimeLine(line), "not ISO 8601 UTC with 6 fractional digits: \(line)")
            #expect(stamp >= before - 1 && stamp <= after + 1, "\(line) vs our clock \(before)…\(after)")
        }
        // An empty line is ignored: the next reply answers the next request.
        try client.send("\n\ntime\n")
        let line = try #require(client.nextLine(&pending))
        #expect(parseTimeLine(line) != nil)
        #expect(client.read(deadline: .now + .milliseconds(200)).bytes.isEmpty && pending.isEmpty)
    }

    @Test func watchTicksKeepTheirCadenceAndStopEndsThemAtOnce() throws {
        let server = try Self.startTime()
        defer { server.stop() }
        let client = try TestClient(port: try server.port("time"))
        var pending: [UInt8] = []
        let start = ContinuousClock.now
        try client.send("watch 50\n")
        var stamps: [Double] = []
        for i in 0..<10 {
            let line = try #require(client.nextLine(&pending, deadline: start + .seconds(2)), "tick \(i) not within 2 s")
            stamps.append(try #require(parseTimeLine(line), "tick \(line)"))
        }
        let elapsed = ContinuousClock.now - start
        // Ten ticks at 50 ms: the tenth is due at 500 ms. Allow timer slack, not a burst.
        #expect(elapsed >= .milliseconds(400), "10 ticks in \(elapsed): faster than 50 ms apart")
        #expect(elapsed < .seconds(2))
        let average = (stamps.last! - stamps.first!) / 9
        #expect(average >= 0.040 && average < 0.150, "average tick interval \(average) s")
        #expect(zip(stamps, stamps.dropFirst()).allSatisfy { $0 <= $1 }, "ticks out of order: \(stamps)")

        try client.send("stop\n")
        // Ticks already on their way may come before the OK; nothing may come after it.
        var sawOK = false
        for _ in 0..<100 {
            guard let line = client.nextLine(&pending, deadline: .now + .seconds(2)) else { break }
            if line == "OK" { sawOK = true; break }
            #expect(parseTimeLine(line) != nil, "unexpected line \(line)")
        }
        #expect(sawOK, "no OK after stop")
        let after = client.read(deadline: .now + .milliseconds(300))
        #expect(after.bytes.isEmpty && pending.isEmpty, "bytes after stop: \(String(decoding: pending + after.bytes, as: UTF8.self))")
        #expect(!after.eof)
        // The connection still answers requests.
        try client.send("time\n")
        #expect(client.nextLine(&pending).flatMap(parseTimeLine) != nil)
    }

    @Test func watchWhileWatchingChangesTheInterval() throws {
        let server = try Self.startTime()
        defer { server.stop() }
        let client = try TestClient(port: try server.port("time"))
        var pending: [UInt8] = []
        try client.send("watch 3600000\n")
        #expect(client.read(deadline: .now + .milliseconds(150)).bytes.isEmpty, "a tick long before an hour")
        let start = ContinuousClock.now
        try client.send("watch 20\n")
        for i in 0..<5 {
            _ = try #require(client.nextLine(&pending, deadline: start + .seconds(2)), "tick \(i) at the new interval")
        }
        #expect(server.onLoop { $0.activeTimerCount } != nil)
    }

    @Test(arguments: ["watch 5\n", "watch 9\n", "watch 3600001\n", "watch\n", "watch soon\n", "watch -50\n"])
    func watchOutsideTheRangeIsAnErrorAndStartsNothing(request: String) throws {
        let server = try Self.startTime()
        defer { server.stop() }
        let baseline = try #require(server.onLoop { $0.activeTimerCount })
        let client = try TestClient(port: try server.port("time"))
        var pending: [UInt8] = []
        try client.send(request)
        let line = try #require(client.nextLine(&pending))
        #expect(line.hasPrefix("ERR "), "\(line)")
        #expect(client.read(deadline: .now + .milliseconds(100)).bytes.isEmpty)
        #expect(server.onLoop { $0.activeTimerCount } == baseline)
        // stop when not watching still answers OK.
        try client.send("stop\n")
        #expect(client.nextLine(&pending) == "OK")
    }

    @Test func udpDatagramGetsOneTimeDatagram() throws {
        let server = try Self.startTime()
        defer { server.stop() }
        let port = try server.port("time", "udp")
        let fd = socket(AF_INET, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue) | CInt(SOCK_NONBLOCK.rawValue), 0)
        try #require(fd >= 0)
        defer { Glibc.close(fd) }
        for payload in ["time", "", "anything\n"] {
            let before = wallClockNow()
            let sent = withSocketAddress(host: "127.0.0.1", port: port) { sa, len, _ in
                Array(payload.utf8).withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, len) }
            }
            try #require(sent == payload.utf8.count)
            try #require(pollFor(fd, events: Int16(POLLIN), until: .now + .seconds(5)), "no UDP reply to \(payload.debugDescription)")
            var buffer = [UInt8](repeating: 0, count: 2048)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            try #require(n > 0)
            let datagram = String(decoding: buffer[0..<n], as: UTF8.self)
            #expect(datagram.hasSuffix("\n") && datagram.filter { $0 == "\n" }.count == 1, "\(datagram.debugDescription)")
            let stamp = try #require(parseTimeLine(String(datagram.dropLast())), "\(datagram)")
            #expect(abs(stamp - before) < 1)
        }
    }

    @Test func tenThousandWatchersThatLeaveLeaveNoTimerBehind() throws {
        let server = try Self.startTime()
        defer { server.stop() }
        let port = try server.port("time")
        let baseline = try #require(server.onLoop { $0.activeTimerCount })
        let total = 10_000
        let batch = 250
        var peak = 0
        for round in 0..<(total / batch) {
            let deadline = ContinuousClock.now + .seconds(20)
            var clients: [TestClient] = []
            for _ in 0..<batch { clients.append(try TestClient(port: port, wait: false, deadline: deadline)) }
            for client in clients {
                try client.waitConnected(deadline: deadline)
                // The time reply comes after the watch is handled (requests are answered in
                // order), so once any line arrives the server has started this watcher's timer.
                try client.send("watch 10\ntime\n", deadline: deadline)
            }
            for (i, client) in clients.enumerated() {
                var pending: [UInt8] = []
                _ = try #require(client.nextLine(&pending, deadline: deadline), "round \(round) client \(i) got no line")
            }
            if round % 10 == 0 {
                peak = max(peak, server.onLoop { $0.activeTimerCount } ?? 0)
            }
            // Leave three ways: a plain close, a reset (SO_LINGER 0), a half-close then close.
            for (i, client) in clients.enumerated() {
                switch i % 3 {
                case 0:
                    var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                    setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                case 1:
                    client.shutdownWrite()
                default:
                    break
                }
                client.close()
            }
        }
        #expect(peak >= baseline + batch, "watch timers were never live (peak \(peak), baseline \(baseline))")
        let settled = server.count({ $0.activeTimerCount }, until: { $0 == baseline }, deadline: .now + .seconds(20))
        #expect(settled == baseline, "timers left after \(total) watchers left: \(String(describing: settled)) vs \(baseline)")
        // And the service still works.
        let client = try TestClient(port: port)
        try client.send("time\n")
        var pending: [UInt8] = []
        #expect(client.nextLine(&pending).flatMap(parseTimeLine) != nil)
    }
}
