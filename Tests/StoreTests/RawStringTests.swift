// Strings edited in place (WriteDeadline.keptEdited: APPEND, SETRANGE, SETBIT) are held as Redis holds
// them, `raw` whatever their length (KeyspaceMemory.swift, Slot.rawFlag): always out of line, with the
// byte account, the table's invariants and every read of the value unchanged by the flag; any other
// write makes the string what SET makes it again. RENAME and COPY keep the flag, as Redis keeps the object.

import Testing

@testable import Store

@Suite struct RawStringTests {
    static let now: Int64 = 1_700_000_000_000

    static func write(_ store: DurableStore, _ key: String, _ value: String, _ deadline: WriteDeadline) throws {
        let (key, value) = (bytes(key), bytes(value))
        _ = try key.withUnsafeBytes { k in
            try value.withUnsafeBytes { v in try store.set(v, forKey: k, deadline: deadline, now: Self.now) }
        }
    }

    static func encoding(_ store: DurableStore, _ key: String) -> String? {
        store.keyspace.find(bytes(key)).map { store.keyspace.encoding(at: $0) }
    }

    static func value(_ store: DurableStore, _ key: String) -> String? {
        store.keyspace.find(bytes(key)).map { String(decoding: store.keyspace.value(at: $0), as: UTF8.self) }
    }

    @Test func anEditedStringIsRawOutOfLineAndAccountedUntilAnotherWrite() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory))
            let keyspace = store.keyspace
            try Self.write(store, "k", "hello", .cleared)
            #expect(Self.encoding(store, "k") == "embstr")
            let inlineBytes = keyspace.usedBytes
            try Self.write(store, "k", "hello!", .keptEdited)
            #expect(Self.encoding(store, "k") == "raw")
            #expect(Self.value(store, "k") == "hello!")
            // Out of line now: the slot plus the key's and value's bytes in a block of their own.
            #expect(keyspace.usedBytes(at: keyspace.find(bytes("k"))!)
                == Keyspace.expectedBytes(keyLength: 1, valueLength: 6, raw: true, hasDeadline: false) + 4)
            #expect(keyspace.usedBytes == inlineBytes + 7)
            keyspace.checkInvariants()

            // Edited again while raw (the value stays out of line), then written as INCR writes it.
            try Self.write(store, "k", "12", .keptEdited)
            #expect(Self.encoding(store, "k") == "raw", "an integer made by an edit is still raw, as in Redis")
            #expect(Self.value(store, "k") == "12")
            keyspace.checkInvariants()
            try Self.write(store, "k", "13", .kept)
            #expect(Self.encoding(store, "k") == "int")
            #expect(keyspace.usedBytes == inlineBytes)
            keyspace.checkInvariants()

            // A new key made by an edit, with a deadline it keeps through the next edit.
            try Self.write(store, "d", "abc", .at(Self.now + 60_000))
            try Self.write(store, "d", "abcd", .keptEdited)
            #expect(Self.encoding(store, "d") == "raw")
            #expect(keyspace.deadline(at: keyspace.find(bytes("d"))!) == Self.now + 60_000)
            try Self.write(store, "n", "\u{0}\u{0}x", .keptEdited)
            #expect(Self.encoding(store, "n") == "raw")
            #expect(Self.value(store, "n") == "\u{0}\u{0}x")
            keyspace.checkInvariants()

            // A long value (already out of line) edited, then replaced by a short SET: back inline.
            let long = String(repeating: "v", count: 60)
            try Self.write(store, "long", long, .cleared)
            #expect(Self.encoding(store, "long") == "raw")
            try Self.write(store, "long", long + "w", .keptEdited)
            #expect(Self.value(store, "long") == long + "w")
            try Self.write(store, "long", "short", .cleared)
            #expect(Self.encoding(store, "long") == "embstr")
            keyspace.checkInvariants()

            // RENAME and COPY keep it raw; removing every key gives the whole account back.
            #expect(try store.rename(bytes("n"), to: bytes("m"), now: Self.now) != nil)
            #expect(Self.encoding(store, "m") == "raw")
            #expect(try store.copy(bytes("m"), to: bytes("c"), now: Self.now) != nil)
            #expect(Self.encoding(store, "c") == "raw")
            #expect(Self.value(store, "c") == "\u{0}\u{0}x")
            keyspace.checkInvariants()
            for key in ["k", "d", "m", "c", "long"] { #expect(try store.removeValue(forKey: bytes(key), now: Self.now) != nil) }
            keyspace.checkInvariants()
            #expect(keyspace.count == 0)
            writeAndSync(store)
            try store.close(compacting: .never)

            // The log holds the values; a restart reads them back (as Redis loading a snapshot, as SET made them).
            let reopened = try DurableStore(configuration: .test(directory))
            defer { try? reopened.close(compacting: .never) }
            #expect(reopened.keyspace.count == 0)
        }
    }

    @Test func editedValuesSurviveARestartAndACompaction() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory))
            try Self.write(store, "a", "x", .cleared)
            try Self.write(store, "a", "xy", .keptEdited)
            try Self.write(store, "b", "\u{0}\u{1}", .keptEdited)
            writeAndSync(store)
            let job = try #require(try startCompaction(store))
            store.finishCompaction(job, result: job.run())
            try Self.write(store, "a", "xyz", .keptEdited)
            writeAndSync(store)
            try store.close(compacting: .never)
            let reopened = try DurableStore(configuration: .test(directory))
            defer { try? reopened.close(compacting: .never) }
            #expect(Self.value(reopened, "a") == "xyz")
            #expect(Self.value(reopened, "b") == "\u{0}\u{1}")
            reopened.keyspace.checkInvariants()
        }
    }
}
