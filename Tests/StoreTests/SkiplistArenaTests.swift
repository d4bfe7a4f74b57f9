// A large sorted set's node arena (Sources/Store/Types/SkiplistArena.swift): huge-page blocks are 2 MiB
// aligned, freed nodes are reused by size, and a sorted set that grows past the arena's threshold
// (malloc'd nodes and arena nodes mixed, members too long for the arena among them) agrees with a model
// through score changes, removals and re-adds, and gives every block back when it empties.

import Testing
@testable import Store

@Suite struct SkiplistArenaTests {
    @Test func hugePageMemoryIsAlignedZeroedAndWritable() {
        for blocks in [1, 3] {
            let bytes = blocks * HugePageMemory.blockBytes
            let memory = HugePageMemory.allocate(bytes)
            #expect(UInt(bitPattern: memory) % UInt(HugePageMemory.blockBytes) == 0)
            let words = memory.bindMemory(to: UInt64.self, capacity: bytes / 8)
            #expect(words[0] == 0 && words[bytes / 8 - 1] == 0)
            words[bytes / 8 - 1] = 7
            #expect(words[bytes / 8 - 1] == 7)
            HugePageMemory.free(memory, byteCount: bytes)
        }
    }

    @Test func freedNodesAreReusedBySizeClass() {
        var arena = SkiplistArena()
        #expect(SkiplistArena.rounded(62) == 64 && SkiplistArena.rounded(64) == 64 && SkiplistArena.rounded(65) == 80)
        #expect(SkiplistArena.rounded(SkiplistArena.largestNode + 1) == nil)
        let a = arena.allocate(64), b = arena.allocate(64), c = arena.allocate(80)
        #expect(b == a + 64 && c == b + 64 && arena.live == 3)
        arena.deallocate(a, rounded: 64)
        arena.deallocate(c, rounded: 80)
        #expect(arena.allocate(80) == c)
        #expect(arena.allocate(64) == a)
        #expect(arena.allocate(64) == c + 80)
        #expect(arena.live == 4 && arena.bytes >= HugePageMemory.blockBytes)
        // A second block once the first cannot hold the next node.
        var nodes: [UnsafeMutableRawPointer] = []
        for _ in 0..<(HugePageMemory.blockBytes / 512 + 1) { nodes.append(arena.allocate(512)) }
        #expect(arena.bytes >= 2 * HugePageMemory.blockBytes)
        for node in nodes { node.storeBytes(of: 1, as: UInt64.self) }
        arena.release()
    }

    @Test(arguments: [11, 12])
    func aSetPastTheArenaThresholdAgreesWithAModel(seed: UInt64) {
        typealias T = SortedSetValueTests
        var g = SortedSetTestGenerator(seed: seed)
        let value = SortedSetValue()
        for i in 0..<200 { _ = T.add(value, Array("seed\(i)".utf8), Double(i)) }
        for i in 0..<200 { _ = T.remove(value, Array("seed\(i)".utf8)) }
        let emptyBytes = value.usedBytes
        var model: T.Model = [:]
        let universe = SkiplistArena.threshold + 6000
        func member(_ n: Int) -> [UInt8] {
            // One member in 500 is too long for an arena node.
            n % 500 == 7 ? Array(repeating: UInt8(n % 251), count: 600) + Array("\(n)".utf8) : Array("m:\(n)".utf8)
        }
        // Grow past the threshold in order, then change, remove and re-add at random.
        for n in 0..<universe {
            let score = Double(n)
            #expect(T.add(value, member(n), score))
            model[member(n)] = score
        }
        #expect(value.usedBytes >= emptyBytes + HugePageMemory.blockBytes)
        for _ in 0..<20000 {
            let m = member(Int.random(in: 0..<universe, using: &g))
            switch Int.random(in: 0..<4, using: &g) {
            case 0:
                #expect(T.remove(value, m) == (model.removeValue(forKey: m) != nil))
            case 1:
                let score = (model[m] ?? 0) + 1
                #expect(T.add(value, m, score))
                model[m] = score
            default:
                let score = Double.random(in: -1000...Double(universe), using: &g)
                #expect(T.add(value, m, score))
                model[m] = score
            }
        }
        let expected = T.sorted(model)
        #expect(T.elements(value).map(\.0) == expected.map(\.0))
        #expect(T.elements(value).map(\.1) == expected.map(\.1))
        for (rank, (m, score)) in expected.enumerated() where rank % 97 == 0 {
            #expect(m.withUnsafeBytes { value.rank(of: $0) } == rank)
            #expect(m.withUnsafeBytes { value.score(of: $0) } == score)
            #expect(value.element(atRank: rank)?.member == m)
        }
        let copy = value.copy() as! SortedSetValue
        #expect(T.elements(copy).map(\.0) == expected.map(\.0))
        // Emptied (in random order, so arena and malloc'd nodes go in any order): every block is back.
        for m in model.keys.shuffled(using: &g) { #expect(T.remove(value, m)) }
        #expect(value.count == 0 && value.usedBytes == emptyBytes)
    }
}
