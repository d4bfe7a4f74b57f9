// Every raw system call the reactor makes, in one place. The errno policy lives only here:
// errno is read in the statement right after the call, EINTR is retried (except by close),
// EAGAIN comes back as a value, and every other failure throws an IOError naming the call.
// Nothing above this file sees errno. All of it is internal: an embedder reaches the system
// through Connection, Listener, DatagramSocket, OpenFile and SystemClock.

import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: the errno it set and the call's name.
public struct IOError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The errno value (compare with Glibc's constants, e.g. `ENOENT`).
    public let errno: CInt
    /// The system call that failed, e.g. `"bind"`.
    public let call: String

    /// A failure of `call` with `errno`, for layers above the reactor that make system calls of
    /// their own and report them the same way.
    public init(errno: CInt, call: String) {
        self.errno = errno
        self.call = call
    }

    /// `bind: Address already in use (errno 98)`.
    public var description: String {
        "\(self.call): \(String(cString: strerror(self.errno))) (errno \(self.errno))"
    }
}

/// The outcome of a non-blocking call: done, or it would have blocked.
enum IOResult<Value: Sendable>: Sendable {
    case processed(Value)
    case wouldBlock
}

/// A file descriptor number owned by the reactor. It never wraps a closed descriptor on purpose:
/// closing is explicit (``Sys/close(_:)``).
struct Descriptor: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    let rawValue: CInt
    init(rawValue: CInt) { self.rawValue = rawValue }
    var description: String { "fd \(self.rawValue)" }
}

/// The system calls, named as in their man pages.
enum Sys {
    @inline(__always)
    static func check<T: BinaryInteger>(_ call: String, _ body: () -> T) throws(IOError) -> T {
        while true {
            let r = body()
            if r >= 0 { return r }
            let err = Glibc.errno
            if err == EINTR { continue }
            throw IOError(errno: err, call: call)
        }
    }

    @inline(__always)
    static func checkNonBlocking<T: BinaryInteger & Sendable>(
        _ call: String, _ body: () -> T
    ) throws(IOError) -> IOResult<T> {
        while true {
            let r = body()
            if r >= 0 { return .processed(r) }
            let err = Glibc.errno
            switch err {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: throw IOError(errno: err, call: call)
            }
        }
    }

    /// After a non-blocking call failed: whether to retry it (EINTR); false when it would have
    /// blocked (EAGAIN). Throws for every other errno. The hot calls (recv, send) check their
    /// result themselves and call this only on failure: no closure on their way.
    @inline(__always)
    static func retries(_ call: String) throws(IOError) -> Bool {
        let err = Glibc.errno
        switch err {
        case EINTR: return true
        case EAGAIN, EWOULDBLOCK: return false
        default: throw IOError(errno: err, call: call)
        }
    }

    /// close(2). Never retried, even on EINTR: on Linux the descriptor is released either way and
    /// a retry could close a descriptor another part of the program just received.
    static func close(_ fd: Descriptor) {
        let r = Glibc.close(fd.rawValue)
        if r < 0 {
            let err = Glibc.errno
            // EBADF means we closed something twice: a programmer error.
            precondition(err != EBADF, "close(\(fd.rawValue)): EBADF, descriptor closed twice")
        }
    }

    /// read(2). Returns `.processed(0)` at end of stream.
    static func read(_ fd: Descriptor, into buffer: UnsafeMutableRawBufferPointer) throws(IOError) -> IOResult<Int> {
        try checkNonBlocking("read") { Glibc.read(fd.rawValue, buffer.baseAddress, buffer.count) }
    }

    /// write(2).
    static func write(_ fd: Descriptor, _ buffer: UnsafeRawBufferPointer) throws(IOError) -> IOResult<Int> {
        try checkNonBlocking("write") { Glibc.write(fd.rawValue, buffer.baseAddress, buffer.count) }
    }

