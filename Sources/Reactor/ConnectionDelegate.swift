// What a Connection (Connection.swift) tells its owner: the delegate protocol and its defaults.

/// Receives a connection's events, on the loop thread. The connection holds its delegate
/// strongly until it closes, so a delegate needs no other owner.
public protocol ConnectionDelegate: AnyObject {
    /// The connection is open: accepted by a ``Listener``, or an outbound connect completed.
    /// Output written here (a greeting) goes out with this iteration's writes. Default: nothing.
    func connectionDidOpen(_ connection: Connection)
    /// Bytes arrived. `bytes` is valid only during the call: copy what must be kept.
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer)
    /// The peer shut down its sending side. Output can still be written. Default: ``Connection/close()``.
    func connectionDidReadEOF(_ connection: Connection)
    /// Unsent output fell below the low-water mark after reading had paused for it: a delegate
    /// that stopped producing (backpressure) may continue. Default: nothing.
    func connectionDidDrain(_ connection: Connection)
    /// The bytes queued and not yet written changed to `bytes` (as of a write attempt, or 0 at
    /// the close): for an owner that accounts for its connections' memory. Told only of
    /// changes, after each ``Connection/flush()`` and at the close. Default: nothing.
    func connection(_ connection: Connection, didUpdateOutputBacklog bytes: Int)
    /// The descriptor is closed; ``Connection/closeError`` says why if it failed. Called once,
    /// also when the connection idled past the loop's idle timeout or never got registered.
    func connectionDidClose(_ connection: Connection)
}

extension ConnectionDelegate {
    /// Does nothing.
    public func connectionDidOpen(_ connection: Connection) {}
    /// Closes once queued output is written.
    public func connectionDidReadEOF(_ connection: Connection) { connection.close() }
    /// Does nothing.
    public func connectionDidDrain(_ connection: Connection) {}
    /// Does nothing.
    public func connection(_ connection: Connection, didUpdateOutputBacklog bytes: Int) {}
    /// Does nothing.
    public func connectionDidClose(_ connection: Connection) {}
}
