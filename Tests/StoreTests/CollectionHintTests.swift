// An element write first tries the entry the last collection read found (DurableStore+Values.swift,
// `hintedLiveIndex`). The hint is a guess: after the entry it names moved, was removed or expired,
// or when the write is to another key, the write must still reach exactly its own key, and the log
// must replay to the same lists.

import Testing

@testable import Store

@Suite struct CollectionHintTests {
    private static let now: Int64 = 1_700_000_000_000

    init() { TestTypes.register() }

    private static func push(_ store: DurableStore, _ key: String, _ item: String, now: Int64 = Self.now) throws {
        let write = try store.apply(ElementEffect(.add, position: -1, bytes(item)), to: bytes(key), type: .list, now: now)
        guard case .changed = write else {
            Issue.record("push \(item) to \(key): \(write)")
            return
        }
    }

    /// Reads `key` as a list (and so sets the hint to its entry).
    @discardableResult
    private static func read(_ store: DurableStore, _ key: String, now: Int64 = Self.now) -> [String]? {
        let found = bytes(key).withUnsafeBytes { store.collection(forKey: $0, type: .list, now: now) }
        guard case .found(let object) = found, let list = object as? ListValue else { return nil }
        return ListValueTests.items(list).map { String(decoding: $0, as: UTF8.self) }
    }

    private static func lists(_ store: DurableStore, _ keys: [String], now: Int64 = Self.now) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for key in keys { result[key] = Self.read(store, key, now: now) }
        return result
    }

    @Test func aWriteAfterTheHintedEntryMovedOrWentReachesItsOwnKey() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory))
            for key in ["a", "b", "c"] { try Self.push(store, key, key + "1") }
            // The hint names "a"'s entry; removing "a" moves another entry into it (the table keeps
            // entries dense), so the hint now names that key, or nothing.
            Self.read(store, "a")
            _ = try store.removeValue(forKey: bytes("a"), now: Self.now)
            try Self.push(store, "c", "c2")
            try Self.push(store, "b", "b2")
            // A hint for "b", then a write to a key that does not exist yet.
            Self.read(store, "b")
            try Self.push(store, "d", "d1")
            // A hint for "c", then writes to "b" and to "c" itself.
            Self.read(store, "c")
            try Self.push(store, "b", "b3")
            try Self.push(store, "c", "c3")
            let expected: [String: [String]] = ["b": ["b1", "b2", "b3"], "c": ["c1", "c2", "c3"], "d": ["d1"]]
            #expect(Self.lists(store, ["a", "b", "c", "d"]) == expected)
            try store.close(compacting: .never)  // the reopened store replays the log
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(Self.lists(reopened, ["a", "b", "c", "d"]) == expected)
        }
    }

    @Test func aWriteThroughTheHintToAnExpiredKeyStartsANewValue() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory))
            try Self.push(store, "q", "old")
            _ = try store.expire(bytes("q"), at: Self.now + 1_000, now: Self.now)
            #expect(Self.read(store, "q") == ["old"])  // the hint names "q", still live
            // Past its deadline the write finds the key expired (removed, logged) and creates it anew.
            try Self.push(store, "q", "new", now: Self.now + 2_000)
            #expect(Self.read(store, "q", now: Self.now + 2_000) == ["new"])
            #expect(store.expiry(forKey: bytes("q"), now: Self.now + 2_000) == .never)
            try store.close(compacting: .never)  // the reopened store replays the log
            let reopened = try reopenStore(configuration: .test(directory))
            #expect(Self.read(reopened, "q", now: Self.now + 2_000) == ["new"])
        }
    }
}
