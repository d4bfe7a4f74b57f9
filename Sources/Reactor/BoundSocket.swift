// What a listener and a datagram socket share: a socket bound to an address, registered with
// the loop, closed once. It knows nothing of accepting or receiving.

/// A bound, registered socket. Loop thread only.
final class BoundSocket {
    let descriptor: Descriptor
    /// The address actually bound (with the kernel's port when 0 was asked for).
    let localAddress: SocketAddress
    unowned let loop: EventLoop
    private(set) var isOpen = true

    /// Binds a socket of `type` (see ``Sys/boundSocket(_:type:beforeBind:afterBind:)``); the
    /// owner then calls ``register(_:)``.
    /// - Throws: ``IOError`` naming the failing call.
    init(
        loop: EventLoop, address: SocketAddress, type: CInt,
        beforeBind: (Descriptor) throws(IOError) -> Void = { _ in },
        afterBind: (Descriptor) throws(IOError) -> Void = { _ in }
    ) throws(IOError) {
        assert(loop.inLoopThread)
        (self.descriptor, self.localAddress) = try Sys.boundSocket(address, type: type, beforeBind: beforeBind, afterBind: afterBind)
        self.loop = loop
    }

    /// Registers the owner for readability; closes the socket if that fails.
    func register(_ handler: EventHandler) throws(IOError) {
        try self.loop.registerOrClose(handler, descriptor: self.descriptor, interest: .read)
    }

    /// Deregisters and closes the socket; later calls do nothing.
    func close() {
        assert(self.loop.inLoopThread)
        guard self.isOpen else { return }
        self.isOpen = false
        self.loop.deregisterAndClose(self.descriptor)
    }
}
