// FUNCTION LOAD, DELETE and FLUSH survive a restart: after a kill (the log replayed), after a graceful
// stop (compacted into database.txt), and after both, with FCALL answering from the restored library.

import Foundation
import Testing

@Suite(.serialized) struct FunctionDurabilityTests {
    /// reactord on `directory`, ready, with its kv port.
    static func start(_ directory: String) throws -> (ReactordProcess, RawRESPConnection) {
        let process = try ReactordProcess(arguments: [
            "--kv-port", "0", "--echo-port", "off", "--time-port", "off", "--file-port", "off", "--data-dir", directory,
        ])
        return (process, try RawRESPConnection(port: try process.readyKVPort()))
    }

    static func reply(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func functionsSurviveRestarts() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var (process, connection) = try Self.start(directory.path)
        defer { process.kill() }
        let one = "#!lua name=one\nredis.register_function('f1', function(keys, args) return 'one:' .. args[1] end)"
        let two = "#!lua name=two\nredis.register_function{function_name='f2', callback=function() return 2 end, flags={'no-writes'}}"
        #expect(try connection.call("FUNCTION", "LOAD", one) == Self.reply("$3\r\none\r\n"))
        #expect(try connection.call("FUNCTION", "LOAD", two) == Self.reply("$3\r\ntwo\r\n"))
        #expect(try connection.call("FUNCTION", "LOAD", "REPLACE", one.replacingOccurrences(of: "'one:'", with: "'uno:'"))
            == Self.reply("$3\r\none\r\n"))
        #expect(try connection.call("FUNCTION", "DELETE", "two") == Self.reply("+OK\r\n"))
        let listing = try connection.call("FUNCTION", "LIST", "WITHCODE")

        // Killed: the log is replayed.
        process.kill()
        (process, connection) = try Self.start(directory.path)
        #expect(try connection.call("FCALL", "f1", "0", "x") == Self.reply("$5\r\nuno:x\r\n"))
        #expect(try connection.call("FCALL", "f2", "0") == Self.reply("-ERR Function not found\r\n"))
        #expect(try connection.call("FUNCTION", "LIST", "WITHCODE") == listing)

        // Stopped gracefully: compacted into database.txt, read back.
        try connection.client.send(RESPValue.command([Array("SHUTDOWN".utf8)]))
        #expect(process.waitForExit(within: 20) == 0)
        let snapshot = try String(contentsOfFile: directory.path + "/database.txt", encoding: .utf8)
        #expect(snapshot.contains("#!function\tone\n"), "\(snapshot)")
        (process, connection) = try Self.start(directory.path)
        #expect(try connection.call("FUNCTION", "LIST", "WITHCODE") == listing)
        #expect(try connection.call("FCALL", "f1", "0", "y") == Self.reply("$5\r\nuno:y\r\n"))

        // FLUSH, killed: nothing comes back.
        #expect(try connection.call("FUNCTION", "LOAD", two) == Self.reply("$3\r\ntwo\r\n"))
        #expect(try connection.call("FUNCTION", "FLUSH") == Self.reply("+OK\r\n"))
        process.kill()
        (process, connection) = try Self.start(directory.path)
        #expect(try connection.call("FUNCTION", "LIST") == Self.reply("*0\r\n"))
    }
}
