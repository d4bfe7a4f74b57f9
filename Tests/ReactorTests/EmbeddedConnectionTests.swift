// The test harness (EmbeddedConnection): a delegate driven with bytes and no network or running
// loop. Feed inbound bytes, read what the delegate wrote (one rule: what a write queues goes out
// at the turn's end, whoever wrote it), close the inbound side, fire timers by turning the
// loop's clock, deliver posted messages; and the harness honours pauseReading as a loop would.

@testable import Reactor
import Testing

extension ReactorTests {
    @Suite struct EmbeddedConnectionTests {
        /// Upper-cases every byte; greets on open; `after` arms a reply on a timer; `PAUSE` stops reading.
        final class Shouter: ConnectionDelegate {
            var eofs = 0
            var closed = 0
            var inbox: Inbox<String>?
            func connectionDidOpen(_ connection: Connection) {
                connection.write("hi\n".utf8)
            }
            func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
                let text = String(decoding: bytes, as: UTF8.self)
                if text.hasPrefix("after") {
                    // Not flushed by hand: a timer's write goes out at the end of its turn.
                    connection.loop.scheduleTimer(after: .seconds(30)) { connection.write("late\n".utf8) }
                    connection.loop.scheduleTimer(after: .seconds(10), repeating: .seconds(10)) { connection.write(".".utf8) }
                    return
                }
                if text.hasPrefix("PAUSE") { connection.pauseReading() }
                connection.write(bytes.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 })
            }
            func connectionDidReadEOF(_ connection: Connection) {
                self.eofs += 1
                connection.write("bye\n".utf8)
                connection.close()
            }
            func connectionDidClose(_ connection: Connection) { self.closed += 1 }
        }

        @Test func feedsBytesAndReadsWhatTheDelegateWrote() throws {
            let delegate = Shouter()
            let harness = try EmbeddedConnection(delegate: delegate)
            #expect(harness.readOutbound() == Array("hi\n".utf8))
            try harness.writeInbound("hello\n".utf8)
            #expect(harness.readOutbound() == Array("HELLO\n".utf8))
            #expect(harness.readOutbound() == [])
            // More than the socketpair's buffers hold: the harness reads as the delegate writes.
            let big = [UInt8](repeating: UInt8(ascii: "a"), count: 3 * 1024 * 1024)
            try harness.writeInbound(big)
            let answer = harness.readOutbound()
            #expect(answer.count == big.count && answer.allSatisfy { $0 == UInt8(ascii: "A") })
            harness.closeInbound()
            #expect(delegate.eofs == 1)
            #expect(harness.readOutbound() == Array("bye\n".utf8))
            #expect(harness.isClosed)
            #expect(delegate.closed == 1)
        }

        @Test func timersFireOnlyWhenTheClockIsTurned() throws {
            let harness = try EmbeddedConnection(delegate: Shouter())
            _ = harness.readOutbound()
            try harness.writeInbound("after".utf8)
            harness.advanceTime(by: .seconds(9))
            #expect(harness.readOutbound() == [])
            harness.advanceTime(by: .seconds(1))
            #expect(harness.readOutbound() == Array(".".utf8))
            harness.advanceTime(by: .seconds(25))
            // The repeating timer at 20 and 30 s, the one-shot at 30 s (scheduled before it).
            #expect(harness.readOutbound() == Array(".late\n.".utf8))
            harness.advanceTime(by: .seconds(10))
            #expect(harness.readOutbound() == Array(".".utf8))
        }

        @Test func postedMessagesRunWhenAsked() throws {
            let delegate = Shouter()
            let harness = try EmbeddedConnection(delegate: delegate)
            _ = harness.readOutbound()
            let connection = harness.connection
            let inbox = harness.loop.makeInbox { (text: String) in connection.write(text.utf8) }
            inbox.post("posted\n")
            #expect(harness.readOutbound() == [])
            harness.runPosted()
            #expect(harness.readOutbound() == Array("posted\n".utf8))
        }

        @Test func aPausedConnectionReadsNothingUntilResumed() throws {
            let harness = try EmbeddedConnection(delegate: Shouter())
            _ = harness.readOutbound()
            try harness.writeInbound("PAUSE\n".utf8)
            #expect(harness.readOutbound() == Array("PAUSE\n".utf8))
            try harness.writeInbound("later\n".utf8)
            #expect(harness.readOutbound() == [], "read while paused")
            harness.connection.resumeReading()
            #expect(harness.readOutbound() == Array("LATER\n".utf8))
        }
    }
}
