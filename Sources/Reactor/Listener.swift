// A listening TCP socket on the loop: accepts until EAGAIN (bounded per wake-up) and hands each
// new descriptor to its delegate. Running out of descriptors (EMFILE/ENFILE) never closes the
// listener and never spins the CPU: accepting pauses briefly, logged once per episode.

import CLinux
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Receives accepted sockets, on the loop thread.
public protocol ListenerDelegate: AnyObject {
    /// A new non-blocking, close-on-exec socket. The delegate owns it: wrap it in a
    /// ``Connection`` or close it.
    func listener(_ listener: Listener, didAccept descriptor: Descriptor, from peer: SocketAddress)
}

/// A non-blocking TCP listener registered with an ``EventLoop``. Loop thread only.
public final class Listener: EventHandler {
    /// The bound socket.
    public let descriptor: Descriptor
    /// The address actually bound (with the kernel's port when 0 was asked for).
    public let localAddress: SocketAddress
    public unowned let loop: EventLoop
    public weak var delegate: ListenerDelegate?
    /// Most connections accepted per wake-up before the loop serves other descriptors.
    public var acceptBudgetPerWakeup = 1024
    /// How long accepting pauses after EMFILE/ENFILE.
    public var descriptorExhaustionBackoff: Duration = .milliseconds(100)

    private var isOpen = true
    private var isPaused = false
    private var exhaustionLogged = false

    /// Binds and listens (SO_REUSEADDR; IPv6 sockets are IPv6-only so `::` and `0.0.0.0` can
    /// coexist), then registers for accepts.
    /// - Throws: ``IOError`` naming the failing call, e.g. `bind: Address already in use`.
    public init(loop: EventLoop, address: SocketAddress, backlog: CInt = 4096, delegate: ListenerDelegate?) throws(IOError) {
        let (fd, local) = try Sys.boundSocket(address, type: CInt(SOCK_STREAM.rawValue)) { fd throws(IOError) in
            try Sys.setsockopt(fd, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1)
        } afterBind: { fd throws(IOError) in
            try Sys.listen(fd, backlog: backlog)
        }
        self.localAddress = local
        self.descriptor = fd
        self.loop = loop
        self.delegate = delegate
        do {
            try loop.register(self, descriptor: fd, interest: .read)
        } catch {
            Sys.close(fd)
            throw error
        }
    }

    /// Stops accepting and closes the socket.
    public func close() {
        guard self.isOpen else { return }
        self.isOpen = false
        self.loop.deregister(self.descriptor)
        Sys.close(self.descriptor)
    }

    public func handleReadable() {
        guard self.isOpen, !self.isPaused else { return }
        for _ in 0..<self.acceptBudgetPerWakeup {
            let result: IOResult<(Descriptor, SocketAddress)>
            do {
                result = try Sys.accept4(self.descriptor)
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
            if let delegate = self.delegate {
                delegate.listener(self, didAccept: fd, from: peer)
            } else {
                Sys.close(fd)
            }
            guard self.isOpen else { return }
        }
    }

    public func handleWritable() {}

    private func pauseForExhaustion(_ error: IOError) {
        if !self.exhaustionLogged {
            self.exhaustionLogged = true
            self.loop.logger.warning(
                "out of descriptors: pausing accepts", metadata: ["listener": "\(self.localAddress)", "error": "\(error)"])
        }
        self.isPaused = true
        // Level-triggered epoll would report the pending connection again at once: drop read
        // interest until the back-off ends, so the loop sleeps instead of spinning.
        try? self.loop.setInterest([], for: self.descriptor)
        self.loop.scheduleTimer(after: self.descriptorExhaustionBackoff) { [weak self] in
            guard let self, self.isOpen else { return }
            self.isPaused = false
            try? self.loop.setInterest(.read, for: self.descriptor)
        }
    }
}
