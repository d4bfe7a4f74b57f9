// An embedding example: a client. `line-client HOST PORT LINE…` connects to HOST (a name is
// looked up off the loop thread) within 5 s, sends every LINE, prints each line that comes back
// and exits once as many have come back as it sent: status 0, or 1 if it could not connect.

import Glibc
import LineFraming
import Reactor

final class LineClient: ConnectionDelegate {
    let lines: [String]
    var framer = LineFramer(maxLineBytes: 64 * 1024), answered = 0, failed = false
    init(lines: [String]) { self.lines = lines }

    func connectionDidOpen(_ connection: Connection) {
        for line in self.lines { connection.write((line + "\n").utf8) }
    }
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        _ = self.framer.scan(bytes) { line in
            print(String(decoding: line.content, as: UTF8.self))
            self.answered += 1
            return true
        }
        if self.answered >= self.lines.count { connection.close() }
    }
    func connectionDidClose(_ connection: Connection) {
        if let error = connection.closeError { print("line-client: \(error)"); self.failed = true }
        connection.loop.stop()
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 2, let port = Int(arguments[1]) else { print("usage: line-client HOST PORT LINE…"); exit(2) }
let loop = try EventLoop()
let client = LineClient(lines: Array(arguments.dropFirst(2)))
Connection.connect(loop: loop, host: arguments[0], port: port, timeout: .seconds(5), delegate: client) { result in
    if case .failure(let error) = result { print("line-client: \(error)"); client.failed = true; loop.stop() }
}
try loop.run()
exit(client.failed ? 1 : 0)
