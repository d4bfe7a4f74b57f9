// The deadline a string write leaves on its key: SET clears it or sets one (EX, PX, EXAT, PXAT),
// while KEEPTTL and the commands Redis applies in place (INCR, APPEND, SETRANGE) keep the one the key
// had. Kept by the store, which finds the old entry in the same lookup that replaces it.

/// What a write does to its key's deadline (``DurableStore/set(_:forKey:deadline:now:)``).
public enum WriteDeadline: Equatable, Sendable {
    /// No deadline: any the key had is cleared.
    case cleared
    /// An absolute deadline in Unix milliseconds; one at or before the write's `now` removes the key.
    case at(Int64)
    /// The deadline the key holds at the write's `now`, if any (a key past its deadline is absent).
    case kept
    /// As ``kept``, for a write that edits the string in place (APPEND and SETRANGE of a value the key
    /// holds, SETRANGE and SETBIT making one): Redis holds the result as a `raw` string whatever its
    /// length, and OBJECT ENCODING says so (``Keyspace/encoding(at:)``).
    case keptEdited

    /// Whether the key's deadline is kept (``kept``, ``keptEdited``).
    @inline(__always)
    public var keepsDeadline: Bool { self == .kept || self == .keptEdited }
}
