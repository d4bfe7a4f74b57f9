// An embedding example: a tool running its own protocol on the Reactor library. It upper-cases
// every line it receives, on 127.0.0.1 (port from the first argument, 0 by default), and prints
// the port it bound. The whole program is the few dozen lines below.

import Reactor

/// Per connection: keeps the unfinished line, answers every finished one.
final class UpperCaser: ConnectionDelegate {
    private var partial: [UInt8] = []
    private let onClose: (Connection) -> Void

    init(onClose: @escaping (Connection) -> Void) { self.onClose = onClose }

    func connectionDidClose(_ connection: Connection) { self.onClose(connection) }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                connection.write(self.partial.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 } + [byte])
                self.partial.removeAll(keepingCapacity: true)
            } else if self.partial.count < 4096 {
                self.partial.append(byte)
            }
        }
        // The connection flushes what was written once this call returns.
    }
}

/// Accepts clients and gives each its own UpperCaser.
final class UpperServer: ListenerDelegate {
    var connections: [ObjectIdentifier: Connection] = [:]

    func listener(_ listener: Listener, didAccept descriptor: Descriptor, from peer: SocketAddress) {
        guard let connection = try? Connection(loop: listener.loop, descriptor: descriptor, peer: peer,
                                               delegate: UpperCaser { [unowned self] in
            self.connections.removeValue(forKey: ObjectIdentifier($0))
        }) else { return }
        self.connections[ObjectIdentifier(connection)] = connection
    }
}

@main
struct LineUpper {
    static func main() throws {
        Sys.ignoreSIGPIPE()
        let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 0
        let loop = try EventLoop()
        let server = UpperServer()
        let listener = try Listener(loop: loop, address: SocketAddress(host: "127.0.0.1", port: port), delegate: server)
        loop.startIdleSweep(timeout: .seconds(60))
        print("line-upper: listening on \(listener.localAddress)")
        try loop.run()
    }
}
