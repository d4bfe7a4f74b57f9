// LanePolicy (Sources/Reactor/LanePolicy.swift) as a value: the budgets it hands out per turn and
// the lane moves it asks for, without a loop or a socket. FairnessTests.swift checks the same
// rules end to end.

@testable import Reactor
import Testing

extension ReactorTests {
    @Suite struct LanePolicyTests {
        @Test func aNewConnectionGetsTheSmallFirstTurnThenThePriorityBudget() {
            var policy = LanePolicy()
            #expect(policy.startTurn() == LanePolicy.firstTurnBudget)
            #expect(policy.startTurn() == policy.priorityReadBudget)
            #expect(!policy.inBulkLane)
        }

        @Test func aTurnThatUsesItsWholeBudgetMovesToTheBulkLaneOnce() {
            var policy = LanePolicy()
            let budget = policy.startTurn()
            #expect(policy.endTurn(budget: budget, left: 0, drained: false, now: 0) == .bulk)
            policy.moved(to: .bulk)
            #expect(policy.inBulkLane)
            #expect(policy.startTurn() == policy.readBudgetPerWakeup)
            #expect(policy.endTurn(budget: policy.readBudgetPerWakeup, left: 0, drained: false, now: 1) == nil,
                    "already in the bulk lane")
        }

        @Test func aLightPriorityTurnStaysWhereItIs() {
            var policy = LanePolicy()
            let budget = policy.startTurn()
            #expect(policy.endTurn(budget: budget, left: budget - 10, drained: true, now: 0) == nil)
            #expect(policy.endTurn(budget: budget, left: 1, drained: false, now: 0) == nil)
        }

        @Test func aBulkConnectionMovesBackOnlyAfterAQuietSpellAndASmallRequest() {
            var policy = LanePolicy()
            policy.quietBeforePriority = 100
            policy.moved(to: .bulk)
            let budget = policy.startTurn()
            // The first drained turn only starts the quiet spell.
            #expect(policy.endTurn(budget: budget, left: budget - 10, drained: true, now: 1_000) == nil)
            // Too soon after it: still bulk (the spell restarts).
            #expect(policy.endTurn(budget: budget, left: budget - 10, drained: true, now: 1_050) == nil)
            // Quiet long enough, but this turn read more than a priority turn may: still bulk.
            let large = policy.priorityReadBudget + 1
            #expect(policy.endTurn(budget: budget, left: budget - large, drained: true, now: 1_200) == nil)
            // Quiet long enough and small: back to priority.
            #expect(policy.endTurn(budget: budget, left: budget - 10, drained: true, now: 1_300) == .priority)
            policy.moved(to: .priority)
            #expect(!policy.inBulkLane)
            #expect(policy.startTurn() == policy.priorityReadBudget)
        }

        @Test func aFullTurnInTheBulkLaneEndsTheQuietSpell() {
            var policy = LanePolicy()
            policy.quietBeforePriority = 100
            policy.moved(to: .bulk)
            let budget = policy.startTurn()
            #expect(policy.endTurn(budget: budget, left: budget - 10, drained: true, now: 1_000) == nil)
            #expect(policy.endTurn(budget: budget, left: 0, drained: false, now: 1_100) == nil)
            // The spell starts again at the next drained turn, not at 1_000.
            #expect(policy.endTurn(budget: budget, left: budget - 10, drained: true, now: 1_200) == nil)
            #expect(policy.endTurn(budget: budget, left: budget - 10, drained: true, now: 1_300) == .priority)
        }
    }
}
