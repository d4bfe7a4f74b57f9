// A kv connection as a pub/sub subscriber: frames other clients publish are queued after its
// replies and written when the loop's dispatch ends (Connection.flushSoon), so a PUBLISH never
// waits for any reader.

import Reactor
import Services

extension KVConnection {
    func deliver(_ frame: [UInt8]) {
        guard let connection = self.connection, connection.state == .open else { return }
        connection.write(frame)
        connection.flushSoon()
    }
}
