// A collection's key of up to 24 bytes sits in its own slot (Sources/Store/KeyspaceMemory.swift) and
// the slot's key pointer names it: these tests move such slots around (a removal moves the last entry
// into the hole), turn strings into collections and back, with keys on both sides of the limit, against
// a dictionary model; `checkInvariants` checks every key pointer and the byte account at each step.

import Testing
import TestSupport

@testable import Store

@Suite struct CollectionKeyTests {
    init() { TestTypes.register() }

    /// What a model key holds.
    private enum Held: Equatable {
        case string([UInt8])
        case set([UInt8])  // one member
    }

    @Test func shortCollectionKeysLiveInTheirSlotsThroughMovesAndTypeChanges() {
        let keyspace = Keyspace()
        var model: [[UInt8]: Held] = [:]
        var random = SplitMix(seed: 0x5107)
        // Key lengths around the limit (24) and the string's inline capacity (40).
        let lengths = [1, 5, 23, 24, 25, 39, 40, 41, 64]
        func key(_ n: Int) -> [UInt8] {
            let length = lengths[n % lengths.count]
            var key = Array("k\(n)-".utf8)
            while key.count < length { key.append(UInt8(ascii: "a") + UInt8(key.count % 26)) }
            return Array(key.prefix(length))
        }
        for step in 0..<4_000 {
            let k = key(Int(random.next() % 60))
            switch random.next() % 5 {
            case 0, 1:
                let member = Array("m\(random.next() % 1_000)".utf8)
                _ = k.withUnsafeBytes { keyspace.set($0, collection: TestTypes.set([member]), deadline: nil) }
                model[k] = .set(member)
            case 2:
                // A short value stays inline with a short key; a long one goes out of line.
                let value = [UInt8](repeating: UInt8(ascii: "v"), count: Int(random.next() % 2) == 0 ? 3 : 50)
                keyspace.set(k, value)
                model[k] = .string(value)
            default:
                let removed = k.withUnsafeBytes { keyspace.remove($0) }
                #expect(removed == (model.removeValue(forKey: k) != nil), "step \(step)")
            }
            if step % 50 == 0 || step < 200 { keyspace.checkInvariants() }
        }
        keyspace.checkInvariants()
        #expect(keyspace.count == model.count)
        for (k, held) in model {
            guard let index = keyspace.find(k) else {
                Issue.record("\(k) missing")
                continue
            }
            #expect([UInt8](keyspace.key(at: index)) == k)
            switch held {
            case .string(let value):
                #expect([UInt8](keyspace.value(at: index)) == value)
            case .set(let member):
                let set = keyspace.collection(at: index) as? SetValue
                #expect(set?.members == [member])
            }
        }
        // Every entry gone: the account returns to the empty table's.
        for k in model.keys { _ = k.withUnsafeBytes { keyspace.remove($0) } }
        keyspace.checkInvariants()
        #expect(keyspace.collectionCount == 0)
    }

    @Test func aShortCollectionKeyCostsNoBlockOfItsOwn() {
        let keyspace = Keyspace()
        let short = [UInt8](repeating: 0x61, count: 24)
        let long = [UInt8](repeating: 0x62, count: 25)
        let set = TestTypes.set([bytes("1"), bytes("2")])
        let shortIndex = short.withUnsafeBytes { keyspace.set($0, collection: set.copy(), deadline: nil) }
        #expect(keyspace.usedBytes(at: shortIndex) == Keyspace.slotBytes + 4 + set.usedBytes)
        let longIndex = long.withUnsafeBytes { keyspace.set($0, collection: set.copy(), deadline: nil) }
        #expect(keyspace.usedBytes(at: longIndex) == Keyspace.slotBytes + 4 + 25 + set.usedBytes)
        keyspace.checkInvariants()
    }
}

