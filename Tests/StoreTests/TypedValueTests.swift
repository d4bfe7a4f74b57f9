// Typed values (Value.swift) with the set (SetValue.swift) and the test-only hash (TestCollections.swift): the keyspace's slots,
// byte account, expiry, eviction and SCAN; typed log records and database.txt blocks round-tripping; and
// a property test against a dictionary of typed values through writes, failed writes, restarts and
// compactions.

import Glibc
import Testing

@testable import Store

@Suite struct TypedValueTests {
    init() { TestTypes.register() }

    // MARK: Keyspace

    @Test func aCollectionSitsInItsSlotBesideStringsAndItsBytesLeaveWithIt() {
        let keyspace = Keyspace()
        keyspace.set(bytes("s"), bytes("plain"))
        let empty = keyspace.usedBytes
        let set = TestTypes.set([bytes("a"), bytes("b")])
        let longKey = [UInt8](repeating: 0x6B, count: 100)
        for key in [bytes("k"), longKey] {
            let index = key.withUnsafeBytes { keyspace.set($0, collection: set.copy(), deadline: 5) }
            #expect(keyspace.type(at: index) == .set)
            #expect(keyspace.encoding(at: index) == "hashtable")  // members that are not integers
            #expect(keyspace.usedBytes(at: index) == Keyspace.slotBytes + 4 + Keyspace.collectionKeyBytes(key.count) + set.usedBytes + Keyspace.deadlineBytes)
            keyspace.checkInvariants()
        }
        #expect(keyspace.collectionCount == 2)
        // A string over a collection, a collection over a string, then removal: the account is exact throughout.
        keyspace.set(bytes("k"), bytes("now a string"))
        keyspace.checkInvariants()
        _ = bytes("s").withUnsafeBytes { keyspace.set($0, collection: TestTypes.set([bytes("x")]), deadline: nil) }
        keyspace.checkInvariants()
        #expect(keyspace.type(at: keyspace.find(bytes("s"))!) == .set)
        _ = longKey.withUnsafeBytes { keyspace.remove($0) }
        keyspace.set(bytes("s"), bytes("plain"))
        keyspace.checkInvariants()
        #expect(keyspace.collectionCount == 0)
        keyspace.set(bytes("k"), [])
        _ = bytes("k").withUnsafeBytes { keyspace.remove($0) }
        #expect(keyspace.usedBytes == empty)
        #expect(Keyspace.slotBytes == 64)
    }

