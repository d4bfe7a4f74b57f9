// Where and when invalidations and self-addressed pushes arrive, against Redis byte for byte (as
// TrackingTests.swift, on three connections in RESP2 and RESP3, client ids written as `{idN}`):
// BCAST messages once per loop iteration (a pipeline of writes gets one message, after all its
// replies), a RESP2 redirect target hearing while it is subscribed to anything, a redirect
// target's own write getting the invalidation ahead of its reply, and pushes under CLIENT REPLY
// OFF / SKIP. A step may send several commands in one write (a pipeline), so that both servers
// read them in one batch. No reply is a small integer: it could read as a client id.

import Foundation
import Server
import Testing

@Suite(.serialized) struct TrackingDeliveryTests {
    /// `lines` sent on connection `connection` in one write, then `frames` frames read there
    /// (`frames3` in RESP3 when it differs).
    struct Step {
        var connection: Int
        var lines: [String]
        var frames: Int
        var frames3: Int?
    }

    static func send(_ c: Int, _ line: String, _ frames: Int = 1, resp3: Int? = nil) -> Step {
        Step(connection: c, lines: [line], frames: frames, frames3: resp3)
    }

    static func pipeline(_ c: Int, _ lines: [String], _ frames: Int, resp3: Int? = nil) -> Step {
        Step(connection: c, lines: lines, frames: frames, frames3: resp3)
    }

    static func read(_ c: Int, _ frames: Int = 0, resp3: Int? = nil) -> Step {
        Step(connection: c, lines: [], frames: frames, frames3: resp3)
    }

    static let scripts: [(String, [Step])] = [
        ("bcast once per iteration", [
            // Over RESP2 the messages go to connection 2, subscribed to the invalidation channel.
            send(2, "SUBSCRIBE __redis__:invalidate"), send(0, "CLIENT TRACKING ON BCAST PREFIX p: REDIRECT {id2}"),
            pipeline(1, ["SET p:a a", "SET p:b b", "DEL p:a", "SET q:a c", "GET p:b"], 5), read(2, 1),
            pipeline(0, ["SET p:c x", "GET p:c", "SET p:d 1", "MSET p:e 1 p:c y"], 4), read(2, 1),
            send(0, "CLIENT TRACKING OFF"),
            // Tracking itself over RESP3: its own pipeline's message follows all its replies.
            send(0, "CLIENT TRACKING ON BCAST PREFIX p:"),
            pipeline(0, ["SET p:f x", "GET p:f", "GETDEL p:f", "GETDEL p:e"], 4, resp3: 5),
            pipeline(1, ["SET p:g a", "SET p:g b XX", "GETSET p:g c"], 3), read(0, 0, resp3: 1),
            send(0, "CLIENT TRACKING OFF"),
        ]),
        ("redirect to a client subscribed to something else", [
            send(2, "SUBSCRIBE other"), send(0, "CLIENT TRACKING ON REDIRECT {id2}"), send(0, "GET k"),
            send(1, "SET k v"), read(2, 1), send(2, "PSUBSCRIBE x*"), send(2, "UNSUBSCRIBE other"), send(0, "GET k"),
            send(1, "SET k w"), read(2, 1), send(2, "PUNSUBSCRIBE"), send(0, "GET k"), send(1, "SET k z"),
            read(2, 0, resp3: 1), send(0, "CLIENT TRACKING OFF"), send(2, "PING"),
        ]),
        ("a redirect target's own writes", [
            send(0, "CLIENT TRACKING ON REDIRECT {id2}"), send(0, "MGET a b"), send(2, "SET a 1", 1, resp3: 2),
            send(2, "MSET a 2 b 2", 1, resp3: 2), send(0, "MGET a b"), send(2, "MSET a 3 b 3", 1, resp3: 3),
            send(0, "GET c"), pipeline(2, ["SET c 1", "GET c"], 2, resp3: 3), send(0, "GET c"),
            send(2, "FLUSHALL", 1, resp3: 2), send(0, "CLIENT TRACKING OFF"), send(2, "PING"),
        ]),
        ("pushes under client reply off", [
            send(1, "CONFIG SET notify-keyspace-events KA"), send(0, "CLIENT REPLY OFF", 0),
            send(0, "SUBSCRIBE me __keyspace@0__:n", 2), send(0, "PUBLISH me x", 0, resp3: 1),
            send(0, "SET n 1", 0, resp3: 1), send(1, "PUBLISH me y"), read(0, 1), send(0, "UNSUBSCRIBE me __keyspace@0__:n", 2),
            send(0, "CLIENT TRACKING ON", 0), send(0, "GET n", 0), send(0, "SET n 2", 0, resp3: 1),
            send(0, "CLIENT REPLY ON"), send(0, "GET n"), send(0, "CLIENT REPLY SKIP", 0),
            send(0, "SET n 3", 0, resp3: 1), send(0, "GET n"), send(0, "CLIENT TRACKING OFF"),
            send(1, "CONFIG SET notify-keyspace-events ''"),
        ]),
    ]

