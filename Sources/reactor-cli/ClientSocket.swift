// A small blocking TCP/UDP client for reactor-cli: connect with a timeout, send everything,
// read lines and exact byte counts. One request at a time needs no event loop.

import Foundation
import Reactor
#if canImport(Glibc)
import Glibc
#endif

struct CLIError: Error, CustomStringConvertible {
    let description: String
    let exitCode: Int32
}

/// A connected blocking socket with a read buffer.
final class ClientSocket {
    let fd: CInt
    let endpoint: String
    private var buffer: [UInt8] = []

    /// Connects (TCP) or associates (UDP). Failure: exit code 3 with host and port named.
    init(host: String, port: Int, udp: Bool = false, timeoutSeconds: Int = 5) throws {
        self.endpoint = "\(host):\(port)"
        let address: SocketAddress
        do {
            address = try SocketAddress(host: host, port: port)
        } catch {
            throw CLIError(description: "cannot connect to \(host):\(port): \(error)", exitCode: 3)
        }
        let type = udp ? CInt(SOCK_DGRAM.rawValue) : CInt(SOCK_STREAM.rawValue)
        let fd = Glibc.socket(address.family, type | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw CLIError(description: "cannot connect to \(host):\(port): \(String(cString: strerror(errno)))", exitCode: 3)
        }
        self.fd = fd
        if let failure = Self.connect(fd, to: address, timeoutSeconds: timeoutSeconds) {
            Glibc.close(fd)
            throw CLIError(description: "cannot connect to \(host):\(port): \(failure)", exitCode: 3)
        }
        // Blocking from here on: the CLI waits for each reply.
        let flags = fcntl(self.fd, F_GETFL)
        _ = fcntl(self.fd, F_SETFL, flags & ~O_NONBLOCK)
    }

    deinit { Glibc.close(self.fd) }

    /// A non-blocking connect bounded by a timeout: EINPROGRESS, wait for writable, read
    /// SO_ERROR. - Returns: why it failed, or nil once connected.
    private static func connect(_ fd: CInt, to address: SocketAddress, timeoutSeconds: Int) -> String? {
        var r: CInt
        repeat {
            r = address.withSockAddr { Glibc.connect(fd, $0, $1) }
        } while r < 0 && errno == EINTR
        if r == 0 { return nil }
        let failed = { (err: CInt) in "connect: \(String(cString: strerror(err))) (errno \(err))" }
        guard errno == EINPROGRESS || errno == EAGAIN else { return failed(errno) }
        var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&pfd, 1, Int32(timeoutSeconds * 1000)) == 1 else { return failed(ETIMEDOUT) }
        var err: CInt = 0
        var len = socklen_t(MemoryLayout<CInt>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        return err == 0 ? nil : failed(err)
    }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError(description: "send to \(self.endpoint): \(String(cString: strerror(errno)))", exitCode: 1)
            }
            sent += n
        }
    }

    func shutdownWrite() { _ = Glibc.shutdown(self.fd, Int32(SHUT_WR)) }

    /// Waits for readability; false on timeout.
    func waitReadable(timeoutMilliseconds: Int32) -> Bool {
        var pfd = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, timeoutMilliseconds) == 1
    }

    /// Reads more bytes into the buffer. - Returns: false at end of stream.
    private func fill(max: Int = 65536) throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: max)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.recv(self.fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError(description: "receive from \(self.endpoint): \(String(cString: strerror(errno)))", exitCode: 1)
            }
            if n == 0 { return false }
            self.buffer.append(contentsOf: chunk[0..<n])
            return true
        }
    }

    /// One line without its terminator (`\n`, and a `\r` before it), or nil at end of stream.
    func readLine() throws -> [UInt8]? {
        while true {
            if let i = self.buffer.firstIndex(of: 10) {
                var line = Array(self.buffer[..<i])
                self.buffer.removeFirst(i + 1)
                if line.last == 13 { line.removeLast() }
                return line
            }
            if try !self.fill() {
                if self.buffer.isEmpty { return nil }
                defer { self.buffer = [] }
                return self.buffer
            }
        }
    }

    /// Streams exactly `count` bytes to `sink`: what is already buffered first, then each
    /// recv(2) straight into one buffer allocated once and reused, handed over in place (no copy,
    /// no allocation per chunk). The bytes passed to `sink` are valid only during the call.
    /// - Parameters:
    ///   - count: bytes to receive.
    ///   - chunkBytes: the size of the reused buffer (the most one recv asks for).
    ///   - sink: consumes each chunk.
    /// - Returns: bytes received (short at end of stream).
    func read(count: Int, chunkBytes: Int = 1 << 20, into sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        var received = 0
        if !self.buffer.isEmpty {
            let take = min(count, self.buffer.count)
            try self.buffer.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[..<take])) }
            self.buffer.removeFirst(take)
            received = take
        }
        guard received < count else { return received }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 4096)
        defer { chunk.deallocate() }
        while received < count {
            let n = Glibc.recv(self.fd, chunk.baseAddress, min(chunkBytes, count - received), 0)
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError(description: "receive from \(self.endpoint): \(String(cString: strerror(errno)))", exitCode: 1)
            }
            if n == 0 { break }
            try sink(UnsafeRawBufferPointer(rebasing: chunk[..<n]))
            received += n
        }
        return received
    }

    /// One datagram (UDP), or nil after the timeout.
    func receiveDatagram(timeoutMilliseconds: Int32) -> [UInt8]? {
        guard self.waitReadable(timeoutMilliseconds: timeoutMilliseconds) else { return nil }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { Glibc.recv(self.fd, $0.baseAddress, $0.count, 0) }
        return n < 0 ? nil : Array(chunk[0..<n])
    }
}
