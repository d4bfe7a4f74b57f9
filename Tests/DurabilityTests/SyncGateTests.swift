// The group-commit gate (Sources/Server/SyncGate.swift): after a sync ends, the next one waits for
// the clients it answered to write again, but never longer than a quarter of a sync, and a lone
// client is never held.

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
        let r9 = gate.syncFinished(answered: 10, waiting: 0, duration: 2_000_000, now: 0)
        #expect(r9 == 500_000)
        let r10 = gate.mayStart(waiting: 3, now: 499_999)
        #expect(!r10)
        let r11 = gate.mayStart(waiting: 3, now: 500_000)
        #expect(r11)
        let r12 = gate.syncFinished(answered: 10, waiting: 0, duration: 40_000_000, now: 0)
        #expect(r12 == 1_000_000)
        let r13 = gate.mayStart(waiting: 1, now: 1_000_000)
        #expect(r13)
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