    /// recv(2) with no flags, for sockets: what read(2) does, without the file layer's checks
    /// (position lock, permission hook, access notification) that a socket has no use for.
    /// Returns `.processed(0)` at end of stream.
    /// The request path's own call: made directly, the errno policy applied only on failure.
    @inline(__always)
    static func recv(_ fd: Descriptor, into buffer: UnsafeMutableRawBufferPointer) throws(IOError) -> IOResult<Int> {
        while true {
            let r = Glibc.recv(fd.rawValue, buffer.baseAddress, buffer.count, 0)
            if r >= 0 { return .processed(r) }
            if try !Self.retries("recv") { return .wouldBlock }
        }
    }

    /// send(2) with MSG_NOSIGNAL, for sockets: write(2) without the file layer's checks, and a
    /// peer gone is EPIPE without SIGPIPE.
    /// `bytes` from index `start` to the end (a connection's queued output).
    @inline(__always)
    static func send(_ fd: Descriptor, _ bytes: [UInt8], from start: Int) throws(IOError) -> IOResult<Int> {
        while true {
            let r = bytes.withUnsafeBytes { Glibc.send(fd.rawValue, $0.baseAddress! + start, $0.count - start, CInt(MSG_NOSIGNAL)) }
            if r >= 0 { return .processed(r) }
            if try !Self.retries("send") { return .wouldBlock }
        }
    }

    /// sendfile(2): up to `count` bytes of `file` from `offset` (advanced by the kernel).
    static func sendfile(
        _ socket: Descriptor, _ file: Descriptor, offset: inout Int, count: Int
    ) throws(IOError) -> IOResult<Int> {
        try checkNonBlocking("sendfile") { CLinux.sendfile(socket.rawValue, file.rawValue, &offset, count) }
    }

    /// socket(2), always non-blocking and close-on-exec. The first call ignores SIGPIPE for
    /// the process (see ``ignoreSIGPIPEOnce``).
    static func socket(domain: CInt, type: CInt) throws(IOError) -> Descriptor {
        _ = ignoreSIGPIPEOnce
        let fd = try check("socket") {
            Glibc.socket(domain, type | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        }
        return Descriptor(rawValue: fd)
    }

    /// setsockopt(2) for an integer option.
    static func setsockopt(_ fd: Descriptor, level: CInt, name: CInt, value: CInt) throws(IOError) {
        var v = value
        _ = try check("setsockopt") {
            Glibc.setsockopt(fd.rawValue, level, name, &v, socklen_t(MemoryLayout<CInt>.size))
        }
    }

    /// getsockopt(2) for an integer option.
    static func getsockopt(_ fd: Descriptor, level: CInt, name: CInt) throws(IOError) -> CInt {
        var v: CInt = 0
        var len = socklen_t(MemoryLayout<CInt>.size)
        _ = try check("getsockopt") { Glibc.getsockopt(fd.rawValue, level, name, &v, &len) }
        return v
    }

    /// bind(2).
    static func bind(_ fd: Descriptor, _ address: SocketAddress) throws(IOError) {
        _ = try check("bind") { address.withSockAddr { Glibc.bind(fd.rawValue, $0, $1) } }
    }

    /// A non-blocking socket bound to `address` (IPv6 sockets IPv6-only, so `::` and `0.0.0.0`
    /// can coexist), with the address actually bound. Closed again if any step fails.
    /// - Parameters:
    ///   - beforeBind: options to set first (e.g. SO_REUSEADDR).
    ///   - afterBind: what follows the bind (e.g. listen).
    static func boundSocket(
        _ address: SocketAddress, type: CInt,
        beforeBind: (Descriptor) throws(IOError) -> Void = { _ in },
        afterBind: (Descriptor) throws(IOError) -> Void = { _ in }
    ) throws(IOError) -> (Descriptor, SocketAddress) {
        let fd = try socket(domain: address.family, type: type)
        do {
            try beforeBind(fd)
            if address.family == AF_INET6 {
                try setsockopt(fd, level: CInt(IPPROTO_IPV6), name: IPV6_V6ONLY, value: 1)
            }
            try bind(fd, address)
            try afterBind(fd)
            return (fd, try getsockname(fd))
        } catch {
            close(fd)
            throw error
        }
    }

    /// listen(2).
    static func listen(_ fd: Descriptor, backlog: CInt) throws(IOError) {
        _ = try check("listen") { Glibc.listen(fd.rawValue, backlog) }
    }

    /// accept4(2) with SOCK_NONBLOCK|SOCK_CLOEXEC. `.wouldBlock` when the queue is empty.
    static func accept4(_ fd: Descriptor) throws(IOError) -> IOResult<(Descriptor, SocketAddress)> {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let flags = CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        let r = try withUnsafeMutablePointer(to: &storage) { p throws(IOError) -> IOResult<CInt> in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(IOError) in
                try checkNonBlocking("accept4") { CLinux.accept4(fd.rawValue, sa, &len, flags) }
            }
        }
        switch r {
        case .wouldBlock: return .wouldBlock
        case .processed(let client): return .processed((Descriptor(rawValue: client), SocketAddress(storage: storage)))
        }
    }

