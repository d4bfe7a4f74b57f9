// A running byte count many connections report into: the memory account's connection buffers
// (Persistence.connectionBuffers). Each kv connection adds the change in its own input and output
// backlog (KVStream: its input at each read, its output as the reactor reports it through
// ConnectionDelegate.connection(_:didUpdateOutputBacklog:)), so the total costs nothing per byte
// and no walk over connections.

/// A running byte count shared by the connections that report into it. Loop thread only.
final class ByteGauge {
    /// The sum of what every reporting connection holds now.
    /// Behind a pointer: as a stored property it paid a dynamic exclusivity check per access
    /// (several per request); memory behind a pointer is checked statically.
    var bytes: Int {
        get { self.storage.pointee }
        set { self.storage.pointee = newValue }
    }
    private let storage: UnsafeMutablePointer<Int>

    init() {
        self.storage = .allocate(capacity: 1)
        self.storage.initialize(to: 0)
    }

    deinit { self.storage.deallocate() }
}
