// A UDP socket on the loop: receives datagrams (bounded per wake-up) and hands each to its
// receive closure with the sender's address; replies go straight back with sendto. UDP has no
// backpressure: a reply the kernel cannot take right now is dropped, as the protocol allows.

import CLinux
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// A bound, non-blocking UDP socket registered with an ``EventLoop``. Loop thread only.
public final class DatagramSocket: EventHandler {
    let descriptor: Descriptor
    /// The address actually bound.
    public let localAddress: SocketAddress
    unowned let loop: EventLoop
    /// Most datagrams handled per wake-up.
    var receiveBudgetPerWakeup = 64
    /// Replies dropped because the socket buffer was full.
    private(set) var droppedReplies = 0
    private let receive: (DatagramSocket, UnsafeRawBufferPointer, SocketAddress) -> Void
    private var isOpen = true

    /// Binds a UDP socket and registers it for reading. Loop thread only.
    /// - Parameters:
    ///   - loop: the loop that serves it.
    ///   - address: where to bind; port 0 asks the kernel for a free port.
    ///   - receive: called on the loop thread with the socket, one datagram (valid only during
    ///     the call) and its sender.
    /// - Throws: ``IOError`` naming the failing call.
    public init(
        loop: EventLoop, address: SocketAddress,
        receive: @escaping (DatagramSocket, UnsafeRawBufferPointer, SocketAddress) -> Void
    ) throws(IOError) {
        assert(loop.inLoopThread)
        let (fd, local) = try Sys.boundSocket(address, type: CInt(SOCK_DGRAM.rawValue))
        self.localAddress = local
        self.descriptor = fd
        self.loop = loop
        self.receive = receive
        try loop.registerOrClose(self, descriptor: fd, interest: .read)
    }

    /// Sends one datagram.
    /// - Returns: false if it was dropped (socket buffer full, or an error).
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to peer: SocketAddress) -> Bool {
        assert(self.loop.inLoopThread)
        switch try? Sys.sendto(self.descriptor, bytes, to: peer) {
        case .processed?: return true
        default:
            self.droppedReplies += 1
            return false
        }
    }

    /// Closes the socket.
    public func close() {
        assert(self.loop.inLoopThread)
        guard self.isOpen else { return }
        self.isOpen = false
        self.loop.deregisterAndClose(self.descriptor)
    }

    func handleReadable() {
        let buffer = self.loop.readBuffer
        for _ in 0..<self.receiveBudgetPerWakeup {
            guard self.isOpen else { return }
            let result: IOResult<(Int, SocketAddress)>
            do {
                result = try Sys.recvfrom(self.descriptor, into: buffer)
            } catch {
                // ICMP errors from an earlier reply (ECONNREFUSED) surface here: not fatal.
                self.loop.logger.debug("recvfrom failed", metadata: ["error": "\(error)"])
                continue
            }
            guard case .processed(let (n, peer)) = result else { return }
            self.receive(self, UnsafeRawBufferPointer(rebasing: buffer[0..<n]), peer)
        }
    }

    func handleWritable() {}
}
