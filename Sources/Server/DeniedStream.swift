// A connection protected mode refuses (Server.accept decides): it hears one DENIED line in the
// form its service speaks, then the connection closes. A kv peer is answered once its first
// byte shows its protocol; echo, time and file peers at once. Nothing it sends is interpreted.

import Reactor
import Services

/// One refused connection, held in the server's live set until it closes.
final class DeniedStream: StreamSession {
    /// When the refusal is said.
    enum Moment {
        /// As soon as the connection opens (echo, time, and file in place of its greeting).
        case atOpen
        /// Once the first byte arrives, in the protocol it selects (kv).
        case afterFirstByte
        /// As soon as the connection opens, in RESP (the resp port, as redis-server refuses).
        case atOpenRESP
    }

    private let moment: Moment
    private var firstByte: UInt8?

    init(moment: Moment) { self.moment = moment }

    func open(_ connection: Connection, handler: StreamHandler) {
        guard self.moment != .afterFirstByte else { return }
        connection.write(self.moment == .atOpenRESP ? ProtectedMode.respLine : ProtectedMode.errorLine)
        connection.close()
    }

    func receive(_ bytes: UnsafeRawBufferPointer) {
        if self.firstByte == nil { self.firstByte = bytes.first }
    }

    func process(_ connection: Connection, outputLimit: Int) -> ProcessResult {
        guard let first = self.firstByte else { return .needMoreData }
        connection.write(ProtectedMode.kvLine(firstByte: first))
        return .close
    }
}
