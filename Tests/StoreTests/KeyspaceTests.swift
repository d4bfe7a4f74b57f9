// The keyspace table on its own: hashing, growth and shrinking with invariants checked, the byte account,
// SCAN across resizes, sampling, and glob patterns.

import Testing
import TestSupport

@testable import Store

/// The tests' seeded generator (TestSupport's SplitMix64): every failure reproduces from its seed.
typealias SeededGenerator = SplitMix

/// What ``Keyspace/usedBytes`` must be, recomputed from the entries themselves.
func recomputedBytes(_ keyspace: Keyspace) -> Int {
    var bytes = 0
    for index in 0..<keyspace.count {
        bytes += Keyspace.expectedBytes(keyLength: keyspace.key(at: index).count,
                                        valueLength: keyspace.value(at: index).count,
                                        hasDeadline: keyspace.deadline(at: index) != nil)
    }
    let buckets = keyspace.bucketCounts
    return bytes + 4 * (buckets.main + buckets.target)
}

@Suite struct KeyspaceTests {
    @Test func sipHash13MatchesPublishedVectors() {
        let hasher = SipHash13(k0: 0, k1: 0)
        func hash(_ text: String) -> UInt64 {
            Array(text.utf8).withUnsafeBytes { hasher.hash($0.baseAddress, count: $0.count) }
        }
        // SipHash-1-3 with an all-zero key, as published (the 64-bit result written most significant first).
        #expect(hash("") == 0xd1fb_a762_150c_532c)
        #expect(hash("siphash") == 0x8264_ceec_cb16_bcbe)
        // Every tail length hashes differently, and the overlapping tail load agrees with a byte loop.
        let data = (0..<40).map { UInt8($0) }
        var seen = Set<UInt64>()
        for length in 0...data.count {
            seen.insert(data.withUnsafeBytes { hasher.hash($0.baseAddress, count: length) })
        }
        #expect(seen.count == data.count + 1)
    }

    @Test func insertsFindsAndRemovesThroughGrowthAndShrinkingWithInvariantsIntact() {
        let keyspace = Keyspace(hashKey: (1, 2))
        var model: [[UInt8]: ([UInt8], Int64?)] = [:]
        var generator = SeededGenerator(seed: 7)
        for step in 0..<6000 {
            let key = Array("key:\(Int.random(in: 0..<3000, using: &generator))".utf8)
            switch Int.random(in: 0..<10, using: &generator) {
            case 0..<6:
                // Values from empty to well past the inline capacity.
                let length = [0, 5, 16, 28, 40, 100, 3000].randomElement(using: &generator)!
                let value = [UInt8](repeating: UInt8(step & 0xFF), count: length)
                let deadline: Int64? = Bool.random(using: &generator) ? Int64(step) : nil
                keyspace.set(key, value, deadline: deadline)
                model[key] = (value, deadline)
            case 6..<9:
                let removed = key.withUnsafeBytes { keyspace.remove($0) }
                #expect(removed == (model.removeValue(forKey: key) != nil))
            default:
                if let index = keyspace.find(key) {
                    let deadline: Int64? = Bool.random(using: &generator) ? Int64(step) : nil
                    keyspace.setDeadline(at: index, deadline)
                    model[key]!.1 = deadline
                }
            }
            if step % 97 == 0 || step > 5900 {
                keyspace.checkInvariants()
                #expect(keyspace.usedBytes == recomputedBytes(keyspace))
            }
        }
        #expect(keyspace.count == model.count)
        for (key, (value, deadline)) in model {
            let index = try! #require(keyspace.find(key))
            #expect([UInt8](keyspace.value(at: index)) == value)
            #expect(keyspace.deadline(at: index) == deadline)
        }
        #expect(keyspace.countWithDeadline == model.values.filter { $0.1 != nil }.count)
        // Remove everything: the table shrinks back and the account returns to the empty table's.
        for key in model.keys {
            key.withUnsafeBytes { _ = keyspace.remove($0) }
        }
        while keyspace.rehash(steps: 100) {}
        keyspace.checkInvariants()
        #expect(keyspace.count == 0)
        #expect(keyspace.usedBytes == 4 * keyspace.bucketCounts.main)
        #expect(keyspace.bucketCounts.main == 16)
    }

    @Test func theByteAccountIsExactForEachKindOfEntry() {
        let keyspace = Keyspace()
        let base = keyspace.usedBytes
        #expect(base == 16 * 4)
        keyspace.set(Array(repeating: 1, count: 16), Array(repeating: 2, count: 16))
        #expect(keyspace.usedBytes == base + 64, "16-byte key and value: one slot, nothing else")
        keyspace.set(Array(repeating: 1, count: 16), Array(repeating: 2, count: 16), deadline: 5)
        #expect(keyspace.usedBytes == base + 64 + 16, "a deadline adds its pair")
        keyspace.set(Array(repeating: 1, count: 16), Array(repeating: 2, count: 100))
        #expect(keyspace.usedBytes == base + 64 + 116, "past 40 bytes, key and value go out of line")
        keyspace.set(Array(repeating: 1, count: 16), Array(repeating: 2, count: 24))
        #expect(keyspace.usedBytes == base + 64, "and come back inline")
        keyspace.checkInvariants()
    }

