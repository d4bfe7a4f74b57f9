// In-process servers whose loop a test can look into, and the time service's line format: shared
// by the time service and reactor-cli tests.

import Dispatch
import Foundation
import Logging
import Reactor
import Server
#if canImport(Glibc)
import Glibc
#endif

/// Like ``InProcessServer``, but also keeps the loop's thread-safe handle so a test can run a
/// closure on the loop thread (the only safe way to read loop state such as its timer count).
package final class LoopObservedServer {
    package let endpoints: [ListeningEndpoint]
    package let loopHandle: LoopHandle
    private let stopHandle: StopHandle
    private let finished = DispatchSemaphore(value: 0)
    private var stopped = false

    /// Starts a server with every service off, then `configure` turns on what the test needs.
    package init(_ configure: (inout ServerConfiguration) -> Void) throws {
        var configuration = ServerConfiguration()
        configuration.kvPort = .off
        configuration.echoPort = .off
        configuration.timePort = .off
        configuration.filePort = .off
        configure(&configuration)
        let config = configuration
        let started = DispatchSemaphore(value: 0)
        let outcome = Shared<Result<([ListeningEndpoint], StopHandle, LoopHandle), any Error>?>(nil)
        let finished = self.finished
        // Created on the thread that runs it: only Sendable handles cross back to the test.
        let thread = Thread {
            do {
                let server = try Server(configuration: config, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
                let endpoints = try server.start()
                outcome.with { $0 = .success((endpoints, server.stopHandle, server.loop.handle)) }
                started.signal()
                try server.run()
            } catch {
                outcome.with { $0 = $0 ?? .failure(error) }
                started.signal()
            }
            finished.signal()
        }
        thread.start()
        guard started.wait(timeout: .now() + 10) == .success, let result = outcome.current else {
            throw TestFailure("server did not start within 10 s")
        }
        (self.endpoints, self.stopHandle, self.loopHandle) = try result.get()
    }

    /// The port a service is bound to.
    package func port(_ service: String, _ transport: String = "tcp") throws -> Int {
        let endpoint = self.endpoints.first { $0.service == service && $0.transport == transport }
        guard let endpoint else { throw TestFailure("no \(service) \(transport) endpoint") }
        return endpoint.address.port
    }

    /// Runs `body` on the loop thread and returns its result, or nil if the loop did not get to
    /// it within `seconds`.
    package func onLoop<R: Sendable>(within seconds: Double = 10, _ body: @escaping @Sendable (EventLoop) -> R) -> R? {
        let result = Shared<R?>(nil)
        let done = DispatchSemaphore(value: 0)
        self.loopHandle.execute { loop in
            let value = body(loop)
            result.with { $0 = value }
            done.signal()
        }
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        return result.current
    }

    /// Asks the loop for a count (`read` runs on the loop thread: its timer count, say) until
    /// `condition` holds or the deadline passes; each ask is a round trip through the loop, so this
    /// waits on the server, not on a guess of how long.
    /// - Returns: the last count seen.
    package func count(_ read: @escaping @Sendable (EventLoop) -> Int, until condition: (Int) -> Bool,
                       deadline: ContinuousClock.Instant) -> Int? {
        var last: Int?
        while true {
            last = self.onLoop(read)
            if let last, condition(last) { return last }
            if ContinuousClock.now >= deadline { return last }
            // Give the loop room to take the closes it is being sent, between round trips.
            var p = pollfd(fd: -1, events: 0, revents: 0)
            _ = poll(&p, 0, 5)
        }
    }

    @discardableResult
    package func stop(within seconds: Double = 10) -> Bool {
        guard !self.stopped else { return true }
        self.stopped = true
        self.stopHandle.stop()
        return self.finished.wait(timeout: .now() + seconds) == .success
    }

    deinit { self.stop() }
}

/// Parses `YYYY-MM-DDTHH:MM:SS.ffffffZ` (exactly six fractional digits) into seconds since the
/// epoch, with microseconds; nil if the text is not exactly that shape.
package func parseTimeLine(_ text: String) -> Double? {
    guard let m = text.wholeMatch(of: /(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})Z/) else { return nil }
    var t = tm()
    t.tm_year = Int32(m.1)! - 1900
    t.tm_mon = Int32(m.2)! - 1
    t.tm_mday = Int32(m.3)!
    t.tm_hour = Int32(m.4)!
    t.tm_min = Int32(m.5)!
    t.tm_sec = Int32(m.6)!
    guard (1...12).contains(Int(m.2)!), (0...23).contains(t.tm_hour), (0...59).contains(t.tm_min), (0...60).contains(t.tm_sec) else {
        return nil
    }
    return Double(timegm(&t)) + Double(Int(m.7)!) / 1_000_000
}

/// The test's own wall clock, in seconds since the epoch.
package func wallClockNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

extension TestClient {
    /// The next line without its terminator, or nil at EOF or the deadline. Bytes read past the
    /// line are kept in `pending`.
    package func nextLine(_ pending: inout [UInt8], deadline: ContinuousClock.Instant = .now + .seconds(10)) -> String? {
        while true {
            if let i = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<i], as: UTF8.self)
                pending.removeFirst(i + 1)
                return line
            }
            guard let chunk = self.readSome() else {
                guard pollFor(self.fd, events: Int16(POLLIN), until: deadline) else { return nil }
                continue
            }
            if chunk.isEmpty { return nil }
            pending += chunk
        }
    }
}
