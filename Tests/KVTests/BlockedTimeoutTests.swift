// Blocked clients' timeouts on one loop timer (Sources/Server/BlockedTimeouts.swift): thousands of
// staggered timeouts end in deadline order, none before its deadline and none long after it; a wait
// served before its timeout leaves nothing that could end a later wait. Replies are polled for with
// deadlines, never slept for.

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct BlockedTimeoutTests {
    /// 2,000 clients block with timeouts 1 ms apart (sent in order, so their deadlines are in order):
    /// each gets its null reply no earlier than its timeout after it sent the command, and within a
    /// bound after it; no client is answered in a later poll round than one whose timeout is 20 ms
    /// later (the server may read neighbouring connections in either order, never 20 ms apart). The
    /// bounds are wide: the whole test suite runs at once on a loaded machine.
    @Test func twoThousandStaggeredTimeoutsEndInOrder() throws {
        try withKVServer(fsync: "everysec") { server, control in
            let clients = 2000
            let base = 3000  // ms: every client has blocked before the first deadline
            let bound: Duration = .seconds(5)
            let spread = 20
            var connections: [RESPTestClient] = []
            for _ in 0..<clients { connections.append(try RESPTestClient(port: server.kvPort)) }
            var sent: [ContinuousClock.Instant] = []
            for (i, connection) in connections.enumerated() {
                let seconds = String(format: "%.3f", Double(base + i) / 1000)
                sent.append(.now)
                try connection.client.send(RESPValue.command(["BLPOP", "none\(i)", seconds].map { Array($0.utf8) }))
            }
            // Poll every waiting connection at once; each round's replies share its round number.
            var arrived = [ContinuousClock.Instant?](repeating: nil, count: clients)
            var round = [Int](repeating: -1, count: clients)
            var received = [[UInt8]](repeating: [], count: clients)
            let deadline = ContinuousClock.now + .seconds(base / 1000 + clients / 1000 + 20)
            var rounds = 0
            var pending = Set(0..<clients)
            while !pending.isEmpty && ContinuousClock.now < deadline {
                let order = pending.sorted()
                var fds = order.map { pollfd(fd: connections[$0].client.fd, events: Int16(POLLIN), revents: 0) }
                let ready = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), 100) }
                guard ready > 0 else { continue }
                let now = ContinuousClock.now
                rounds += 1
                for (slot, i) in order.enumerated() where fds[slot].revents != 0 {
                    guard let chunk = connections[i].client.readSome(), !chunk.isEmpty else { continue }
                    received[i] += chunk
                    if received[i] == Array("*-1\r\n".utf8) {
                        arrived[i] = now
                        round[i] = rounds
                        pending.remove(i)
                    }
                }
            }
            #expect(pending.isEmpty, "\(pending.count) clients never timed out, e.g. \(pending.sorted().prefix(5))")
            var early = 0
            var late = 0
            var outOfOrder = 0
            for i in 0..<clients {
                guard let arrival = arrived[i] else { continue }
                let waited = arrival - sent[i]
                let timeout = Duration.milliseconds(base + i)
                if waited < timeout { early += 1 }
                if waited > timeout + bound { late += 1 }
                if i >= spread && round[i - spread] > round[i] { outOfOrder += 1 }
            }
            #expect(early == 0, "\(early) clients answered before their timeout")
            #expect(late == 0, "\(late) clients answered more than \(bound) after their timeout")
            #expect(outOfOrder == 0, "\(outOfOrder) clients answered before a client with a deadline \(spread) ms earlier")
            #expect(rounds > 10, "the timeouts should spread over many rounds, not \(rounds)")
            try BlockingServerTests.waitForBlocked(0, control)
            // Every connection is usable again.
            #expect(try connections[0].call("PING") == .simple("PONG"))
            #expect(try connections[clients - 1].call("PING") == .simple("PONG"))
        }
    }

    /// A wait served before its timeout leaves no timeout behind: the client's next wait (longer)
    /// is not ended by the first one's deadline, and times out at its own.
    @Test func aServedWaitsTimeoutDoesNotEndTheNextWait() throws {
        try withKVServer(fsync: "everysec") { server, control in
            let waiter = try RESPTestClient(port: server.kvPort)
            try waiter.client.send(RESPValue.command(["BLPOP", "q", "0.3"].map { Array($0.utf8) }))
            try BlockingServerTests.waitForBlocked(1, control)
            #expect(try control.call("RPUSH", "q", "a") == .integer(1))
            #expect(try waiter.read() == .array([.bulk("q"), .bulk("a")]))
            let started = ContinuousClock.now
            try waiter.client.send(RESPValue.command(["BLPOP", "q", "1.2"].map { Array($0.utf8) }))
            #expect(try waiter.read(deadline: .now + .seconds(10)) == .array(nil))
            let waited = ContinuousClock.now - started
            #expect(waited >= .milliseconds(1200), "the second wait ended after \(waited)")
            // A closed waiter and an unblocked one leave nothing to fire either.
            let closing = try RESPTestClient(port: server.kvPort)
            try closing.client.send(RESPValue.command(["BLPOP", "q", "0.2"].map { Array($0.utf8) }))
            let unblocked = try RESPTestClient(port: server.kvPort)
            guard case .integer(let id) = try unblocked.call("CLIENT", "ID") else { throw TestFailure("CLIENT ID") }
            try unblocked.client.send(RESPValue.command(["BLPOP", "q", "0.2"].map { Array($0.utf8) }))
            try BlockingServerTests.waitForBlocked(2, control)
            closing.client.close()
            #expect(try control.call("CLIENT", "UNBLOCK", "\(id)") == .integer(1))
            #expect(try unblocked.read() == .array(nil))
            try BlockingServerTests.waitForBlocked(0, control)
            let later = ContinuousClock.now
            try unblocked.client.send(RESPValue.command(["BLPOP", "q", "0.8"].map { Array($0.utf8) }))
            #expect(try unblocked.read(deadline: .now + .seconds(10)) == .array(nil))
            #expect(ContinuousClock.now - later >= .milliseconds(800))
        }
    }
}
