// What every test target shares: a failure with a message, and a value two threads share.

import Synchronization

/// A test's own failure, thrown with a message that says what went wrong.
package struct TestFailure: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// A value shared between the test thread and a server, loop, reader or timer thread.
package final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    package init(_ value: Value) { self.value = Mutex(value) }
    package func with<R: Sendable>(_ body: (inout Value) -> R) -> R { self.value.withLock { body(&$0) } }
    package var current: Value { self.value.withLock { $0 } }
}