    /// Keys present for a whole scan come back at least once while the table grows (and, in the second
    /// case, shrinks) between the calls.
    @Test(arguments: [true, false])
    func scanReturnsEveryKeyPresentThroughoutAcrossResizes(growing: Bool) {
        let keyspace = Keyspace(hashKey: (3, 4))
        let stable = (0..<500).map { Array("stable:\($0)".utf8) }
        for key in stable { keyspace.set(key, key) }
        var transient = (0..<(growing ? 0 : 5000)).map { Array("transient:\($0)".utf8) }
        for key in transient { keyspace.set(key, []) }
        var seen = Set<[UInt8]>()
        var cursor: UInt64 = 0
        var calls = 0
        var added = 0
        var sawResize = false
        repeat {
            cursor = keyspace.scan(cursor: cursor) { seen.insert([UInt8](keyspace.key(at: $0))) }
            calls += 1
            if growing && calls <= 100 {
                // 4,000 keys over the first 100 calls: several doublings (a table that grows for ever
                // faster than the scan advances would never let it finish).
                for _ in 0..<40 {
                    keyspace.set(Array("added:\(added)".utf8), [])
                    added += 1
                }
            } else {
                for _ in 0..<40 where !transient.isEmpty {
                    transient.removeLast().withUnsafeBytes { _ = keyspace.remove($0) }
                }
            }
            sawResize = sawResize || keyspace.isResizing
            keyspace.checkInvariants()
        } while cursor != 0 && calls < 100_000
        #expect(sawResize)
        #expect(stable.allSatisfy { seen.contains($0) })
    }

    @Test func scanOfAnUnchangedTableVisitsEachKeyExactlyOnce() {
        let keyspace = Keyspace()
        for index in 0..<1000 { keyspace.set(Array("k\(index)".utf8), []) }
        while keyspace.rehash(steps: 100) {}
        var visits: [[UInt8]: Int] = [:]
        var cursor: UInt64 = 0
        repeat {
            cursor = keyspace.scan(cursor: cursor) { visits[[UInt8](keyspace.key(at: $0)), default: 0] += 1 }
        } while cursor != 0
        #expect(visits.count == 1000)
        #expect(visits.values.allSatisfy { $0 == 1 })
    }

    @Test func randomSamplesCoverEveryKeyAndOnlyKeysWithDeadlines() {
        let keyspace = Keyspace(hashKey: (5, 6))
        for index in 0..<64 {
            keyspace.set(Array("k\(index)".utf8), [], deadline: index % 4 == 0 ? Int64(index) : nil)
        }
        var hits = [Int](repeating: 0, count: 64)
        for _ in 0..<64 * 200 {
            let index = keyspace.randomEntry()!
            let name = String(decoding: keyspace.key(at: index), as: UTF8.self)
            hits[Int(name.dropFirst())!] += 1
        }
        // Expected 200 each; a uniform sampler stays far inside these bounds.
        #expect(hits.allSatisfy { $0 > 100 && $0 < 320 }, "\(hits)")
        var volatile = Set<Int>()
        for _ in 0..<2000 {
            let index = keyspace.entryWithDeadline(atPosition: keyspace.randomDeadlinePosition()!)
            #expect(keyspace.deadline(at: index) != nil)
            volatile.insert(index)
        }
        #expect(volatile.count == 16)
        #expect(Keyspace().randomEntry() == nil)
    }

    @Test(arguments: [
        ("*", "", true), ("*", "anything", true), ("h?llo", "hello", true), ("h?llo", "hllo", false),
        ("h*llo", "heeeello", true), ("h*llo", "hello world", false), ("h[ae]llo", "hallo", true),
        ("h[ae]llo", "hillo", false), ("h[^e]llo", "hallo", true), ("h[^e]llo", "hello", false),
        ("h[a-b]llo", "hbllo", true), ("h[b-a]llo", "hallo", true), ("h[a-b]llo", "hcllo", false),
        ("h\\*llo", "h*llo", true), ("h\\*llo", "hello", false), ("a\\", "a\\", true),
        ("[\\]]", "]", true), ("[abc", "b", true), ("[abc", "bc", false), ("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaa", false),
        ("user:*:name", "user:42:name", true), ("user:*:name", "user:42:mail", false), ("", "", true), ("", "a", false),
        ("**", "x", true), ("?", "", false), ("[a-]", "-", false), ("[a-]", "_", true), ("[a-]", "b", false),
    ])
    func globMatchesAsRedisDoes(pattern: String, string: String, expected: Bool) {
        #expect(Glob.matches(pattern: Array(pattern.utf8), Array(string.utf8)) == expected, "\(pattern) ~ \(string)")
    }

    @Test func aFullTableNeverStopsTheWorldEachOperationMovesAFewBuckets() {
        let keyspace = Keyspace()
        var maximumTarget = 0
        for index in 0..<20_000 {
            keyspace.set(Array("k\(index)".utf8), [])
            maximumTarget = max(maximumTarget, keyspace.bucketCounts.target)
            if keyspace.isResizing {
                // The main table is never abandoned in one step: the resize spans many operations.
                #expect(keyspace.bucketCounts.target == 2 * keyspace.bucketCounts.main)
            }
        }
        #expect(maximumTarget >= 16_384)
        keyspace.checkInvariants()
    }
}
