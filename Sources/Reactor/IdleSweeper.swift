// Idle timeouts for any number of connections with one periodic timer: each sweep walks the
// registered connections and times out those whose last activity is too old (redis's
// clientsCron does the same). O(connections) per sweep, about a microsecond per thousand
// connections, instead of one Dispatch source per connection. The sweep also frees the output
// buffers of connections that went quiet, so idle connections cost no heap beyond themselves.

extension EventLoop {
    /// Starts closing connections idle longer than `timeout` (checked every `timeout/4`, at
    /// most every second), discarding what they had queued; their delegates hear
    /// ``ConnectionDelegate/connectionDidClose(_:)``. Loop thread only.
    /// - Returns: the sweep's timer, for ``cancelTimer(_:)``.
    @discardableResult
    public func startIdleSweep(timeout: Duration) -> TimerID {
        let timeoutNs = UInt64(max(timeout.nanoseconds, 1))
        let period = min(max(timeout / 4, .milliseconds(10)), .seconds(1))
        let periodNs = UInt64(period.nanoseconds)
        return self.scheduleTimer(after: period, repeating: period, leeway: period / 10) { [unowned self] in
            let now = Sys.monotonicNanoseconds()
            var expired: [Connection] = []
            self.forEachHandler { handler in
                guard let connection = handler as? Connection else { return }
                let idle = now &- connection.lastActivity
                if connection.idleTimeoutEnabled && now > connection.lastActivity && idle >= timeoutNs {
                    expired.append(connection)
                } else if idle >= periodNs {
                    connection.releaseIdleBuffers()
                }
            }
            // Closed outside the walk: a delegate hearing of the close may close other connections.
            for connection in expired where connection.state != .closed {
                connection.abort()
            }
        }
    }
}
