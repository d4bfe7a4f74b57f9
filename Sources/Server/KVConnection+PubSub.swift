// A kv connection as a pub/sub subscriber: frames other clients publish are queued after its
// replies and written when the loop's dispatch ends, so a PUBLISH never waits for any reader. A
// subscriber whose unsent output passes the pubsub class of `client-output-buffer-limit` (at once
// past the hard limit, or past the soft limit for longer than its seconds) is closed with its
// output dropped, as Redis closes it, and counted; the publisher and every other subscriber carry
// on. The soft limit is checked at each delivery and, while the subscriber stays over it, by a
// timer: a subscriber that stops reading on a channel that fell silent is closed all the same
// (Redis's clientsCron checks every client's limits).

import Reactor
import Services

extension KVConnection {
    /// PubSubOutput's deliver (KVConnection overrides it with this: an override cannot live in
    /// an extension).
    @inline(__always)
    func deliverFrame(_ frame: UnsafeRawBufferPointer, limit: OutputBufferLimit) -> Bool {
        // Borrowed, not bound: the connection lives until connectionDidClose clears this.
        guard let unmanaged = self.unmanagedConnection else { return true }
        return unmanaged._withUnsafeGuaranteedRef { connection in
            guard let pending = connection.queueCopy(of: frame) else { return true }
            // Under both limits with no soft-limit clock running: the whole check for nearly every frame.
            if self.pubSubSoftLimitSince == 0 && (limit.soft == 0 || pending < limit.soft)
                && (limit.hard == 0 || pending < limit.hard)
            {
                return true
            }
            return self.checkPubSubLimit(connection, pending: pending, limit: limit)
        }
    }

    /// Closes the connection if `pending` bytes pass `limit` now, or starts the soft limit's timer
    /// when they first pass the soft limit. - Returns: whether it is still open (the caller counts
    /// a close in INFO).
    private func checkPubSubLimit(_ connection: Connection, pending: Int, limit: OutputBufferLimit) -> Bool {
        let now = SystemClock.monotonicNanoseconds()
        if limit.exceeded(bytes: pending, now: now, softSince: &self.pubSubSoftLimitSince) {
            self.cancelSoftLimitTimer()
            // A fan-out under way holds its own list of subscribers: closing here, in the middle of
            // a publication, drops the subscription (marking it detached) without disturbing it.
            connection.abort()
            return false
        }
        if self.pubSubSoftLimitSince != 0 && self.softLimitTimer == nil {
            let since = self.pubSubSoftLimitSince
            let due = since &+ UInt64(limit.softSeconds) * 1_000_000_000
            // Just past the deadline (the test is "longer than"), so one firing settles it.
            let delay = (due > now ? due - now : 0) + 1_000_000
            self.softLimitTimer = connection.loop.scheduleTimer(after: .nanoseconds(Int64(delay))) {
                [unowned(unsafe) self] in
                self.softLimitTimer = nil
                self.softLimitTimerFired()
            }
        }
        return true
    }

    /// The soft limit's seconds may have passed with nothing published since: close the
    /// subscriber if it is still over the soft limit, else stop (or re-arm) the clock.
    private func softLimitTimerFired() {
        guard let connection = self.connection, connection.state == .open else { return }
        let registry = self.state.pubsub
        if !self.checkPubSubLimit(connection, pending: connection.pendingOutputBytes, limit: registry.outputLimits.pubsub) {
            registry.outputLimitDisconnections += 1
        }
    }

    /// Stops the soft limit's timer (the connection closes, or it was closed for its limit).
    func cancelSoftLimitTimer() {
        guard let timer = self.softLimitTimer, let connection = self.connection else { return }
        self.softLimitTimer = nil
        connection.loop.cancelTimer(timer)
    }
}
