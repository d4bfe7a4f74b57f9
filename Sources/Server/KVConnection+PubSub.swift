// A kv connection as a pub/sub subscriber: frames other clients publish are queued after its
// replies and written when the loop's dispatch ends (Connection.flushSoon), so a PUBLISH never
// waits for any reader. A subscriber whose unsent output passes the pubsub class of
// `client-output-buffer-limit` (at once past the hard limit, or past the soft limit for longer
// than its seconds) is closed with its output dropped, as Redis closes it, and counted; the
// publisher and every other subscriber carry on.

import Reactor
import Services

extension KVConnection {
    func deliver(_ frame: [UInt8]) {
        guard let connection = self.connection, connection.state == .open else { return }
        connection.write(frame)
        let registry = self.state.pubsub
        let limit = registry.outputLimits.pubsub
        if limit.exceeded(
            bytes: connection.pendingOutputBytes, now: SystemClock.monotonicNanoseconds(),
            softSince: &self.pubSubSoftLimitSince)
        {
            registry.outputLimitDisconnections += 1
            // The registry's loop holds its own reference to this subscriber: closing here, in
            // the middle of a publication, drops the subscription without disturbing it.
            connection.abort()
            return
        }
        connection.flushSoon()
    }
}
