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
        let fd: Descriptor
        do {
            fd = try Sys.socket(domain: address.family, type: type)
        } catch {
            throw CLIError(description: "cannot connect to \(host):\(port): \(error)", exitCode: 3)
        }
        self.fd = fd.rawValue
        do {
            if case .wouldBlock = try Sys.connect(fd, address) {
                var pfd = pollfd(fd: fd.rawValue, events: Int16(POLLOUT), revents: 0)
                guard poll(&pfd, 1, Int32(timeoutSeconds * 1000)) == 1 else {
                    throw IOError(errno: ETIMEDOUT, call: "connect")
                }
                let err = try Sys.getsockopt(fd, level: SOL_SOCKET, name: SO_ERROR)
                if err != 0 { throw IOError(errno: err, call: "connect") }
            }
        } catch {
            Glibc.close(fd.rawValue)
            throw CLIError(description: "cannot connect to \(host):\(port): \(error)", exitCode: 3)
        }
        // Blocking from here on: the CLI waits for each reply.
        let flags = fcntl(self.fd, F_GETFL)
        _ = fcntl(self.fd, F_SETFL, flags & ~O_NONBLOCK)
    }

    deinit { Glibc.close(self.fd) }

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

    /// Streams exactly `count` bytes to `sink` in chunks. - Returns: bytes received (short at EOF).
    func read(count: Int, into sink: ([UInt8]) throws -> Void) throws -> Int {
        var received = 0
        if !self.buffer.isEmpty {
            let take = min(count, self.buffer.count)
            try sink(Array(self.buffer[..<take]))
            self.buffer.removeFirst(take)
            received = take
        }
        while received < count {
            guard try self.fill(max: min(1 << 20, count - received)) else { break }
            try sink(self.buffer)
            received += self.buffer.count
            self.buffer = []
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
