// Big collections are released off the calling thread (Sources/Store/BackgroundFree.swift): whichever
// way the keyspace lets go of them (removal, overwrite by a string or by another collection, the
// keyspace itself going, as a flush does), the account drops at once and the value's memory goes
// on the background thread; small values, and values someone else still holds, are not handed over.

import Glibc
import Synchronization
import Testing

@testable import Store

/// A collection that records which thread released it. Never registered (CollectionTypes): it lives
/// only in these tests' own values and keyspaces.
private final class ReleaseProbe: CollectionValue {
    final class Record: Sendable {
        let released = Mutex<(done: Bool, onCaller: Bool)>((false, false))
    }

    let record: Record
    let caller: pthread_t
    let count: Int
    init(count: Int, record: Record) {
        self.count = count
        self.record = record
        self.caller = pthread_self()
    }

    deinit {
        let onCaller = pthread_equal(pthread_self(), self.caller) != 0
        self.record.released.withLock { $0 = (true, onCaller) }
    }

    var type: ValueType { .set }
    var encoding: String { "hashtable" }
    var usedBytes: Int { 64 }
    func copy() -> any CollectionValue { ReleaseProbe(count: self.count, record: self.record) }
    func forEachElement(_ body: (Element) -> Bool) {}
    func apply(_ operation: ElementOperation, position: Int64, _ element: Element, inverse: inout ElementInverse) -> Bool {
        false
    }
}

@Suite struct BackgroundFreeTests {
    static func bigList(items: Int) -> ListValue {
        let list = ListValue()
        let item = [UInt8](repeating: 120, count: 16)
        item.withUnsafeBytes { bytes in
            for _ in 0..<items { list.apply(.add, position: -1, Element(bytes)) }
        }
        return list
    }

    @Test func aBigValueIsReleasedOnTheBackgroundThreadASmallOneAtOnce() {
        let big = ReleaseProbe.Record()
        BackgroundFree.release(ReleaseProbe(count: 1000, record: big))
        BackgroundFree.drain()
        #expect(big.released.withLock { $0 } == (true, false))

        let small = ReleaseProbe.Record()
        BackgroundFree.release(ReleaseProbe(count: BackgroundFree.threshold, record: small))
        #expect(small.released.withLock { $0 } == (true, true))  // no drain: released before the call returned
    }

    @Test func aValueSomeoneElseHoldsIsNotHandedOver() {
        let record = ReleaseProbe.Record()
        let probe = ReleaseProbe(count: 1000, record: record)
        BackgroundFree.release(Unmanaged<AnyObject>.passRetained(probe).toOpaque())
        BackgroundFree.drain()
        #expect(record.released.withLock { $0.done } == false)
        #expect(probe.count == 1000)  // still whole: only the extra reference went
    }

    @Test func aListsEffortIsItsNodes() {
        // One node of 100 items frees one block: released at once. Many nodes: in the background.
        let oneNode = Self.bigList(items: 100)
        #expect(oneNode.nodeCount <= BackgroundFree.threshold)
        weak var weakOne = oneNode
        BackgroundFree.release(consume oneNode)
        #expect(weakOne == nil)
        let many = Self.bigList(items: 100_000)
        #expect(BackgroundFree.effort(of: many) == many.nodeCount)
        #expect(many.nodeCount > BackgroundFree.threshold)
        #expect(BackgroundFree.effort(of: TestTypes.set((0..<1000).map { Array("m\($0)".utf8) })) == 1000)
        #expect(BackgroundFree.effort(of: TestTypes.set([Array("1".utf8)])) == 1)
    }

    @Test func theKeyspaceLetsGoOfABigValueEveryWayAndItsAccountDropsAtOnce() {
        let key = Array("big".utf8)
        // Removal, overwrite by a string, overwrite by another collection, the keyspace going.
        for way in 0..<4 {
            var keyspace: Keyspace? = Keyspace()
            let record = ReleaseProbe.Record()
            let empty = keyspace!.usedBytes
            key.withUnsafeBytes { raw in
                _ = keyspace!.set(raw, collection: ReleaseProbe(count: 5000, record: record), deadline: nil)
            }
            let list = Self.bigList(items: 50_000)
            weak var weakList = list
            let other = Array("list".utf8)
            other.withUnsafeBytes { raw in _ = keyspace!.set(raw, collection: list, deadline: nil) }
            _ = consume list
            let listBytes = keyspace!.usedBytes - empty
            switch way {
            case 0:
                #expect(key.withUnsafeBytes { keyspace!.remove($0) })
                #expect(other.withUnsafeBytes { keyspace!.remove($0) })
                #expect(keyspace!.usedBytes == empty)
            case 1:
                keyspace!.set(key, Array("v".utf8))
                keyspace!.set(other, Array("w".utf8))
                #expect(keyspace!.usedBytes < empty + listBytes / 100)
            case 2:
                key.withUnsafeBytes { _ = keyspace!.set($0, collection: TestTypes.set([Array("m".utf8)]), deadline: nil) }
                other.withUnsafeBytes { _ = keyspace!.set($0, collection: TestTypes.set([Array("m".utf8)]), deadline: nil) }
                #expect(keyspace!.usedBytes < empty + listBytes / 100)
            default:
                keyspace = nil
            }
            keyspace?.checkInvariants()
            BackgroundFree.drain()
            #expect(record.released.withLock { $0 } == (true, false), "way \(way)")
            #expect(weakList == nil, "way \(way)")
        }
    }

    @Test func aDurableStoreFreesABigValueOnceItsRemovalIsDurable() throws {
        TestTypes.register()
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .init(directory: directory, fsync: .always))
            let empty = store.usedBytes
            let record = ReleaseProbe.Record()
            _ = try store.setCollection(ReleaseProbe(count: 5000, record: record), forKey: Array("big".utf8),
                                        deadline: nil, now: 0)
            _ = try store.removeValue(forKey: Array("big".utf8), now: 0)
            #expect(store.usedBytes == empty)
            // Not durable yet: the undo entry holds the value (a failed sync would put it back).
            BackgroundFree.drain()
            #expect(record.released.withLock { $0.done } == false)
            #expect(store.writeBuffered() == .ok)
            let job = try #require(store.makeSyncJob())
            #expect(store.completeSync(job, result: job.run()) == .ok)
            BackgroundFree.drain()
            #expect(record.released.withLock { $0 } == (true, false))
            store.checkInvariants()
        }
    }
}
