// The group-commit gate (Sources/Server/SyncGate.swift): after a sync ends, the next one waits for
// the clients it answered to write again, but never longer than a quarter of a sync, counted from
// when a write first waits; a hold with nothing waiting is never spent; a lone client is never held.

@testable import Server
import Testing

@Suite struct SyncGateTests {
    @Test func aLoneClientIsNeverHeld() {
        var gate = SyncGate()
        // One write answered, none waiting: the next write alone completes the expected group.
        let r1 = gate.syncFinished(answered: 1, waiting: 0, duration: 2_000_000, now: 0)
        #expect(r1 == 500_000)
        let r2 = gate.mayStart(waiting: 0, now: 10)
        #expect(!r2)
        let r3 = gate.mayStart(waiting: 1, now: 100)
        #expect(r3)
    }

    @Test func clientsTakingTurnsAreMergedIntoOneGroup() {
        var gate = SyncGate()
        // 25 answered while 25 others already wait: hold until the answered ones are back too.
        let r4 = gate.syncFinished(answered: 25, waiting: 25, duration: 2_000_000, now: 1_000)
        #expect(r4 != nil)
        let r5 = gate.mayStart(waiting: 25, now: 1_100)
        #expect(!r5)
        let r6 = gate.mayStart(waiting: 49, now: 1_200)
        #expect(!r6)
        let r7 = gate.mayStart(waiting: 50, now: 1_300)
        #expect(r7)
        // Once started, the gate is open until the next sync ends.
        let r8 = gate.mayStart(waiting: 0, now: 1_400)
        #expect(r8)
    }

    @Test func theHoldEndsAfterAQuarterOfTheLastSyncAndNeverPastOneMillisecond() {
        var gate = SyncGate()
        // Writes already waiting when the sync ends: the hold's clock starts then.
        let r9 = gate.syncFinished(answered: 10, waiting: 3, duration: 2_000_000, now: 0)
        #expect(r9 == 500_000)
        #expect(gate.deadline == 500_000)
        let r10 = gate.mayStart(waiting: 3, now: 499_999)
        #expect(!r10)
        let r11 = gate.mayStart(waiting: 3, now: 500_000)
        #expect(r11)
        #expect(gate.deadline == 0)
        let r12 = gate.syncFinished(answered: 10, waiting: 1, duration: 40_000_000, now: 0)
        #expect(r12 == 1_000_000)
        let r12b = gate.mayStart(waiting: 1, now: 999_999)
        #expect(!r12b)
        let r13 = gate.mayStart(waiting: 1, now: 1_000_000)
        #expect(r13)
    }

    @Test func aHoldThatExpiresWithNothingWaitingKeepsHoldingUntilAWriteThenAtMostTheHold() {
        var gate = SyncGate()
        // 40 answered, none waiting: no deadline yet, the loop need not wake for the gate.
        let held = gate.syncFinished(answered: 40, waiting: 0, duration: 2_000_000, now: 1_000)
        #expect(held == 500_000)
        #expect(gate.deadline == 0)
        // Far past the hold, still nothing waiting: the gate is not spent (it was, before: the
        // first client back then started a sync alone).
        let r1 = gate.mayStart(waiting: 0, now: 1_000 + 500_000)
        #expect(!r1)
        let r2 = gate.mayStart(waiting: 0, now: 10_000_000)
        #expect(!r2)
        #expect(gate.deadline == 0)
        #expect(gate.expectedWrites == 40)
        // The first write back starts the hold's clock: held, now with a deadline.
        let r3 = gate.mayStart(waiting: 1, now: 20_000_000)
        #expect(!r3)
        #expect(gate.deadline == 20_500_000)
        // More come back, not all: still held until the hold has passed since the first one.
        let r4 = gate.mayStart(waiting: 30, now: 20_499_999)
        #expect(!r4)
        #expect(gate.deadline == 20_500_000)
        let r5 = gate.mayStart(waiting: 30, now: 20_500_000)
        #expect(r5)
        // Started: open until the next sync ends.
        let r6 = gate.mayStart(waiting: 0, now: 20_600_000)
        #expect(r6)
    }

    @Test func anExpiredEmptyHoldStartsAtOnceWhenTheGroupComesBackComplete() {
        var gate = SyncGate()
        gate.syncFinished(answered: 25, waiting: 0, duration: 2_000_000, now: 0)
        let r1 = gate.mayStart(waiting: 0, now: 5_000_000)
        #expect(!r1)
        // All 25 back in one iteration, long after the hold would have ended: start at once.
        let r2 = gate.mayStart(waiting: 25, now: 6_000_000)
        #expect(r2)
        #expect(gate.deadline == 0)
    }

    @Test func theGroupCompleteStartsAtOnce() {
        var gate = SyncGate()
        gate.syncFinished(answered: 20, waiting: 5, duration: 2_000_000, now: 0)
        let r1 = gate.mayStart(waiting: 25, now: 1)
        #expect(r1)
        // More than expected (a client pipelined): also at once.
        gate.syncFinished(answered: 20, waiting: 0, duration: 2_000_000, now: 10)
        let r2 = gate.mayStart(waiting: 21, now: 11)
        #expect(r2)
    }

    @Test func aLoneClientIsNeverHeldBeyondTheHold() {
        var gate = SyncGate()
        // A lone client sending one write per reply: its write completes the expected group.
        gate.syncFinished(answered: 1, waiting: 0, duration: 4_000_000, now: 0)
        let r1 = gate.mayStart(waiting: 1, now: 3_000_000)
        #expect(r1)
        // A lone client whose sync answered more than it will send back (fewer pipelined writes
        // next time): its write waits the hold at most, counted from when it was first seen.
        gate.syncFinished(answered: 8, waiting: 0, duration: 4_000_000, now: 10_000_000)
        let r2 = gate.mayStart(waiting: 0, now: 12_000_000)
        #expect(!r2)
        let r3 = gate.mayStart(waiting: 2, now: 13_000_000)
        #expect(!r3)
        #expect(gate.deadline == 14_000_000)
        let r4 = gate.mayStart(waiting: 2, now: 13_999_999)
        #expect(!r4)
        let r5 = gate.mayStart(waiting: 2, now: 14_000_000)
        #expect(r5)
    }

    @Test func nothingAnsweredOrAnInstantSyncHoldsNothing() {
        var gate = SyncGate()
        let r14 = gate.syncFinished(answered: 0, waiting: 5, duration: 2_000_000, now: 0)
        #expect(r14 == nil)
        let r15 = gate.mayStart(waiting: 0, now: 0)
        #expect(r15)
        let r16 = gate.syncFinished(answered: 5, waiting: 0, duration: 3, now: 0)
        #expect(r16 == nil)
        let r17 = gate.mayStart(waiting: 0, now: 0)
        #expect(r17)
    }
}
