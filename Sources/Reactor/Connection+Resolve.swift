// Outbound connections by host name, with a timeout. getaddrinfo(3) blocks (it may ask a DNS
// server), so the lookup runs on a Dispatch queue and its answer comes back to the loop through
// an inbox made for it and removed once it has answered: the loop never waits on a lookup. One
// deadline covers the lookup and the connect; it is a loop timer holding the connection weakly.

import CLinux
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

extension Connection {
    /// Connects to `host` (a name looked up off the loop thread, a numeric IPv4/IPv6 address, or
    /// `localhost`) on `port`, giving up after `timeout`.
    ///
    /// `completion` runs once, on the loop thread, never inside this call: with the
    /// ``Connection`` once its connect has started (the delegate then hears
    /// ``ConnectionDelegate/connectionDidOpen(_:)``, or ``ConnectionDelegate/connectionDidClose(_:)``
    /// with ``closeError`` set, `ETIMEDOUT` if the deadline passed first), or with an error when
    /// no connect could start: the name did not resolve (``IOError/call`` `getaddrinfo`), the
    /// deadline passed during the lookup, or no address took a socket. The lookup's addresses are
    /// tried in its order until one's connect starts (a loopback refusal is immediate, so
    /// `localhost` reaches a server listening on `127.0.0.1` alone even where it resolves to `::1`
    /// first). Loop thread only.
    public static func connect(
        loop: EventLoop, host: String, port: Int, timeout: Duration = .seconds(10),
        delegate: ConnectionDelegate, completion: @escaping (Result<Connection, IOError>) -> Void = { _ in }
    ) {
        assert(loop.inLoopThread)
        let attempt = ConnectAttempt(completion: completion)
        let inbox = loop.makeInbox { (answer: Result<[SocketAddress], IOError>) in
            attempt.lookedUp(answer, loop: loop, delegate: delegate)
        }
        attempt.cancelLookup = { [unowned loop] in loop.removeInbox(inbox) }
        attempt.timer = loop.scheduleTimer(after: timeout) { attempt.deadlinePassed() }
        attempt.stopTimer = { [unowned loop] in if let timer = attempt.timer { loop.cancelTimer(timer) } }
        if host != "localhost", let numeric = try? SocketAddress(host: host, port: port) {
            inbox.post(.success([numeric]))
            return
        }
        DispatchQueue.global().async { inbox.post(Self.lookUp(host: host, port: port)) }
    }

    /// getaddrinfo(3) for stream sockets: every address, in the resolver's order. Blocks.
    static func lookUp(host: String, port: Int) -> Result<[SocketAddress], IOError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            // getaddrinfo's codes are its own (EAI_*); EAI_SYSTEM means errno says.
            let code = status == EAI_SYSTEM ? errno : EHOSTUNREACH
            let reason = String(cString: gai_strerror(status))
            return .failure(IOError(errno: code, call: "getaddrinfo \(host): \(reason)"))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            if let address = info.pointee.ai_addr, info.pointee.ai_addrlen <= MemoryLayout<sockaddr_storage>.size {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { raw in
                    raw.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(info.pointee.ai_addrlen)))
                }
                addresses.append(SocketAddress(storage: storage))
            }
            entry = info.pointee.ai_next
        }
        return .success(addresses)
    }
}

/// One ``Connection/connect(loop:host:port:timeout:delegate:completion:)`` in flight: loop thread only.
private final class ConnectAttempt {
    let completion: (Result<Connection, IOError>) -> Void
    var timer: TimerID?
    var cancelLookup: () -> Void = {}
    var stopTimer: () -> Void = {}
    /// Set once the connect started; the deadline then ends it if it is still connecting.
    weak var connection: Connection?
    var finished = false

    init(completion: @escaping (Result<Connection, IOError>) -> Void) { self.completion = completion }

    func lookedUp(_ answer: Result<[SocketAddress], IOError>, loop: EventLoop, delegate: ConnectionDelegate) {
        self.cancelLookup()
        guard !self.finished else { return }
        var lastError = IOError(errno: EADDRNOTAVAIL, call: "getaddrinfo: no address")
        switch answer {
        case .failure(let error):
            lastError = error
        case .success(let addresses):
            for address in addresses {
                do {
                    let connection = try Connection.connect(loop: loop, to: address, delegate: delegate)
                    self.connection = connection
                    self.finish(.success(connection), keepTimer: true)
                    return
                } catch {
                    lastError = error
                }
            }
        }
        self.finish(.failure(lastError), keepTimer: false)
    }

    func deadlinePassed() {
        self.timer = nil
        let timedOut = IOError(errno: ETIMEDOUT, call: "connect")
        if self.finished {
            self.connection?.failIfConnecting(timedOut)
        } else {
            self.cancelLookup()  // a late answer finds the inbox gone
            self.finish(.failure(timedOut), keepTimer: false)
        }
    }

    private func finish(_ result: Result<Connection, IOError>, keepTimer: Bool) {
        self.finished = true
        if !keepTimer { self.stopTimer() }
        self.completion(result)
    }
}
