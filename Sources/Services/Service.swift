// The contract between the protocol state machines and whoever drives them (the server's
// connection wiring, or a test): bytes in, replies appended to the caller's output up to a limit,
// a ProcessResult out; kv commands run against the data store, server state and server control
// the caller hands in (CommandContext). Services never touch sockets, clocks or files.

/// Where a service stopped after processing buffered input.
public enum ProcessResult: Equatable, Sendable {
    /// Every complete request was handled; feed more bytes.
    case needMoreData
    /// The output passed the caller's limit; call again once it has drained (backpressure).
    case outputFull
    /// Flush what is in the output, then close the connection.
    case close
}

/// What kv commands run against: three objects, none of them the others, bundled only to be
/// handed to a session in one argument.
///
/// - ``store``: the keyspace and its journal, the one place data commands touch storage (DataStore.swift).
/// - ``state``: what the server shares between its connections, concrete (ServerState.swift).
/// - ``control``: the server acting on itself: saves, shutdown, CONFIG, INFO (ServerControl.swift).
///
/// Per-connection state (client id and name, protocol) lives in the session, and the clock is
/// passed to the session as `now`. Loop thread only.
public struct CommandContext {
    public let store: any DataStore
    public let state: ServerState
    public let control: any ServerControl

    public init(store: any DataStore, state: ServerState, control: any ServerControl) {
        self.store = store
        self.state = state
        self.control = control
    }
}

/// The room left under the memory limit, as the server computes it: the RESP parser asks it when a
/// bulk over 16 KiB is announced, and refuses the request before buffering the body if it cannot fit.
/// Loop thread only.
public final class MemoryRoom {
    /// Bytes that may still be added (Int.max: no limit).
    public var bytesLeft: () -> Int = { .max }
    /// Whether a limit is set: connections look here on every read, so it is a plain flag behind a
    /// pointer (as a stored property, every read from another module paid a dynamic exclusivity
    /// check: `@exclusivity(unchecked)` holds only within the declaring module).
    public var isLimited: Bool {
        get { self.limited.pointee }
        set { self.limited.pointee = newValue }
    }
    private let limited: UnsafeMutablePointer<Bool>

    public init() {
        self.limited = .allocate(capacity: 1)
        self.limited.initialize(to: false)
    }

    deinit { self.limited.deallocate() }
}
