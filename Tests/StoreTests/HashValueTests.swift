// HashValue (Sources/Store/Types/HashValue.swift) against a Swift dictionary: random field sets and
// removals, across the conversion from `listpack` to `hashtable` (past 512 fields, or at a field or
// value over 64 bytes: Redis 7.0's defaults, which these tests never change), with its copy, its
// streamed rebuild, its byte account, its random draws and its scan's guarantee checked on the way.

import Testing

@testable import Store

@Suite struct HashValueTests {
    typealias Model = [[UInt8]: [UInt8]]

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static func set(_ hash: HashValue, _ field: [UInt8], _ value: [UInt8]) -> Bool {
        field.withUnsafeBytes { f in value.withUnsafeBytes { v in hash.apply(.add, position: -1, Element(f, v)) } }
    }

    static func remove(_ hash: HashValue, _ field: [UInt8]) -> Bool {
        field.withUnsafeBytes { hash.apply(.remove, position: 0, Element($0)) }
    }

    static func pairs(_ hash: HashValue) -> [([UInt8], [UInt8])] {
        var pairs: [([UInt8], [UInt8])] = []
        hash.forEachElement { element in
            pairs.append(([UInt8](element.first), [UInt8](element.second)))
            return true
        }
        return pairs
    }

    /// The hash holds exactly `model`: count, every field's value, the streamed pairs (each once).
    static func expectAgrees(_ hash: HashValue, _ model: Model, _ context: String) {
        #expect(hash.count == model.count, "\(context): count")
        let streamed = Self.pairs(hash)
        #expect(streamed.count == model.count, "\(context): streamed count")
        #expect(Dictionary(streamed, uniquingKeysWith: { a, _ in a }) == model, "\(context): streamed pairs")
        for (field, value) in model {
            #expect(hash.value(of: field[...]) == value, "\(context): value of \(field)")
        }
    }

