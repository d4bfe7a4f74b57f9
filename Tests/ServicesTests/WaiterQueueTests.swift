// The waiters of one key (Blocking.swift, BlockingRegistry.WaiterQueue) against an array model:
// served first-come, removed from anywhere (timeouts, closes, CLIENT UNBLOCK), and bounded by the
// waiters it holds however many have passed through it.

import Testing
import TestSupport

@testable import Services

@Suite struct WaiterQueueTests {
    @Test(arguments: [UInt64(1), 2, 3])
    func aQueueAgreesWithAnArrayUnderArrivalsServesAndRemovals(seed: UInt64) {
        var generator = SplitMix(state: seed)
        let queue = BlockingRegistry.WaiterQueue<Int>()
        var model: [Int] = []
        var next = 0
        for step in 0..<20_000 {
            // Long runs of one kind: many arrivals, then many serves (the head moves far), then mixed.
            let phase = (step / 700) % 3
            let roll = Int.random(in: 0..<10, using: &generator)
            if model.isEmpty || roll < [8, 2, 5][phase] {
                queue.append(next)
                model.append(next)
                next += 1
            } else if roll < 8 || model.count == 1 {
                queue.remove(model.removeFirst())  // served: the first
            } else {
                let index = Int.random(in: 0..<model.count, using: &generator)
                queue.remove(model.remove(at: index))  // timed out, closed, unblocked
            }
            if Int.random(in: 0..<50, using: &generator) == 0 { queue.remove(next + 1) }  // not waiting: no change
            #expect(queue.isEmpty == model.isEmpty)
            #expect(queue.first(skipping: { _ in false }) == model.first)
            if model.count > 2 {
                let skipped = Set(model.prefix(2))
                #expect(queue.first(skipping: { skipped.contains($0) }) == model[2])
            }
            #expect(queue.storedCount <= 2 * model.count + 64, "step \(step)")
        }
    }
}

