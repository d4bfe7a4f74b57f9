// A clock a test moves by hand, for code that takes its time from a closure.

import Synchronization

/// A wall clock in Unix milliseconds that only moves when the test says so; ``read`` is the
/// closure a store or server configuration takes as its clock.
package final class ManualClock: Sendable {
    package let milliseconds: Mutex<Int64>

    package init(_ start: Int64 = 1_800_000_000_000) {
        self.milliseconds = Mutex(start)
    }

    package var now: Int64 { self.milliseconds.withLock { $0 } }

    package func advance(by delta: Int64) {
        self.milliseconds.withLock { $0 += delta }
    }

    package func set(_ value: Int64) {
        self.milliseconds.withLock { $0 = value }
    }

    package var read: @Sendable () -> Int64 { { self.now } }
}
