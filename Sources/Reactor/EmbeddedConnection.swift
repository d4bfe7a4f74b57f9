// A harness that drives a ConnectionDelegate with bytes, with no network and no running loop
// (SwiftNIO's EmbeddedChannel is the model): the delegate gets a real Connection, over one end of
// an in-process AF_UNIX socketpair, and the harness holds the other end. Every call turns the
// connection by hand on the calling thread (read what is readable, write what is queued, the
// end-of-iteration flush) until nothing moves, so when it returns the delegate has seen every
// byte fed and its output is ready to read. Timers are fired by turning the loop's clock
// (``EmbeddedConnection/advanceTime(by:)``), never by the wall clock.

import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// Drives one ``ConnectionDelegate`` by hand: feed inbound bytes, read what it wrote, close
/// the inbound side, run timers and posted messages. For tests; one thread at a time.
///
/// ```swift
/// let harness = try EmbeddedConnection(delegate: UpperCaser())
/// try harness.writeInbound("hello\n".utf8)
/// #expect(harness.readOutbound() == Array("HELLO\n".utf8))
/// ```
public final class EmbeddedConnection {
    /// The loop the connection belongs to. It never runs: the harness turns it. Its timers fire
    /// only through ``advanceTime(by:)``.
    public let loop: EventLoop
    /// The connection the delegate sees.
    public let connection: Connection
    /// The harness's end of the socketpair.
    private let peer: Descriptor
    private var peerOpen = true
    /// Written by the delegate, read from the peer end, not yet handed out by ``readOutbound()``.
    private var outbound: [UInt8] = []
    private var sawEOF = false

    /// Opens the connection and tells `delegate` (``ConnectionDelegate/connectionDidOpen(_:)``),
    /// as a listener does for an accepted peer.
    /// - Parameters:
    ///   - delegate: the delegate under test; its connection holds it.
    ///   - peerAddress: what ``Connection/peer`` reports (nil by default).
    /// - Throws: ``IOError`` if the socketpair or the loop cannot be made.
    public init(delegate: ConnectionDelegate, peerAddress: SocketAddress? = nil) throws(IOError) {
        self.loop = try EventLoop()
        self.loop.timersRunByHand = true
        let (mine, theirs) = try Sys.socketPair()
        self.peer = theirs
        do {
            self.connection = try Connection(loop: self.loop, descriptor: mine, peer: peerAddress, delegate: delegate)
        } catch {
            Sys.close(theirs)
            throw error
        }
        delegate.connectionDidOpen(self.connection)
        self.connection.flush()
        self.turn()
    }

    deinit {
        if self.connection.state != .closed { self.connection.abort() }
        if self.peerOpen { Sys.close(self.peer) }
    }

    /// Feeds `bytes` to the delegate as if the peer sent them, and turns the connection until
    /// it has read them all (unless it paused reading, closed, or stopped reading at EOF).
    /// - Throws: ``IOError`` if the inbound side was closed (``closeInbound()``).
    public func writeInbound<Bytes: Sequence>(_ bytes: Bytes) throws(IOError) where Bytes.Element == UInt8 {
        let bytes = Array(bytes)
        var sent = 0
        while sent < bytes.count {
            let result = bytes.withUnsafeBytes { raw in
                Result { () throws(IOError) in try Sys.write(self.peer, UnsafeRawBufferPointer(rebasing: raw[sent...])) }
            }
            let written = try result.get()
            if case .processed(let n) = written { sent += n }
            // Full: let the connection read (and answer) before sending the rest.
            if !self.turn() && sent < bytes.count, case .wouldBlock = written {
                throw IOError(errno: EAGAIN, call: "writeInbound: the connection stopped reading")
            }
        }
        self.turn()
    }

    /// Everything the delegate has written since the last call (flushed by the loop's rules).
    public func readOutbound() -> [UInt8] {
        self.turn()
        defer { self.outbound.removeAll() }
        return self.outbound
    }

    /// Shuts the peer's sending side: the delegate hears ``ConnectionDelegate/connectionDidReadEOF(_:)``
    /// once it has read what came before.
    public func closeInbound() {
        Sys.shutdown(self.peer, how: CInt(SHUT_WR))
        self.turn()
    }

    /// Whether the connection has closed its end (the peer end read EOF) or is closed.
    public var isClosed: Bool {
        self.turn()
        return self.connection.state == .closed
    }

    /// Runs what was posted to the loop (``Inbox/post(_:)``, ``LoopHandle/execute(_:)``) and
    /// turns the connection.
    public func runPosted() {
        self.loop.drainMailbox()
        self.loop.flushPending()
        self.turn()
    }

    /// Moves the loop's clock (``EventLoop/now``) forward by `duration`, firing in order every
    /// timer that falls due (repeating ones as often as they fall due; timers due at the same
    /// time in the order they were scheduled), each followed by a turn.
    public func advanceTime(by duration: Duration) {
        let target = self.loop.now &+ UInt64(max(duration.nanoseconds, 0))
        while let (id, entry) = self.loop.timerCallbacks.filter({ $0.value.deadline <= target })
            .min(by: { ($0.value.deadline, $0.key) < ($1.value.deadline, $1.key) })  // ties: in scheduling order
        {
            self.loop.nowStorage.pointee = max(self.loop.now, entry.deadline)
            if entry.repeats { self.loop.timerCallbacks[id]?.deadline = entry.deadline &+ max(entry.interval, 1) }
            self.loop.fireTimer(id)
            self.loop.flushPending()
            self.turn()
        }
        self.loop.nowStorage.pointee = target
        self.turn()
    }

    /// Serves the connection as the loop would, without waiting, until nothing moves: the peer
    /// end's bytes are collected, the connection reads what is readable (if it reads) and writes
    /// what is writable, and the end-of-iteration flush runs.
    /// - Returns: whether the connection read or wrote anything.
    @discardableResult
    private func turn() -> Bool {
        var moved = false
        while true {
            self.collectOutbound()
            self.loop.flushPending()
            _ = self.loop.releaseFanOut()  // frames queued for a fan-out round (FanOutPacing.swift)
            self.collectOutbound()
            guard self.connection.state != .closed else { break }
            let revents = (try? Sys.poll(self.connection.descriptor, events: Int16(POLLIN | POLLOUT), timeoutMilliseconds: 0)) ?? 0
            let interest = self.loop.registeredInterest(self.connection.descriptor) ?? []
            var acted = false
            if revents & Int16(POLLOUT) != 0 && interest.contains(.write) {
                self.connection.handleWritable()
                acted = true
            }
            if revents & Int16(POLLIN | POLLHUP) != 0 && interest.contains(.read) && self.connection.state == .open {
                self.connection.handleReadable()
                acted = true
            }
            guard acted else { break }
            moved = true
        }
        return moved
    }

    private func collectOutbound() {
        guard self.peerOpen && !self.sawEOF else { return }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let result = buffer.withUnsafeMutableBytes { raw in try? Sys.read(self.peer, into: raw) }
            guard case .processed(let n)? = result, n > 0 else {
                if case .processed(0)? = result { self.sawEOF = true }
                return
            }
            self.outbound.append(contentsOf: buffer[0..<n])
        }
    }
}

extension Sys {
    /// socketpair(2): a connected pair of non-blocking, close-on-exec AF_UNIX stream sockets.
    static func socketPair() throws(IOError) -> (Descriptor, Descriptor) {
        var fds: [CInt] = [-1, -1]
        let type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        _ = try check("socketpair") { Glibc.socketpair(AF_UNIX, type, 0, &fds) }
        return (Descriptor(rawValue: fds[0]), Descriptor(rawValue: fds[1]))
    }
}