    /// Runs `script` on three fresh connections; `{idN}` in a line is connection N's client id, and
    /// in each frame that id's digits are written back as `{idN}`.
    static func transcript(_ script: [Step], port: Int, protocolVersion: Int) throws -> [String] {
        let connections = try (0..<3).map { _ in try RawRESPConnection(port: port) }
        defer { for connection in connections { connection.client.close() } }
        var ids: [String] = []
        for connection in connections {
            let reply = String(decoding: try connection.call("CLIENT", "ID"), as: UTF8.self)
            ids.append(String(reply.dropFirst().prefix(while: { $0.isNumber })))
            if protocolVersion == 3 { _ = try connection.call("HELLO", "3") }
        }
        _ = try connections[1].call("FLUSHALL")
        var frames: [String] = []
        for step in script {
            let connection = connections[step.connection]
            if !step.lines.isEmpty {
                let lines = step.lines.map { line in
                    ids.enumerated().reduce(line) { $0.replacingOccurrences(of: "{id\($1.offset)}", with: $1.element) }
                }
                try connection.client.send(RedisDifferentialTests.words(lines).flatMap { RESPValue.command($0) })
            }
            let count = protocolVersion == 3 ? step.frames3 ?? step.frames : step.frames
            let label = "\(step.connection) \(step.lines.isEmpty ? "(read)" : step.lines.joined(separator: "; "))"
            for _ in 0..<count {
                let bytes: [UInt8]
                do { bytes = try connection.reply(deadline: .now + .seconds(2)) } catch {
                    throw TestFailure("port \(port) RESP\(protocolVersion) \(label) after \(frames.suffix(3)): \(error)")
                }
                var frame = String(decoding: bytes, as: UTF8.self)
                for (n, id) in ids.enumerated() { frame = frame.replacingOccurrences(of: ":\(id)\r\n", with: ":{id\(n)}\r\n") }
                frames.append("\(label): \(frame.debugDescription)")
            }
        }
        // Nothing more may be waiting: a PING's reply is the next frame on every connection.
        for (n, connection) in connections.enumerated() {
            let next = String(decoding: try connection.call("PING"), as: UTF8.self)
            frames.append("\(n) PING: \(next.debugDescription)")
        }
        return frames
    }

    @Test func invalidationsAndPushesArriveAsRedisSendsThem() throws {
        let pair = try RedisDifferentialTests.Pair()
        defer { pair.stop() }
        let (differences, frameCount) = try pair.compareTranscripts(Self.scripts, Self.transcript)
        #expect(differences.isEmpty, "\(differences.count) differences:\n\(differences.joined(separator: "\n"))")
        #expect(frameCount > 100)
        print("differential (tracking delivery): \(Self.scripts.count * 2) scripts, \(frameCount) frames")
    }
}
