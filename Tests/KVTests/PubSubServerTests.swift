// Pub/sub on a running reactord, for what the differential test cannot compare: a subscriber that
// never reads is closed at its output limit while the publisher and a subscriber that keeps up
// carry on, and redis-py's PubSub works against it.

import Foundation
import Reactor
import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct PubSubServerTests {
    /// A subscriber that stops reading: its output grows until the pubsub hard limit, then it is
    /// closed and counted; the publisher's replies never wait for it, and a second subscriber
    /// receives every message in order.
    @Test func slowSubscriberIsClosedAtTheHardLimit() throws {
        try withKVServer(fsync: "no") { server, _ in
            let publisher = try RawRESPConnection(port: server.kvPort)
            #expect(try publisher.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 0 0") == Array("+OK\r\n".utf8))
            let slow = try RawRESPConnection(port: server.kvPort)
            let fast = try RawRESPConnection(port: server.kvPort)
            #expect(try slow.call("SUBSCRIBE", "feed").count > 0)
            #expect(try fast.call("SUBSCRIBE", "feed").count > 0)
            let payload = [UInt8](repeating: UInt8(ascii: "m"), count: 16 * 1024)
            var receivers: [Int] = []
            // Far more than the limit plus what the kernel's socket buffers can absorb.
            let count = 3000
            for i in 0..<count {
                let message = Array("\(i):".utf8) + payload
                let reply = try publisher.call([Array("PUBLISH".utf8), Array("feed".utf8), message])
                receivers.append(Int(String(decoding: reply.dropFirst().dropLast(2), as: UTF8.self)) ?? -1)
                let frame = try fast.reply()
                let expected = Array("*3\r\n$7\r\nmessage\r\n$4\r\nfeed\r\n$\(message.count)\r\n".utf8) + message + Array("\r\n".utf8)
                guard frame == expected else {
                    Issue.record("message \(i) to the fast subscriber differs")
                    return
                }
            }
            // Both received until the slow one was closed, then only the fast one.
            #expect(receivers.first == 2 && receivers.last == 1, "\(receivers.first ?? -1) … \(receivers.last ?? -1)")
            #expect(receivers.allSatisfy { $0 == 1 || $0 == 2 } && receivers == receivers.sorted(by: >))
            let info = String(decoding: try publisher.call("INFO", "stats"), as: UTF8.self)
            #expect(info.contains("client_output_buffer_limit_disconnections:1\r\n"), "\(info)")
            #expect(info.contains("pubsub_channels:1\r\n"), "\(info)")
            // The slow subscriber finds its connection closed once it reads what the kernel held.
            let (_, eof) = slow.client.readToEOF(deadline: .now + .seconds(20))
            #expect(eof)
            #expect(try publisher.call("PUBSUB", "NUMSUB", "feed") == Array("*2\r\n$4\r\nfeed\r\n:1\r\n".utf8))
        }
    }

    /// The soft limit closes a subscriber only once it has stayed past it for its seconds.
    @Test func softLimitWaitsForItsSeconds() throws {
        try withKVServer(fsync: "no") { server, _ in
            let publisher = try RawRESPConnection(port: server.kvPort)
            _ = try publisher.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 256kb 1")
            let slow = try RawRESPConnection(port: server.kvPort)
            _ = try slow.call("SUBSCRIBE", "feed")
            let payload = [UInt8](repeating: UInt8(ascii: "s"), count: 64 * 1024)
            let started = ContinuousClock.now
            var closedAfter: Duration?
            // Publishes until the subscriber is gone (bounded): it must outlive the soft seconds.
            for _ in 0..<20_000 {
                let reply = try publisher.call([Array("PUBLISH".utf8), Array("feed".utf8), payload])
                if reply == Array(":0\r\n".utf8) {
                    closedAfter = ContinuousClock.now - started
                    break
                }
                if ContinuousClock.now - started > .seconds(30) { break }
            }
            #expect(closedAfter != nil)
            if let closedAfter { #expect(closedAfter >= .seconds(1), "closed after \(closedAfter)") }
        }
    }
}
