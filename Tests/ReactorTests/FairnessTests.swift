// The loop's two lanes (EventLoop.swift): a connection with more waiting than one small turn
// moves to the bulk lane, a newcomer is served after at most one bounded slice of bulk work
// (not after a round over every flooder), and a flooder that drains its socket moves back.
// Counted in bytes served, not timed.

import CLinux
@testable import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ReactorTests {
    @Suite struct FairnessTests {
        /// Counts every byte its connections deliver.
        final class CountingDelegate: ConnectionDelegate {
            var bytes = 0
            var onRead: (() -> Void)?
            func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
                self.bytes += bytes.count
                self.onRead?()
            }
        }

        @Test func newcomerWaitsForOneBulkSliceNotForEveryFlooder() throws {
            let loop = try EventLoop()
            let flooderCount = 100
            let backlog = 64 * 1024
            let flood = CountingDelegate()
            var peers: [Descriptor] = []
            var flooders: [Connection] = []
            defer {
                for c in flooders { c.abort() }
                for p in peers { Sys.close(p) }
            }
            for _ in 0..<flooderCount {
                let (local, peer) = try makeSocketPair()
                peers.append(peer)
                try writeAll(peer.rawValue, [UInt8](repeating: 0x2A, count: backlog), deadline: .now + .seconds(5))
                flooders.append(try Connection(loop: loop, descriptor: local, peer: nil, delegate: flood))
            }
            let slice = loop.bulkEventsPerIteration * flooders[0].readBudgetPerWakeup

            let newcomer = CountingDelegate()
            var newcomerConnection: Connection?
            var floodAtArrival: Int?
            var floodAtFirstReply: Int?
            newcomer.onRead = {
                floodAtFirstReply = floodAtFirstReply ?? flood.bytes
            }
            loop.addBeforeSleepHook { [unowned loop] in  // the loop owns its hooks: no cycle
                // Once every flooder has had a turn and been moved aside, a newcomer sends one byte.
                if newcomerConnection == nil && flooders.allSatisfy(\.inBulkLane) {
                    do {
                        let (local, peer) = try makeSocketPair()
                        peers.append(peer)
                        try writeAll(peer.rawValue, [1], deadline: .now + .seconds(5))
                        floodAtArrival = flood.bytes
                        newcomerConnection = try Connection(loop: loop, descriptor: local, peer: nil, delegate: newcomer)
                    } catch {
                        Issue.record("newcomer: \(error)")
                        loop.stop()
                    }
                }
                if flood.bytes == flooderCount * backlog && floodAtFirstReply != nil { loop.stop() }
            }
            defer { newcomerConnection?.abort() }

            #expect(try runLoop(loop))
            let arrival = try #require(floodAtArrival, "the flooders never all reached the bulk lane")
            let served = try #require(floodAtFirstReply, "the newcomer was never served")
            #expect(newcomer.bytes == 1)
            // A first turn per flooder (smaller than later priority turns) happened before the newcomer came.
            #expect(arrival == flooderCount * Connection.firstTurnBudget)
            #expect(Connection.firstTurnBudget < flooders[0].priorityReadBudget)
            // The newcomer waited for at most one bulk slice, while most of the flood still waited.
            #expect(served - arrival <= slice, "newcomer waited behind \(served - arrival) flood bytes")
            #expect(served < flooderCount * backlog / 2)
            #expect(flood.bytes == flooderCount * backlog)
        }

        @Test func aFlooderQuietForItsPeriodIsLightAgainAtItsNextTurn() throws {
            let loop = try EventLoop()
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(peer) }
            let delegate = CountingDelegate()
            let connection = try Connection(loop: loop, descriptor: local, peer: nil, delegate: delegate)
            defer { connection.abort() }
            connection.quietBeforePriority = .zero  // the period itself is not what is tested
            let backlog = 200 * 1024
            try writeAll(peer.rawValue, [UInt8](repeating: 1, count: backlog), deadline: .now + .seconds(5))
            var inBulkWhenDrained: Bool?
            var smallRequestSent = false
            loop.addBeforeSleepHook { [unowned loop] in  // the loop owns its hooks: no cycle
                guard delegate.bytes == backlog, !smallRequestSent else {
                    if delegate.bytes == backlog + 1 { loop.stop() }
                    return
                }
                // The backlog is drained (the turn that drained it has ended): one small request.
                inBulkWhenDrained = connection.inBulkLane
                smallRequestSent = true
                try? writeAll(peer.rawValue, [2], deadline: .now + .seconds(5))
            }
            #expect(try runLoop(loop))
            #expect(inBulkWhenDrained == true)
            #expect(delegate.bytes == backlog + 1)
            #expect(!connection.inBulkLane)
            #expect(loop.lane(of: connection.descriptor) == .priority)
        }

        @Test func aFlooderThatWaitedItsTurnStaysInTheBulkLane() throws {
            let loop = try EventLoop()
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(peer) }
            let delegate = CountingDelegate()
            let connection = try Connection(loop: loop, descriptor: local, peer: nil, delegate: delegate)
            defer { connection.abort() }
            connection.quietBeforePriority = .zero  // every gap counts as quiet: only the size decides
            let backlog = 200 * 1024
            try writeAll(peer.rawValue, [UInt8](repeating: 1, count: backlog), deadline: .now + .seconds(5))
            var secondSent = false
            loop.addBeforeSleepHook { [unowned loop] in  // the loop owns its hooks: no cycle
                if delegate.bytes == backlog && !secondSent {
                    // Drained; then more than a priority turn's worth arrives at once.
                    secondSent = true
                    try? writeAll(peer.rawValue, [UInt8](repeating: 3, count: 8 * 1024), deadline: .now + .seconds(5))
                } else if delegate.bytes == backlog + 8 * 1024 {
                    loop.stop()
                }
            }
            #expect(try runLoop(loop))
            #expect(connection.inBulkLane)
            #expect(loop.lane(of: connection.descriptor) == .bulk)
        }

        @Test func aPeerSendingLittleNeverLeavesThePriorityLane() throws {
            let loop = try EventLoop()
            let (local, peer) = try makeSocketPair()
            defer { Sys.close(peer) }
            let delegate = CountingDelegate()
            let connection = try Connection(loop: loop, descriptor: local, peer: nil, delegate: delegate)
            defer { connection.abort() }
            var sent = 0
            delegate.onRead = { [unowned delegate, unowned connection, unowned loop] in  // no cycle through the delegate
                // Requests of a few hundred bytes, one after the other, as a client waiting for replies sends.
                if delegate.bytes == sent && sent < 100 * 300 {
                    try? writeAll(peer.rawValue, [UInt8](repeating: 7, count: 300), deadline: .now + .seconds(5))
                    sent += 300
                }
                #expect(!connection.inBulkLane)
                if delegate.bytes == 100 * 300 { loop.stop() }
            }
            try writeAll(peer.rawValue, [UInt8](repeating: 7, count: 300), deadline: .now + .seconds(5))
            sent = 300
            #expect(try runLoop(loop))
            #expect(delegate.bytes == 100 * 300)
            #expect(loop.lane(of: connection.descriptor) == .priority)
        }
    }
}
