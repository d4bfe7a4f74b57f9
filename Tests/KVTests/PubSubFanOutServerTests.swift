// A fan-out big enough to be paced (Sources/Reactor/FanOutPacing.swift: rounds of 256 or more
// subscriber connections) on a running reactord: every subscriber receives every message, in
// order, while the publisher publishes back to back, and a subscriber that never reads is still
// closed at the pubsub output limit (its frames accumulate in held rounds as in sent ones).

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct PubSubFanOutServerTests {
    @Test func aPacedFanOutLosesAndReordersNothingAndStillClosesANonReader() throws {
        try withKVServer(fsync: "no") { server, _ in
            let publisher = try RawRESPConnection(port: server.kvPort)
            #expect(try publisher.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 0 0") == Array("+OK\r\n".utf8))
            let subscriberCount = 300
            var subscribers: [RawRESPConnection] = []
            for _ in 0..<subscriberCount {
                let subscriber = try RawRESPConnection(port: server.kvPort)
                #expect(try subscriber.call("SUBSCRIBE", "feed").count > 0)
                subscribers.append(subscriber)
            }
            // Subscribed to the busy channel too, so it is part of every big round, and to one
            // where large messages fill its output.
            let slow = try RawRESPConnection(port: server.kvPort)
            _ = try slow.call("SUBSCRIBE", "feed")
            _ = try slow.call("SUBSCRIBE", "big")
            let big = [UInt8](repeating: UInt8(ascii: "b"), count: 64 * 1024)  // 300 of them: far more than the limit plus the kernel's socket buffers
            var expected: [UInt8] = []
            let messages = 300
            for i in 0..<messages {
                let message = Array("m\(i)".utf8)
                let reply = try publisher.call([Array("PUBLISH".utf8), Array("feed".utf8), message])
                #expect(reply == Array(":\(subscriberCount + 1)\r\n".utf8) || reply == Array(":\(subscriberCount)\r\n".utf8))
                expected += Array("*3\r\n$7\r\nmessage\r\n$4\r\nfeed\r\n$\(message.count)\r\n".utf8) + message + Array("\r\n".utf8)
                _ = try publisher.call([Array("PUBLISH".utf8), Array("big".utf8), big])
            }
            for (n, subscriber) in subscribers.enumerated() {
                let received = subscriber.client.read(count: expected.count, deadline: .now + .seconds(20))
                guard received == expected else {
                    Issue.record("subscriber \(n) received \(received.count) of \(expected.count) bytes, or out of order")
                    return
                }
            }
            let info = String(decoding: try publisher.call("INFO", "stats"), as: UTF8.self)
            #expect(info.contains("client_output_buffer_limit_disconnections:1\r\n"), "\(info)")
            let (_, eof) = slow.client.readToEOF(deadline: .now + .seconds(20))
            #expect(eof)
            #expect(try publisher.call("PUBSUB", "NUMSUB", "feed") == Array("*2\r\n$4\r\nfeed\r\n:\(subscriberCount)\r\n".utf8))
        }
    }
}
