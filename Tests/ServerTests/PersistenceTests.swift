// Persistence and its waiters without sockets: waiters are told in the order they first waited,
// and work a waiter defers (what a connection's close sets off, up to closing the store at the
// end of a graceful stop) runs only once the pass that told them is over.

import Logging
import Reactor
@testable import Server
import Store
import Testing

@Suite struct PersistenceTests {
    final class Waiter: DurabilityWaiter {
        var onDurable: () -> Void = {}
        var failures: [String] = []
        var saves = 0
        func durable() { self.onDurable() }
        func failed(reason: String) { self.failures.append(reason) }
        func saved() { self.saves += 1 }
    }

    /// A loop and Persistence over a fresh store in a temporary directory (`--fsync always`).
    static func makePersistence() throws -> (TemporaryDirectory, EventLoop, Persistence) {
        let dir = try TemporaryDirectory()
        let loop = try EventLoop()
        let store = try DurableStore(configuration: .init(directory: dir.path, fsync: .always))
        return (dir, loop, Persistence(store: store, loop: loop, logger: Logger(label: "test")) { [] })
    }

    @Test func workDeferredWhileWaitersAreToldRunsAfterThePassEvenWhenItClosesTheStore() throws {
        let (dir, loop, persistence) = try Self.makePersistence()
        defer { dir.remove() }
        var events: [String] = []
        let first = Waiter()
        let second = Waiter()
        try persistence.set(Array("v".utf8), forKey: Array("k".utf8))
        #expect(!persistence.isDurable(persistence.lastMutationSequence))
        persistence.hold(first, until: persistence.lastMutationSequence)
        persistence.hold(second, until: persistence.lastMutationSequence)
        first.onDurable = {
            events.append("first durable")
            // What the last connection's close does during a graceful stop: close the store.
            persistence.afterPass {
                events.append("deferred work")
                persistence.close {
                    events.append("store closed")
                    loop.stop()
                }
            }
        }
        second.onDurable = { events.append("second durable") }
        loop.handle.execute { _ in }  // one wake-up: the iteration's end writes and syncs the record
        let watchdog = loop.scheduleTimer(after: .seconds(10)) {
            events.append("timed out")
            loop.stop()
        }
        try loop.run()
        loop.cancelTimer(watchdog)
        #expect(events == ["first durable", "second durable", "deferred work", "store closed"])
        #expect(first.failures.isEmpty && second.failures.isEmpty)
    }

    @Test func forgottenWaiterIsNeverToldAndACloseAskedForByAWaiterWaitsForThePass() throws {
        let (dir, loop, persistence) = try Self.makePersistence()
        defer { dir.remove() }
        let gone = Waiter()
        let staying = Waiter()
        var told: [String] = []
        gone.onDurable = { told.append("gone") }
        staying.onDurable = {
            told.append("staying")
            persistence.close {
                told.append("closed")
                loop.stop()
            }
        }
        try persistence.set(Array("v".utf8), forKey: Array("k".utf8))
        persistence.hold(gone, until: persistence.lastMutationSequence)
        persistence.hold(staying, until: persistence.lastMutationSequence)
        persistence.forget(gone)
        loop.handle.execute { _ in }  // one wake-up: the iteration's end writes and syncs the record
        loop.handle.execute { _ in }
        let watchdog = loop.scheduleTimer(after: .seconds(10)) { loop.stop() }
        try loop.run()
        loop.cancelTimer(watchdog)
        #expect(told == ["staying", "closed"])
    }
}