    @Test func elementEffectsCreateTheValueReportTheirBytesAndRemoveAnEmptiedKey() {
        let keyspace = Keyspace()
        let before = keyspace.usedBytes
        var outcomes: [Keyspace.ElementOutcome] = []
        bytes("k").withUnsafeBytes { key in
            for member in 0..<6 {
                bytes("m\(member)").withUnsafeBytes { m in
                    outcomes.append(keyspace.applyElement(key, type: .set, .add, position: -1, Element(m)))
                }
                keyspace.checkInvariants()
            }
            #expect(keyspace.encoding(at: keyspace.find(key)!) == "hashtable")
            #expect(bytes("x").withUnsafeBytes { keyspace.applyElement(key, type: .hash, .add, position: 0, Element($0)) }
                == .wrongType(.set))
            for member in 0..<6 {
                bytes("m\(member)").withUnsafeBytes { m in
                    outcomes.append(keyspace.applyElement(key, type: .set, .remove, position: 0, Element(m)))
                }
                keyspace.checkInvariants()
            }
        }
        #expect(outcomes.last == .changed(keyRemoved: true))
        #expect(keyspace.count == 0)
        #expect(keyspace.usedBytes == before)
    }

    @Test func renameMovesAndCopyDuplicatesValuesOfAnyType() {
        let keyspace = Keyspace()
        _ = bytes("a").withUnsafeBytes { keyspace.set($0, collection: TestTypes.set([bytes("x")]), deadline: 9) }
        bytes("a").withUnsafeBytes { a in bytes("b").withUnsafeBytes { b in
            #expect(keyspace.rename(a, to: b))
            #expect(keyspace.find(a) == nil)
            #expect(keyspace.copy(b, to: a))
        } }
        let a = keyspace.collection(at: keyspace.find(bytes("a"))!) as! SetValue
        let b = keyspace.collection(at: keyspace.find(bytes("b"))!) as! SetValue
        #expect(a !== b && a.members == b.members)
        #expect(keyspace.deadline(at: keyspace.find(bytes("a"))!) == 9)
        keyspace.checkInvariants()
    }

    // MARK: Records and database.txt

    @Test func typedRecordsRoundTripAndMatchTheDocumentedBytes() {
        let records: [Record] = [
            .value(key: bytes("h"), type: .hash, deadline: 1_796_000_000_000),
            .value(key: bytes("s"), type: .set, deadline: nil),
            .element(key: bytes("h"), type: .hash, effect: ElementEffect(.add, [0, 9, 10], [0xFF])),
            .element(key: bytes("l"), type: .set, effect: ElementEffect(.remove, position: -3, bytes("x"))),
            .rename(key: bytes("a"), to: bytes("b")),
            .copy(key: [], to: bytes("b")),
            .group([.value(key: bytes("s"), type: .set, deadline: nil),
                    .element(key: bytes("s"), type: .set, effect: ElementEffect(.add, bytes("m")))]),
        ]
        for record in records {
            var buffer: [UInt8] = []
            record.encode(into: &buffer)
            let decoded = buffer.withUnsafeBytes { Record.decode($0) }
            #expect(decoded == .record(record, size: buffer.count))
        }
        // A type this server has no implementation of is a valid record it cannot apply: unsupported, not
        // invalid (TypedDurabilityTests: refused, never cut off). Sorted sets are that type until a server
        // started in this process registers the built-in types; the outcome is checked for the state
        // that held for the whole decode.
        var list: [UInt8] = []
        Record.element(key: bytes("l"), type: .zset, effect: withUnsafeBytes(of: 1.0) { ElementEffect(.add, bytes("x"), [UInt8]($0)) })
            .encode(into: &list)
        let registeredBefore = CollectionTypes.isRegistered(.zset)
        let outcome = list.withUnsafeBytes { Record.decode($0) }
        if registeredBefore == CollectionTypes.isRegistered(.zset) {
            switch outcome {
            case .unsupported: #expect(!registeredBefore, "refused a registered type")
            case .record: #expect(registeredBefore, "accepted an unknown type")
            default: Issue.record("a valid record decoded as \(outcome)")
            }
        }
        var frame: [UInt8] = []
        Record.element(key: bytes("s"), type: .set, effect: ElementEffect(.add, bytes("m"))).encode(into: &frame)
        #expect(Array(frame[0..<4]) == [0x15, 0, 0, 0])
        #expect(Array(frame[8...]) == [0x09, 1, 0, 0, 0, 0x73, 0x03, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x6D])
        // A whole value: docs/file-formats.md's example of a group.
        var whole = LogBuffer()
        bytes("s").withUnsafeBytes { key in
            DurableStore.appendWholeValue(TestTypes.set([bytes("m")]), key: key, deadline: 1_796_000_000_000, to: &whole)
        }
        var group: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0]
        group += [UInt8](whole.bytes)
        Record.closeGroup(startingAt: 0, in: &group)
        #expect(Array(group[0..<4]) == [0x39, 0, 0, 0])
        #expect(Array(group[13..<17]) == [0x0F, 0, 0, 0] && Array(group[36..<40]) == [0x15, 0, 0, 0])
        // The in-place encoder of the store's buffer writes the same bytes.
        var log = LogBuffer()
        bytes("s").withUnsafeBytes { key in bytes("m").withUnsafeBytes { m in
            Record.appendElement(key: key, type: .set, .add, position: 0, Element(m), to: &log)
        } }
        #expect([UInt8](log.bytes) == frame)
        // A kind-9 record whose first field runs past the payload is invalid, not a crash.
        var bad = frame
        bad[8 + 5 + 1 + 10] = 0x40
        bad.withUnsafeMutableBytes { bytes in
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[8...]))
            bytes.storeBytes(of: crc.littleEndian, toByteOffset: 4, as: UInt32.self)
        }
        if case .invalid = bad.withUnsafeBytes({ Record.decode($0) }) {} else { Issue.record("accepted a bad length") }
    }

    @Test func collectionsAreBlocksInDatabaseTxtAndRoundTripEveryByte() throws {
        try withTemporaryDirectory { directory in
            let keyspace = Keyspace()
            keyspace.set(bytes("greeting"), bytes("hello"))
            let allBytes = (0...255).map { UInt8($0) }
            // A table-encoded set streams its members in its hash order (keyed per process).
            let tags = TestTypes.set([bytes("red"), bytes("green\tblue")])
            let tagLines = tags.members.map { $0 == bytes("red") ? "\tred" : "\tgreen\\tblue" }.joined(separator: "\n")
            _ = bytes("tags").withUnsafeBytes { keyspace.set($0, collection: tags, deadline: 1_796_000_000_000) }
            // A 256-byte value makes the hash a table: its fields stream in its hash order too.
            let user = TestTypes.hash([(bytes("name"), bytes("alice")), ([], allBytes), (bytes("#x"), [])])
            var userLines: [String] = []
            user.forEachElement { element in
                switch [UInt8](element.first) {
                case bytes("name"): userLines.append("\tname\talice")
                case []: userLines.append("\t\t" + Self.escapedAllBytes)
                default: userLines.append("\t#x\t")
                }
                return true
            }
            _ = bytes("#user:1").withUnsafeBytes { keyspace.set($0, collection: user, deadline: nil) }
            let path = try SnapshotTests.writeSnapshot(keyspace, in: directory)
            let text = String(decoding: readFile(path)!, as: UTF8.self)
            #expect(text == """
                # reactord snapshot, 3 keys
                greeting\thello
                #!set\ttags\t@1796000000000
                \(tagLines)
                #!end
                #!hash\t#user:1
                \(userLines.joined(separator: "\n"))
                #!end

                """)
            let loaded = Keyspace()
            #expect(try Snapshot.load(path: path, io: .system, into: loaded))
            loaded.checkInvariants()
            #expect(Self.contents(loaded) == Self.contents(keyspace))
            #expect(loaded.usedBytes == keyspace.usedBytes)
        }
    }

    static let escapedAllBytes: String = {
        var output = Snapshot.OutputBuffer(capacity: 2048)
        defer { output.deallocate() }
        Snapshot.escape((0...255).map { UInt8($0) }, escapeLeadingHash: false, into: &output)
        return String(decoding: UnsafeBufferPointer(start: output.pointer, count: output.count), as: UTF8.self)
    }()

    @Test func handEditedBlocksAreReadAndMalformedOnesRefusedWithTheLine() throws {
        try withTemporaryDirectory { (directory: String) throws in
            let path = directory + "/database.txt"
            writeFile(path, bytes("#!db\t0\n#!set\tk\r\n# a comment inside\n\n\tb\n\ta\n#!end\n\tempty key\n#!set\tnone\n#!end\n"))
            let keyspace = Keyspace()
            #expect(try Snapshot.load(path: path, io: .system, into: keyspace))
            #expect(Self.contents(keyspace) == [bytes("k"): "set{a,b}", []: "empty key"])  // an empty block is no key
            let bad: [(String, String)] = [
                ("#!set\tk\n\ta\n", "line 1"),
                ("#!set\tk\n\ta\nplain\tstring\n#!end\n", "line 3"),
                ("#!hash\tk\n\tfield-without-value\n#!end\n", "line 2"),
                ("#!db\tx\n", "line 1"),  // database 1 is accepted (DatabaseStoreTests); no number is not
                ("#!db\t70000\n", "line 1"),
                ("#!set\tk\n\ta\n#!db\t1\n#!end\n", "line 3"),
                ("#!end\n", "line 1"),
                // A bad score (line 2) once sorted sets are registered, the unknown type (line 1) before.
                ("#!zset\tk\n\tx\tnot-a-score\n#!end\n", "zset"),
                ("#!set\tk\tnot-a-deadline\n#!end\n", "line 1"),
            ]
            for (file, given) in bad {
                writeFile(path, bytes(file))
                #expect(throws: StoreError.self) { try Snapshot.load(path: path, io: .system, into: Keyspace()) }
                let registered = CollectionTypes.isRegistered(.zset)
                let line = given != "zset" ? given : registered ? "line 2" : "line 1"
                do {
                    _ = try Snapshot.load(path: path, io: .system, into: Keyspace())
                } catch {
                    // A server started meanwhile in this process may have registered sorted sets.
                    if given != "zset" || registered == CollectionTypes.isRegistered(.zset) {
                        #expect("\(error)".contains(line), "\(file): \(error)")
                    }
                }
            }
            #expect(Snapshot.scoreText(withUnsafeBytes(of: 1.5) { $0 }) == bytes("1.5"))
            #expect(Snapshot.scoreText(withUnsafeBytes(of: -Double.infinity) { $0 }) == bytes("-inf"))
        }
    }

    /// A keyspace's contents, typed, as comparable text.
    static func contents(_ keyspace: Keyspace) -> [[UInt8]: String] {
        var result: [[UInt8]: String] = [:]
        for index in 0..<keyspace.count {
            let key = [UInt8](keyspace.key(at: index))
            let deadline = keyspace.deadline(at: index).map { "@\($0)" } ?? ""
            switch keyspace.collection(at: index) {
            case let set as SetValue:
                result[key] = "set{" + set.members.map { String(decoding: $0, as: UTF8.self) }.sorted().joined(separator: ",") + "}" + deadline
            case let hash? where hash.type == .hash:
                result[key] = "hash" + TestTypes.fields(of: hash).map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ",") + deadline
            default:
                result[key] = String(decoding: keyspace.value(at: index), as: UTF8.self) + deadline
            }
        }
        return result
    }

    // MARK: The store

    @Test func expiryEvictionScanAndTypedReadsSeeCollections() throws {
        try withTemporaryDirectory { directory in
            let clock = ManualClock()
            let store = try DurableStore(configuration: .init(directory: directory, fsync: .no, clock: clock.read))
            let empty = store.usedBytes
            _ = try store.set(bytes("v"), forKey: bytes("string"))
            for i in 0..<20 {
                _ = try store.setCollection(TestTypes.set([bytes("m\(i)"), bytes("n")]), forKey: bytes("set:\(i)"),
                                            deadline: i < 10 ? clock.now + 10 : nil, now: clock.now)
            }
            store.checkInvariants()
            #expect(store.type(ofKey: bytes("set:3"), now: clock.now) == .set)
            #expect(store.type(ofKey: bytes("string"), now: clock.now) == .string)
            #expect(store.encoding(ofKey: bytes("set:3"), now: clock.now) == "hashtable")
            #expect(store.encoding(ofKey: bytes("string"), now: clock.now) == "embstr")
            #expect(store.value(forKey: bytes("set:3"), now: clock.now) == nil)  // the string reads see no collection
            // MEMORY USAGE: the slot, a bucket's share, the key (a short one kept in the slot), the value, the deadline.
            let set3 = TestTypes.set([bytes("m3"), bytes("n")])
            #expect(store.usedBytes(forKey: bytes("set:3"), now: clock.now)
                == Keyspace.slotBytes + 4 + set3.usedBytes + Keyspace.deadlineBytes)
            let wrong = bytes("set:3").withUnsafeBytes { store.withString(forKey: $0, now: clock.now) { _ in 0 } }
            guard case .wrongType(.set) = wrong else { Issue.record("\(wrong)"); return }
            let wrongToo = bytes("string").withUnsafeBytes {
                store.withCollection(forKey: $0, type: .set, now: clock.now) { $0.count }
            }
            guard case .wrongType(.string) = wrongToo else { Issue.record("\(wrongToo)"); return }
            #expect(try store.apply(ElementEffect(.add, bytes("x")),
                                    to: bytes("string"), type: .set, now: clock.now) == .wrongType(.string))

            var scanned: [[UInt8]] = []
            var cursor: UInt64 = 0
            repeat {
                let step = store.scan(cursor: cursor, count: 5, pattern: nil, type: .set, now: clock.now)
                scanned += step.keys
                cursor = step.cursor
            } while cursor != 0
            #expect(Set(scanned) == Set((0..<20).map { bytes("set:\($0)") }))

            clock.advance(by: 11)
            var expired = 0
            while true {
                let result = store.expireCycle(now: clock.now, budget: 100)
                expired += result.expired
                if result.expired == 0 { break }
            }
            #expect(expired == 10)
            store.checkInvariants()
            let result = store.evict(.allKeysLRU, bytesToFree: 1 << 30, maxKeys: 100, now: clock.now)
            #expect(result.evicted == 11 && store.count == 0)
            while store.keyspace.rehash(steps: 100) {}  // a shrink the removals started
            #expect(store.usedBytes == empty)
            store.checkInvariants()
        }
    }
}

@Suite struct PackedEntriesTests {
    @Test func entriesOfEveryLengthRoundTripThroughInsertRemoveAndReplace() {
        var packed = PackedEntries()
        var model: [[UInt8]] = []
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<400 {
            let length = [0, 1, 127, 128, 300, 20_000].randomElement(using: &generator)!
            let entry = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var offsets: [Int] = []
            packed.forEach { _, offset in
                offsets.append(offset)
                return true
            }
            let position = Int.random(in: 0...model.count, using: &generator)
            switch Int.random(in: 0..<3, using: &generator) {
            case 0, 1:
                let offset = position < offsets.count ? offsets[position] : packed.byteCount
                entry.withUnsafeBytes { packed.insert($0, atOffset: offset) }
                model.insert(entry, at: position)
            default:
                guard position < model.count else { continue }
                if Bool.random(using: &generator) {
                    packed.remove(atOffset: offsets[position])
                    model.remove(at: position)
                } else {
                    entry.withUnsafeBytes { packed.replace(atOffset: offsets[position], with: $0) }
                    model[position] = entry
                }
            }
            var read: [[UInt8]] = []
            packed.forEach { bytes, _ in
                read.append([UInt8](bytes))
                return true
            }
            #expect(read == model)
            #expect(packed.count == model.count)
            #expect(packed.byteCount == model.reduce(0) { $0 + $1.count + ($1.count < 128 ? 1 : $1.count < 16_384 ? 2 : 3) })
        }
        let copy = packed.duplicate()
        #expect(copy.byteCount == packed.byteCount && copy.count == packed.count)
        if let last = model.last {
            #expect(last.withUnsafeBytes { copy.firstOffset(of: $0) } != nil)
        }
        #expect([UInt8]([9, 9, 9, 9, 9]).withUnsafeBytes { copy.firstOffset(of: $0) } == nil)
    }
}
