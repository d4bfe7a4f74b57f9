// Fan-out pacing (Sources/Reactor/FanOutPacing.swift): a big round of fan-out flushes held until
// the previous big round's gap has passed accumulates frames (more per send), loses and reorders
// none; a small round, the first round, and a connection's own replies are never held. The
// loop's clock is passed in (`releaseFanOut(at:)`) so each case stands on a known side of the gap.

@testable import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension ReactorTests {
    @Suite struct FanOutPacingTests {
        /// Subscriber connections on socketpairs, the peers' ends kept to read what arrives.
        private final class Fixture {
            let loop: EventLoop
            var connections: [Connection] = []
            var peers: [Descriptor] = []
            let delegate = RecordingDelegate()

            init(count: Int, threshold: Int) throws {
                self.loop = try EventLoop()
                self.loop.fanOut.threshold = threshold
                for _ in 0..<count {
                    let (local, peer) = try makeSocketPair()
                    self.connections.append(try Connection(loop: self.loop, descriptor: local, peer: nil, delegate: self.delegate))
                    self.peers.append(peer)
                }
            }

            deinit {
                for connection in self.connections { connection.abort() }
                for peer in self.peers { Sys.close(peer) }
            }

            /// Queues `frame` to the first `count` connections (all by default) as the fan-out path does.
            func publish(_ frame: String, to count: Int? = nil) {
                let bytes = Array(frame.utf8)
                for connection in self.connections.prefix(count ?? self.connections.count) {
                    _ = bytes.withUnsafeBytes { connection.queueCopy(of: $0) }
                }
            }

            /// What peer `i` can read now (without waiting: whatever was sent is in its buffer).
            func readNow(_ i: Int) -> String {
                var result: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(self.peers[i].rawValue, $0.baseAddress, $0.count) }
                    guard n > 0 else { break }
                    result.append(contentsOf: buffer[0..<n])
                }
                return String(decoding: result, as: UTF8.self)
            }
        }

        @Test func aHeldRoundAccumulatesFramesAndSendsThemInOrder() throws {
            let f = try Fixture(count: 40, threshold: 16)
            let pacer = f.loop.fanOut
            // The first big round goes at once (no gap yet): a publication at a low rate waits for nothing.
            f.publish("a;")
            #expect(f.loop.releaseFanOut(at: Sys.monotonicNanoseconds()) == .max)
            #expect(pacer.bigRounds == 1 && pacer.bigRoundSends == 40 && pacer.heldPasses == 0)
            #expect(pacer.notBefore > pacer.lastRoundEnd, "the gap is half as long as the round took")
            for i in 0..<40 { #expect(f.readNow(i) == "a;") }
            // Within the gap the next two rounds are held: nothing is sent, frames accumulate.
            f.publish("b;")
            #expect(f.loop.releaseFanOut(at: pacer.lastRoundEnd) == pacer.notBefore)
            f.publish("c;")
            #expect(f.loop.releaseFanOut(at: pacer.notBefore - 1) == pacer.notBefore)
            #expect(pacer.heldPasses == 2 && pacer.bigRounds == 1)
            #expect(f.readNow(0).isEmpty && f.readNow(39).isEmpty)
            // Once the gap has passed, one send per connection carries both frames, in order.
            let gapEnd = pacer.notBefore
            #expect(f.loop.releaseFanOut(at: gapEnd) == .max)
            #expect(pacer.bigRounds == 2 && pacer.bigRoundSends == 80)
            for i in 0..<40 { #expect(f.readNow(i) == "b;c;") }
            #expect(pacer.queued.isEmpty)
        }

        @Test func smallRoundsAndOwnRepliesAreNeverHeld() throws {
            let f = try Fixture(count: 40, threshold: 16)
            let pacer = f.loop.fanOut
            f.publish("a;")
            _ = f.loop.releaseFanOut(at: Sys.monotonicNanoseconds())
            for i in 0..<40 { _ = f.readNow(i) }
            // A round under the threshold goes at once, even within the gap.
            f.publish("s;", to: 15)
            #expect(f.loop.releaseFanOut(at: pacer.lastRoundEnd) == .max)
            for i in 0..<40 { #expect(f.readNow(i) == (i < 15 ? "s;" : "")) }
            #expect(pacer.heldPasses == 0 && pacer.bigRounds == 1)
            // A held connection with a reply of its own is flushed at the end of the dispatch,
            // its frames first; the others keep waiting for their round.
            f.publish("b;")
            #expect(f.loop.releaseFanOut(at: pacer.lastRoundEnd) == pacer.notBefore)
            f.connections[3].write(Array("+PONG;".utf8))
            f.loop.flushPending()
            #expect(f.readNow(3) == "b;+PONG;")
            #expect(f.readNow(4).isEmpty)
            _ = f.loop.releaseFanOut(at: pacer.notBefore)
            #expect(f.readNow(3).isEmpty && f.readNow(4) == "b;")
        }

        @Test func aConnectionClosedWhileHeldIsSkipped() throws {
            let f = try Fixture(count: 40, threshold: 16)
            let pacer = f.loop.fanOut
            f.publish("a;")
            _ = f.loop.releaseFanOut(at: Sys.monotonicNanoseconds())
            f.publish("b;")
            #expect(f.loop.releaseFanOut(at: pacer.lastRoundEnd) == pacer.notBefore)
            f.connections[7].abort()
            #expect(f.loop.releaseFanOut(at: pacer.notBefore) == .max)
            #expect(f.readNow(6) == "a;b;" && f.readNow(8) == "a;b;")
            #expect(f.readNow(7) == "a;")
        }
    }
}
