// An embedding example: a line echo server on every core. One loop per core (or as many as the
// second argument says), each on its own thread with its own listener on the same port
// (SO_REUSEPORT), so the kernel spreads connections over them. Each line comes back prefixed
// with the number of the loop that served it. Port from the first argument (0: the kernel's);
// SIGINT or SIGTERM stops every loop gracefully.

import Glibc
import LineFraming
import Reactor

final class NumberedEcho: ConnectionDelegate {
    let prefix: [UInt8]
    var framer = LineFramer(maxLineBytes: 4096)
    init(loop index: Int) { self.prefix = Array("loop \(index): ".utf8) }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        let result = self.framer.scan(bytes) { line in
            connection.write(self.prefix)
            connection.write(line.raw)
            return true
        }
        if result == .tooLong { connection.close() }
    }
}

/// The port every loop binds: loop 0's set-up (the first to run) stores the kernel's choice.
final class SharedPort: @unchecked Sendable { var number = Int(CommandLine.arguments.dropFirst().first ?? "0") ?? 0 }

let port = SharedPort()
let group = EventLoopGroup(loopCount: CommandLine.arguments.dropFirst(2).first.flatMap { Int($0) } ?? EventLoopGroup.coreCount)
let signals = group.stopGracefullyOnSignals()
try group.run { loop, index in
    let address = try SocketAddress(host: "127.0.0.1", port: port.number)
    let listener = try Listener(loop: loop, address: address, reusePort: true) { _ in NumberedEcho(loop: index) }
    port.number = listener.localAddress.port
    guard index == group.loopCount - 1 else { return }
    print("multi-loop-echo: \(group.loopCount) loops listening on \(listener.localAddress)")
    fflush(nil)
}
signals.cancel()
