// systemd's readiness protocol (sd_notify(3)) without libsystemd: when the service manager sets
// NOTIFY_SOCKET, state lines such as `READY=1` go to it as single datagrams over an AF_UNIX
// SOCK_DGRAM socket. The socket is non-blocking, so a manager that does not read never stalls
// the loop (a dropped ping is logged at debug). No other side effects: it never reads the
// environment itself (the executable hands it in) and never touches the filesystem.

import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Sends `READY=1`, `STOPPING=1` and `WATCHDOG=1` to the socket systemd named in `NOTIFY_SOCKET`.
/// Created before the loop runs; used on the loop thread only.
public final class SystemdNotifier {
    /// Half of `WATCHDOG_USEC` (as sd_watchdog_enabled(3) advises), when the watchdog is on and
    /// meant for this process; nil otherwise.
    public let watchdogInterval: Duration?
    /// The socket address as given (`/run/systemd/notify`, `@name` for the abstract namespace).
    public let socketName: String
    private let descriptor: CInt
    private var address = sockaddr_un()
    private let addressLength: socklen_t
    private let logger: Logger

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from `environment`.
    /// - Parameters:
    ///   - environment: the process environment.
    ///   - processID: this process, to honour `WATCHDOG_PID` (a watchdog meant for another
    ///     process of the unit is not ours to feed).
    /// - Returns: nil when `NOTIFY_SOCKET` is unset or empty (not started by systemd).
    /// - Throws: ``ServerError`` when the address is unusable (neither an absolute path nor
    ///   `@name`, or too long) or the socket cannot be created.
    public init?(environment: [String: String], processID: Int32 = getpid(), logger: Logger) throws(ServerError) {
        guard let name = environment["NOTIFY_SOCKET"], !name.isEmpty else { return nil }
        self.socketName = name
        self.logger = logger
        var path = Array(name.utf8)
        guard path.first == UInt8(ascii: "/") || path.first == UInt8(ascii: "@") else {
            throw ServerError("NOTIFY_SOCKET=\(name): only an absolute path or @abstract name is supported")
        }
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }  // the abstract namespace: a leading NUL, no terminator
        let capacity = MemoryLayout.size(ofValue: self.address.sun_path)
        guard path.count < capacity else { throw ServerError("NOTIFY_SOCKET=\(name): longer than \(capacity - 1) bytes") }
        self.address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &self.address.sun_path) { $0.copyBytes(from: path) }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!  // a stored property: never nil
        self.addressLength = socklen_t(pathOffset + path.count + (abstract ? 0 : 1))

        if let usec = environment["WATCHDOG_USEC"].flatMap({ Int64($0) }), usec > 0,
           environment["WATCHDOG_PID"].flatMap({ Int32($0) }).map({ $0 == processID }) ?? true {
            self.watchdogInterval = .microseconds(usec / 2)
        } else {
            self.watchdogInterval = nil
        }

        do {
            self.descriptor = try Sys.unixDatagramSocket()
        } catch {
            throw ServerError("NOTIFY_SOCKET: \(error)")
        }
    }

    deinit { Sys.close(self.descriptor) }

    /// Sends one state (`READY=1`) as one datagram.
    /// - Returns: whether it was sent; a failure is logged at debug and otherwise ignored, as
    ///   sd_notify's callers do (the manager's own timeouts notice a silent service).
    @discardableResult
    public func notify(_ state: String) -> Bool {
        let message = Array(state.utf8)
        let err = self.sendDatagram(message)
        if err != 0 {
            self.logger.debug("sd_notify failed", metadata: [
                "state": "\(state)", "socket": "\(self.socketName)", "errno": "\(err)",
            ])
        }
        return err == 0
    }

    /// sendto(2) of one datagram. Retries EINTR. - Returns: 0, or the errno of the failure.
    private func sendDatagram(_ message: [UInt8]) -> CInt {
        Sys.send(message, on: self.descriptor, to: self.address, length: self.addressLength)
    }
}

extension Server {
    /// Tells systemd the server is ready (call once every listener is bound and the database is
    /// recovered, right after `reactord: ready` is printed), and starts the watchdog pings. The
    /// pings come from a timer run by the event loop itself, so a loop that stops turning stops
    /// feeding the watchdog and systemd restarts the service. Loop thread only.
    public func announceReady(to notifier: SystemdNotifier) {
        self.notifier = notifier
        notifier.notify("READY=1")
        if let interval = notifier.watchdogInterval {
            self.loop.scheduleTimer(after: interval, repeating: interval, leeway: interval / 10) {
                notifier.notify("WATCHDOG=1")
            }
        }
    }
}