    @Test(arguments: [1, 2, 3, 4])
    func randomOperationsAgreeWithADictionaryAcrossTheConversion(seed: UInt64) {
        var g = SeededGenerator(seed: seed)
        let hash = HashValue()
        var model: Model = [:]
        // Fields from a pool larger than the listpack limit; values mostly short, rarely past 64 bytes.
        let pool = (0..<700).map { Self.bytes("field:\($0)") }
        var insertionOrder: [[UInt8]] = []
        var converted = false
        for step in 0..<4000 {
            let field = pool[Int.random(in: 0..<(step < 2000 ? 600 : 700), using: &g)]
            if Int.random(in: 0..<8, using: &g) == 0 {
                let removed = Self.remove(hash, field)
                #expect(removed == (model.removeValue(forKey: field) != nil), "step \(step): removal")
                insertionOrder.removeAll { $0 == field }
            } else {
                let long = seed == 2 && step == 1500
                let value = long ? [UInt8](repeating: 120, count: 65)
                    : (0..<Int.random(in: 0...20, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
                let changed = Self.set(hash, field, value)
                #expect(changed == (model[field] != value), "step \(step): set")
                if model[field] == nil { insertionOrder.append(field) }
                model[field] = value
                if long || model.count > 512 { converted = true }
            }
            #expect(hash.encoding == (converted ? "hashtable" : "listpack"), "step \(step): encoding")
            if !converted {
                // Compact: the pairs stream in insertion order (a field set again keeps its place).
                #expect(Self.pairs(hash).map(\.0) == insertionOrder, "step \(step): listpack order")
                let expectedBytes = HashValue.objectBytes + model.reduce(0) { $0 + 2 + $1.key.count + $1.value.count }
                #expect(hash.usedBytes == expectedBytes, "step \(step): listpack bytes")
            }
            if step % 250 == 0 { Self.expectAgrees(hash, model, "seed \(seed) step \(step)") }
        }
        #expect(converted, "the run never reached the hashtable encoding")
        Self.expectAgrees(hash, model, "seed \(seed) end")

        // A copy is deep and equal; a rebuild from the stream holds the same.
        let copy = hash.copy() as! HashValue
        Self.expectAgrees(copy, model, "copy")
        // Equal in bytes but for the old slot array of a rebuild under way, which a copy does not carry.
        #expect(copy.encoding == hash.encoding && copy.usedBytes <= hash.usedBytes)
        if let (field, _) = model.first {
            _ = Self.set(copy, field, Self.bytes("changed"))
            #expect(hash.value(of: field[...]) == model[field], "the copy shares storage with the original")
        }
        let rebuilt = HashValue()
        hash.forEachElement { element in
            rebuilt.apply(.add, position: -1, element)
            return true
        }
        Self.expectAgrees(rebuilt, model, "rebuilt")

        // Emptied field by field.
        for field in model.keys { #expect(Self.remove(hash, field)) }
        #expect(hash.count == 0)
        Self.expectAgrees(hash, [:], "emptied")
    }

    @Test func conversionHappensExactlyAtRedisThresholds() {
        let hash = HashValue()
        for i in 0..<512 { _ = Self.set(hash, Self.bytes("f\(i)"), Self.bytes("v")) }
        #expect(hash.encoding == "listpack")
        _ = Self.set(hash, Self.bytes("f0"), [UInt8](repeating: 65, count: 64))
        #expect(hash.encoding == "listpack", "a 64-byte value fits a listpack")
        _ = Self.set(hash, Self.bytes("f512"), Self.bytes("v"))
        #expect(hash.encoding == "hashtable", "the 513th field converts")
        _ = Self.remove(hash, Self.bytes("f512"))
        #expect(hash.encoding == "hashtable", "a hash never converts back")

        let long = HashValue()
        _ = Self.set(long, [UInt8](repeating: 65, count: 65), Self.bytes("v"))
        #expect(long.encoding == "hashtable", "a 65-byte field converts")
        let same = HashValue()
        _ = Self.set(same, Self.bytes("f"), Self.bytes("v"))
        #expect(!Self.set(same, Self.bytes("f"), Self.bytes("v")), "setting the value held changes nothing")
        #expect(!Self.remove(same, Self.bytes("nope")))
    }

    @Test(arguments: [false, true])
    func randomDrawsAreDistinctFieldsOfTheHash(large: Bool) {
        var g = SeededGenerator(seed: large ? 7 : 8)
        let hash = HashValue()
        var model: Model = [:]
        for i in 0..<(large ? 2000 : 100) {
            let field = Self.bytes("f\(i)")
            model[field] = Self.bytes("v\(i)")
            _ = Self.set(hash, field, model[field]!)
        }
        #expect(hash.encoding == (large ? "hashtable" : "listpack"))
        for count in [1, 5, 33, 99, 100, 1000, 1999, 2000, 5000] {
            var drawn: [[UInt8]] = []
            hash.randomElements(count, distinct: true, using: &g) { element in
                #expect(model[[UInt8](element.first)] == [UInt8](element.second))
                drawn.append([UInt8](element.first))
            }
            #expect(drawn.count == min(count, model.count), "count \(count)")
            #expect(Set(drawn).count == drawn.count, "count \(count): a field drawn twice")
            var repeated = 0
            hash.randomElements(count, distinct: false, using: &g) { element in
                #expect(model[[UInt8](element.first)] != nil)
                repeated += 1
            }
            #expect(repeated == count)
        }
        // Every field can be drawn: 20 × size single draws see most of them.
        var seen = Set<[UInt8]>()
        for _ in 0..<(model.count * 20) {
            hash.randomElements(1, distinct: false, using: &g) { seen.insert([UInt8]($0.first)) }
        }
        #expect(seen.count == model.count, "single draws saw \(seen.count) of \(model.count) fields")
    }

    /// HSCAN's contract on the table: a field present for the whole scan comes back at least once,
    /// whatever is added and removed between steps (growth and shrinking included).
    @Test(arguments: [11, 12, 13])
    func scanReturnsEveryFieldPresentThroughout(seed: UInt64) {
        var g = SeededGenerator(seed: seed)
        let hash = HashValue()
        for i in 0..<3000 { _ = Self.set(hash, Self.bytes("f\(i)"), Self.bytes("v")) }
        var present = Set((0..<3000).map { Self.bytes("f\($0)") })
        var removedDuring = Set<[UInt8]>()
        var seen = Set<[UInt8]>()
        var cursor: UInt64 = 0
        var steps = 0
        var next = 3000
        repeat {
            cursor = hash.scan(cursor: cursor, count: Int.random(in: 1...50, using: &g)) { seen.insert([UInt8]($0.first)) }
            steps += 1
            // Churn: adds (the table grows) and removals (it shrinks when sparse).
            for _ in 0..<Int.random(in: 0...60, using: &g) {
                if Bool.random(using: &g) {
                    _ = Self.set(hash, Self.bytes("f\(next)"), Self.bytes("v"))
                    next += 1
                } else if let victim = present.randomElement(using: &g) {
                    _ = Self.remove(hash, victim)
                    present.remove(victim)
                    removedDuring.insert(victim)
                }
            }
        } while cursor != 0 && steps < 100_000
        #expect(cursor == 0, "the scan did not end")
        let missed = present.subtracting(seen)
        #expect(missed.isEmpty, "\(missed.count) fields present throughout never returned")
    }
}
