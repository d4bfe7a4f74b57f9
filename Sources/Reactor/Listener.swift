// A listening TCP socket on the loop: accepts until EAGAIN (bounded per wake-up), asks the
// embedder's factory for each peer's delegate, and wraps the socket in a Connection that holds
// it. Running out of descriptors (EMFILE/ENFILE) never closes the listener and never spins the
// CPU: accepting pauses briefly, logged once per episode.

import CLinux
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking stream listener (TCP, or a Unix domain socket: ``SocketAddress/init(unixDomainSocketPath:)``)
/// registered with an ``EventLoop``. Loop thread only.
///
/// Each accepted peer gets the delegate the `accept` factory returns; the ``Connection`` made
/// for it is held by the loop and holds its delegate until it closes, so an embedder keeps no
/// registry of connections unless it wants one (to close them all at shutdown, say).
public final class Listener: EventHandler {
    private let socket: BoundSocket
    private var loop: EventLoop { self.socket.loop }
    /// The address actually bound (with the kernel's port when 0 was asked for).
    public var localAddress: SocketAddress { self.socket.localAddress }
    /// Most connections accepted per wake-up before the loop serves other descriptors.
    var acceptBudgetPerWakeup = 1024
    /// How long accepting pauses after EMFILE/ENFILE.
    var descriptorExhaustionBackoff: Duration = .milliseconds(100)

    private let accept: (SocketAddress) -> ConnectionDelegate?
    private var isPaused = false
    private var exhaustionLogged = false

    /// Binds and listens (SO_REUSEADDR; IPv6 sockets are IPv6-only so `::` and `0.0.0.0` can
    /// coexist), then registers for accepts. Loop thread only.
    /// - Parameters:
    ///   - loop: the loop that accepts and serves the connections.
    ///   - address: where to listen; port 0 asks the kernel for a free port.
    ///   - backlog: listen(2)'s queue length.
    ///   - reusePort: sets SO_REUSEPORT, so several listeners (one per loop of an
    ///     ``EventLoopGroup``) bind the same port and the kernel spreads new connections over them.
    ///   - accept: called on the loop thread for every accepted peer, before its ``Connection``
    ///     exists. Return the delegate that will serve it (it then hears
    ///     ``ConnectionDelegate/connectionDidOpen(_:)``, or only ``ConnectionDelegate/connectionDidClose(_:)``
    ///     if the socket cannot be registered), or nil to refuse the peer: its socket is closed.
    /// - Throws: ``IOError`` naming the failing call, e.g. `bind: Address already in use`.
    public init(
        loop: EventLoop, address: SocketAddress, backlog: Int = 4096, reusePort: Bool = false,
        accept: @escaping (SocketAddress) -> ConnectionDelegate?
    ) throws(IOError) {
        self.socket = try BoundSocket(loop: loop, address: address, type: CInt(SOCK_STREAM.rawValue)) { fd throws(IOError) in
            try Sys.setsockopt(fd, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1)
            if reusePort { try Sys.setsockopt(fd, level: SOL_SOCKET, name: CInt(SO_REUSEPORT), value: 1) }
        } afterBind: { fd throws(IOError) in
            try Sys.listen(fd, backlog: CInt(clamping: backlog))
        }
        self.accept = accept
        try self.socket.register(self)
    }

    /// Stops accepting and closes the socket. Connections already accepted stay open.
    public func close() { self.socket.close() }

    func handleReadable() {
        guard self.socket.isOpen, !self.isPaused else { return }
        for _ in 0..<self.acceptBudgetPerWakeup {
            let result: IOResult<(Descriptor, SocketAddress)>
            do {
                result = try Sys.accept4(self.socket.descriptor)
            } catch {
                switch error.errno {
                case ECONNABORTED, EPROTO, EPERM:
                    continue  // that one client is gone; the listener is fine
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    self.pauseForExhaustion(error)
                    return
                default:
                    self.loop.logger.error("accept failed", metadata: ["listener": "\(self.localAddress)", "error": "\(error)"])
                    self.pauseForExhaustion(error)
                    return
                }
            }
            guard case .processed(let (fd, peer)) = result else { break }
            self.exhaustionLogged = false
            // Replies go out as soon as they are written: with Nagle's algorithm a reply written
            // while an earlier one is unacknowledged waits for the peer's delayed ACK (40 ms).
            try? Sys.setsockopt(fd, level: CInt(IPPROTO_TCP), name: TCP_NODELAY, value: 1)
            if let delegate = self.accept(peer) {
                Connection.accepted(loop: self.loop, descriptor: fd, peer: peer, delegate: delegate)
            } else {
                Sys.close(fd)
            }
            guard self.socket.isOpen else { return }
        }
    }

    func handleWritable() {}

    private func pauseForExhaustion(_ error: IOError) {
        if !self.exhaustionLogged {
            self.exhaustionLogged = true
            self.loop.logger.warning(
                "out of descriptors: pausing accepts", metadata: ["listener": "\(self.localAddress)", "error": "\(error)"])
        }
        self.isPaused = true
        // Level-triggered epoll would report the pending connection again at once: drop read
        // interest until the back-off ends, so the loop sleeps instead of spinning.
        try? self.loop.setInterest([], for: self.socket.descriptor)
        self.loop.scheduleTimer(after: self.descriptorExhaustionBackoff) { [weak self] in
            guard let self, self.socket.isOpen else { return }
            self.isPaused = false
            try? self.loop.setInterest(.read, for: self.socket.descriptor)
        }
    }
}
