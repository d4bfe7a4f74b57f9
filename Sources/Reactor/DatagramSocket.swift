// A UDP socket on the loop: receives datagrams (bounded per wake-up) and hands each to its
// delegate with the sender's address; replies go straight back with sendto. UDP has no
// backpressure: a reply the kernel cannot take right now is dropped, as the protocol allows.

import CLinux
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Receives datagrams, on the loop thread.
public protocol DatagramDelegate: AnyObject {
    /// One datagram. `bytes` is valid only during the call.
    func socket(_ socket: DatagramSocket, didReceive bytes: UnsafeRawBufferPointer, from peer: SocketAddress)
}

/// A bound, non-blocking UDP socket registered with an ``EventLoop``. Loop thread only.
public final class DatagramSocket: EventHandler {
    public let descriptor: Descriptor
    /// The address actually bound.
    public let localAddress: SocketAddress
    public unowned let loop: EventLoop
    public weak var delegate: DatagramDelegate?
    /// Most datagrams handled per wake-up.
    public var receiveBudgetPerWakeup = 64
    /// Replies dropped because the socket buffer was full.
    public private(set) var droppedReplies = 0
    private var isOpen = true

    /// Binds a UDP socket and registers it for reading.
    /// - Throws: ``IOError`` naming the failing call.
    public init(loop: EventLoop, address: SocketAddress, delegate: DatagramDelegate?) throws(IOError) {
        let (fd, local) = try Sys.boundSocket(address, type: CInt(SOCK_DGRAM.rawValue))
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

    /// Sends one datagram. - Returns: false if it was dropped (buffer full or an error).
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to peer: SocketAddress) -> Bool {
        switch try? Sys.sendto(self.descriptor, bytes, to: peer) {
        case .processed?: return true
        default:
            self.droppedReplies += 1
            return false
        }
    }

    /// Sends one datagram from an array. - Returns: false if it was dropped.
    @discardableResult
    public func send(_ bytes: [UInt8], to peer: SocketAddress) -> Bool {
        bytes.withUnsafeBytes { self.send($0, to: peer) }
    }

    /// Closes the socket.
    public func close() {
        guard self.isOpen else { return }
        self.isOpen = false
        self.loop.deregister(self.descriptor)
        Sys.close(self.descriptor)
    }

    public func handleReadable() {
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
            self.delegate?.socket(self, didReceive: UnsafeRawBufferPointer(rebasing: buffer[0..<n]), from: peer)
        }
    }

    public func handleWritable() {}
}
