// The large sorted set's member table (SortedSetSkiplist.swift): each slot keeps its distance from its
// home slot, which a removal's backward shift and a shrinking rehash use instead of the node's hash.
// A set grown past the huge-page threshold, emptied from both ends as ZPOPMIN and ZPOPMAX do, with
// random removals, re-adds and score moves between, agrees with a model at every checkpoint; every
// slot's distance is exact (or marked far, and then truly far), and the far marks are exercised.

import Testing
@testable import Store

@Suite struct SortedSetTableTests {
    typealias Model = [[UInt8]: Double]

    static func member(_ n: Int) -> [UInt8] { Array("element:\(n)".utf8) }

    static func check(_ list: SortedSetSkiplist, _ model: Model, probes: [Int]) {
        let audit = list.tableAudit()
        #expect(audit.consistent)
        #expect(list.count == model.count)
        for n in probes {
            let m = Self.member(n)
            #expect(m.withUnsafeBytes { list.node(for: $0)?.score } == model[m])
        }
        // The order: ascending (score, member), and the ends are the first and the tail.
        var previous: ([UInt8], Double)?
        var node = list.first
        var seen = 0
        while let current = node {
            let entry = ([UInt8](current.member), current.score)
            if let (pm, ps) = previous { #expect(ps < entry.1 || (ps == entry.1 && pm.lexicographicallyPrecedes(entry.0))) }
            #expect(model[entry.0] == entry.1)
            previous = entry
            seen += 1
            node = current.forward(0)
        }
        #expect(seen == model.count)
        #expect(list.tail.map { [UInt8]($0.member) } == previous?.0)
    }

    @Test(arguments: [11, 12])
    func popsAndRemovalsKeepTheTableExact(seed: UInt64) {
        var g = SortedSetTestGenerator(seed: seed)
        let list = SortedSetSkiplist()
        var model: Model = [:]
        let universe = 120_000
        var farSeen = 0
        // Grow: random members and scores (many repeats: moves), past the arena's threshold.
        for _ in 0..<150_000 {
            let m = Self.member(Int.random(in: 0..<universe, using: &g))
            let score = Double(Int.random(in: 0..<1_000_000, using: &g))
            _ = m.withUnsafeBytes { list.set($0, score: score) }
            model[m] = score
        }
        farSeen = max(farSeen, list.tableAudit().farSlots)
        Self.check(list, model, probes: (0..<200).map { _ in Int.random(in: 0..<universe, using: &g) })
        // Shrink: pop from both ends, remove at random, with some re-adds, down to a few members.
        var step = 0
        while model.count > 10 {
            step += 1
            let choice = Int.random(in: 0..<10, using: &g)
            if choice < 4, let first = list.first {
                let m = [UInt8](first.member)
                #expect(m.withUnsafeBytes { list.remove($0) } == model.removeValue(forKey: m))
            } else if choice < 7, let last = list.tail {
                let m = [UInt8](last.member)
                #expect(m.withUnsafeBytes { list.remove($0) } == model.removeValue(forKey: m))
            } else if choice < 9 {
                let m = Self.member(Int.random(in: 0..<universe, using: &g))
                #expect(m.withUnsafeBytes { list.remove($0) } == model.removeValue(forKey: m))
            } else {
                let m = Self.member(Int.random(in: 0..<universe, using: &g))
                let score = Double(Int.random(in: 0..<1_000_000, using: &g))
                _ = m.withUnsafeBytes { list.set($0, score: score) }
                model[m] = score
            }
            if step % 20_000 == 0 {
                farSeen = max(farSeen, list.tableAudit().farSlots)
                Self.check(list, model, probes: (0..<200).map { _ in Int.random(in: 0..<universe, using: &g) })
            }
        }
        Self.check(list, model, probes: Array(0..<universe).filter { $0 % 97 == 0 } + model.keys.compactMap { key in
            Int(String(decoding: key.dropFirst(8), as: UTF8.self))
        })
        // Runs of 15 or more slots occur in a table this large: the far marks were exercised.
        #expect(farSeen > 0)
    }
}