    /// connect(2) on a non-blocking socket: `.wouldBlock` means EINPROGRESS (wait for writable,
    /// then read SO_ERROR).
    static func connect(_ fd: Descriptor, _ address: SocketAddress) throws(IOError) -> IOResult<Void> {
        while true {
            let r = address.withSockAddr { Glibc.connect(fd.rawValue, $0, $1) }
            if r == 0 { return .processed(()) }
            let err = Glibc.errno
            switch err {
            case EINTR: continue
            case EINPROGRESS, EAGAIN: return .wouldBlock
            default: throw IOError(errno: err, call: "connect")
            }
        }
    }

    /// getsockname(2).
    static func getsockname(_ fd: Descriptor) throws(IOError) -> SocketAddress {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { p throws(IOError) in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(IOError) in
                try check("getsockname") { Glibc.getsockname(fd.rawValue, sa, &len) }
            }
        }
        return SocketAddress(storage: storage)
    }

    /// shutdown(2). ENOTCONN (the peer is already gone) is not an error worth reporting.
    static func shutdown(_ fd: Descriptor, how: CInt) {
        _ = Glibc.shutdown(fd.rawValue, how)
    }

    /// recvfrom(2) of one datagram.
    static func recvfrom(
        _ fd: Descriptor, into buffer: UnsafeMutableRawBufferPointer
    ) throws(IOError) -> IOResult<(Int, SocketAddress)> {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = try withUnsafeMutablePointer(to: &storage) { p throws(IOError) -> IOResult<Int> in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(IOError) in
                try checkNonBlocking("recvfrom") { Glibc.recvfrom(fd.rawValue, buffer.baseAddress, buffer.count, 0, sa, &len) }
            }
        }
        switch r {
        case .wouldBlock: return .wouldBlock
        case .processed(let n): return .processed((n, SocketAddress(storage: storage)))
        }
    }

    /// sendto(2) of one datagram.
    static func sendto(
        _ fd: Descriptor, _ buffer: UnsafeRawBufferPointer, to address: SocketAddress
    ) throws(IOError) -> IOResult<Int> {
        try checkNonBlocking("sendto") {
            address.withSockAddr { Glibc.sendto(fd.rawValue, buffer.baseAddress, buffer.count, CInt(MSG_NOSIGNAL), $0, $1) }
        }
    }

    /// poll(2) on one descriptor. - Returns: its `revents` (POLLERR and POLLHUP are reported
    /// whatever `events` asks for), 0 on timeout.
    static func poll(_ fd: Descriptor, events: Int16, timeoutMilliseconds: CInt) throws(IOError) -> Int16 {
        var p = pollfd(fd: fd.rawValue, events: events, revents: 0)
        _ = try check("poll") { Glibc.poll(&p, 1, timeoutMilliseconds) }
        return p.revents
    }

    /// epoll_create1(EPOLL_CLOEXEC).
    static func epoll_create1() throws(IOError) -> Descriptor {
        Descriptor(rawValue: try check("epoll_create1") { CLinux.epoll_create1(CInt(EPOLL_CLOEXEC)) })
    }

    /// epoll_ctl(2).
    static func epoll_ctl(_ epfd: Descriptor, op: CInt, fd: Descriptor, events: UInt32, data: UInt64) throws(IOError) {
        var ev = epoll_event()
        ev.events = events
        ev.data.u64 = data
        _ = try check("epoll_ctl") { CLinux.epoll_ctl(epfd.rawValue, op, fd.rawValue, &ev) }
    }

    /// epoll_wait(2). EINTR means zero events (the caller re-checks its state and waits again).
    static func epoll_wait(
        _ epfd: Descriptor, events: UnsafeMutableBufferPointer<epoll_event>, timeoutMilliseconds: CInt
    ) throws(IOError) -> Int {
        let r = CLinux.epoll_wait(epfd.rawValue, events.baseAddress, CInt(events.count), timeoutMilliseconds)
        if r >= 0 { return Int(r) }
        let err = Glibc.errno
        if err == EINTR { return 0 }
        throw IOError(errno: err, call: "epoll_wait")
    }

    /// epoll_pwait2(2): epoll_wait with a timeout in nanoseconds (Linux 5.11). EINTR means zero
    /// events. On a kernel without it (ENOSYS) the timeout is rounded up to milliseconds.
    static func epoll_wait(
        _ epfd: Descriptor, events: UnsafeMutableBufferPointer<epoll_event>, timeoutNanoseconds: Int64
    ) throws(IOError) -> Int {
        var timeout = timespec(tv_sec: Int(timeoutNanoseconds / 1_000_000_000), tv_nsec: Int(timeoutNanoseconds % 1_000_000_000))
        let r = CLinux.epoll_pwait2(epfd.rawValue, events.baseAddress, CInt(events.count), &timeout, nil)
        if r >= 0 { return Int(r) }
        let err = Glibc.errno
        if err == EINTR { return 0 }
        if err == ENOSYS {
            let milliseconds = CInt(clamping: (timeoutNanoseconds + 999_999) / 1_000_000)
            return try Self.epoll_wait(epfd, events: events, timeoutMilliseconds: milliseconds)
        }
        throw IOError(errno: err, call: "epoll_pwait2")
    }

    /// eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC).
    static func eventfd() throws(IOError) -> Descriptor {
        Descriptor(rawValue: try check("eventfd") { CLinux.eventfd(0, CInt(EFD_NONBLOCK) | CInt(EFD_CLOEXEC)) })
    }

    /// Adds one to an eventfd counter. Safe from any thread. EAGAIN (counter saturated) means a
    /// wake-up is already pending, which is all a wake-up needs.
    static func eventfdSignal(_ fd: Descriptor) {
        var one: UInt64 = 1
        while Glibc.write(fd.rawValue, &one, 8) < 0 && Glibc.errno == EINTR {}
    }

    /// Reads (and so resets) an eventfd counter.
    static func eventfdDrain(_ fd: Descriptor) {
        var value: UInt64 = 0
        while Glibc.read(fd.rawValue, &value, 8) < 0 && Glibc.errno == EINTR {}
    }

    /// Raises the soft RLIMIT_NOFILE to the hard limit. - Returns: the new soft limit.
    @discardableResult
    static func raiseDescriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(CInt(RLIMIT_NOFILE.rawValue), &limit)
        }
        return limit.rlim_cur > rlim_t(Int32.max) ? Int(Int32.max) : Int(limit.rlim_cur)
    }

    /// Monotonic clock in nanoseconds (CLOCK_MONOTONIC).
    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// CPU time the calling thread has used (CLOCK_THREAD_CPUTIME_ID), nanoseconds: a system
    /// call, unlike the monotonic clock, so only for measurements that are switched on.
    static func threadCPUNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

}

/// SIGPIPE ignored for the whole process, once, the first time the library makes or adopts a
/// socket: a peer that vanishes must never kill the embedding program (swift-nio does the same
/// when its first socket is made). A global's initialiser runs exactly once, under swift_once,
/// so this is thread-safe with no lock of ours. `write` on a socket whose peer is gone then
/// fails with EPIPE, which the write path reports as an ordinary IOError.
let ignoreSIGPIPEOnce: Void = {
    _ = Glibc.signal(SIGPIPE, SIG_IGN)
}()
