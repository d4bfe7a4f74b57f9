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
        // Appended in this module, where the copy is a specialised memcpy (Connection.write is
        // generic over any Sequence and, called from another module, walks it byte by byte).
        connection.withOutputBuffer { $0.append(contentsOf: frame) }
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
