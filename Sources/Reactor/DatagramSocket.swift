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
    /// The address actually bound.
    public var localAddress: SocketAddress { self.socket.localAddress }
    /// Replies dropped because the socket buffer was full.
    private(set) var droppedReplies = 0
    /// Most datagrams handled per wake-up.
    var receiveBudgetPerWakeup = 64
    private let receive: (DatagramSocket, UnsafeRawBufferPointer, SocketAddress) -> Void
    private let socket: BoundSocket
    private var loop: EventLoop { self.socket.loop }

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
        self.socket = try BoundSocket(loop: loop, address: address, type: CInt(SOCK_DGRAM.rawValue))
        self.receive = receive
        try self.socket.register(self)
    }

    /// Sends one datagram.
    /// - Returns: false if it was dropped (socket buffer full, or an error).
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to peer: SocketAddress) -> Bool {
        assert(self.loop.inLoopThread)
        switch try? Sys.sendto(self.socket.descriptor, bytes, to: peer) {
        case .processed?: return true
        default:
            self.droppedReplies += 1
            return false
        }
    }

    /// Closes the socket.
    public func close() { self.socket.close() }

    func handleReadable() {
        let buffer = self.loop.readBuffer
        for _ in 0..<self.receiveBudgetPerWakeup {
            guard self.socket.isOpen else { return }
            let result: IOResult<(Int, SocketAddress)>
            do {
                result = try Sys.recvfrom(self.socket.descriptor, into: buffer)
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
