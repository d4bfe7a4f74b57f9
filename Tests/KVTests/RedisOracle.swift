// The differential test's tools: a redis-server started by the test (its own port, no
// persistence, stopped by PID), a raw RESP connection that returns each reply's exact bytes
// (RESP2 and RESP3 framing, read by the tests' own reader), and the rules for replies that can
// only be compared by property (time, randomness, server identity).

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A redis-server on 127.0.0.1 for one test: no snapshots, no AOF, logs on its stdout.
final class RedisOracle {
    let port: Int
    let directory: TemporaryDirectory
    private var running: Process?

    /// Starts redis-server on a free port and waits for its "Ready to accept connections" line,
    /// retrying on another port when one is taken between the probe and redis's bind.
    init(_ extraArguments: [String] = []) throws {
        let executable = try requireTool("redis-server")
        self.directory = try TemporaryDirectory("reactord-oracle")
        var lastOutput = ""
        for _ in 0..<5 {
            let port = try freeLoopbackPort()
            let process = Process()
            let output = Pipe()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                 "--daemonize", "no", "--dir", self.directory.path, "--logfile", "",
                                 "--loglevel", "notice"] + extraArguments
            process.standardOutput = output
            process.standardError = output
            process.standardInput = FileHandle.nullDevice
            try process.run()
            // Reads the log as redis writes it: the wait ends on its line (or its exit), never a timer.
            var log = ""
            let handle = output.fileHandleForReading
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }  // EOF: redis exited
                log += String(decoding: chunk, as: UTF8.self)
                if log.contains("Ready to accept connections") { break }
            }
            if log.contains("Ready to accept connections") {
                self.port = port
                self.running = process
                // Keep draining its log so it never blocks on a full pipe.
                Thread { while !handle.availableData.isEmpty {} }.start()
                return
            }
            process.waitUntilExit()
            lastOutput = log
            if !log.contains("Address already in use") { break }
        }
        throw TestFailure("redis-server did not start: \(lastOutput)")
    }

    /// Stops it by PID (SIGKILL: nothing of it is kept) and reaps it.
    func stop() {
        guard let process = self.running else { return }
        self.running = nil
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        self.directory.remove()
    }

    deinit { self.stop() }
}

/// One RESP connection that hands back each reply's exact bytes.
final class RawRESPConnection {
    let client: TestClient
    private var buffer: [UInt8] = []

    init(port: Int) throws { self.client = try TestClient(port: port) }

    /// Sends one command and returns its complete reply, bytes as received.
    func call(_ arguments: [[UInt8]], deadline: ContinuousClock.Instant = .now + .seconds(10)) throws -> [UInt8] {
        try self.client.send(RESPValue.command(arguments), deadline: deadline)
        return try self.reply(deadline: deadline)
    }

    func call(_ words: String...) throws -> [UInt8] { try self.call(words.map { Array($0.utf8) }) }

    /// Reads the next complete reply's bytes.
    func reply(deadline: ContinuousClock.Instant = .now + .seconds(10)) throws -> [UInt8] {
        while true {
            if let length = RESPFrame.length(self.buffer[...]) {
                let reply = Array(self.buffer[..<length])
                self.buffer.removeFirst(length)
                return reply
            }
            guard let chunk = self.client.readSome() else {
                guard pollFor(self.client.fd, events: Int16(POLLIN), until: deadline) else {
                    throw TestFailure("no complete reply in time (have \(String(decoding: self.buffer, as: UTF8.self).debugDescription))")
                }
                continue
            }
            if chunk.isEmpty {
                throw TestFailure("EOF before a complete reply (have \(String(decoding: self.buffer, as: UTF8.self).debugDescription))")
            }
            self.buffer.append(contentsOf: chunk)
        }
    }
}

/// RESP2 and RESP3 framing, as the protocol documents define it: enough to find where a reply ends.
enum RESPFrame {
    /// The length of the complete reply at the start of `bytes`, or nil when it is incomplete.
    static func length(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard let type = bytes.first, let lineEnd = Self.lineEnd(bytes) else { return nil }
        let header = String(decoding: bytes[(bytes.startIndex + 1)..<lineEnd], as: UTF8.self)
        let afterHeader = lineEnd + 2 - bytes.startIndex
        switch UInt8(type) {
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "_"), UInt8(ascii: "#"),
             UInt8(ascii: ","), UInt8(ascii: "("):
            return afterHeader
        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            let count = Int(header) ?? -1
            if count < 0 { return afterHeader }
            return bytes.count >= afterHeader + count + 2 ? afterHeader + count + 2 : nil
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            var elements = Int(header) ?? -1
            if elements < 0 { return afterHeader }
            if type == UInt8(ascii: "%") || type == UInt8(ascii: "|") { elements *= 2 }
            var used = afterHeader
            for _ in 0..<elements {
                guard let n = Self.length(bytes[(bytes.startIndex + used)...]) else { return nil }
                used += n
            }
            if type == UInt8(ascii: "|") {  // an attribute precedes the reply it describes
                guard let n = Self.length(bytes[(bytes.startIndex + used)...]) else { return nil }
                used += n
            }
            return used
        default:
            return bytes.count  // not RESP: hand everything back so the comparison shows it
        }
    }

    private static func lineEnd(_ bytes: ArraySlice<UInt8>) -> Int? {
        var i = bytes.startIndex
        while i + 1 < bytes.endIndex {
            if bytes[i] == 13 && bytes[i + 1] == 10 { return i }
            i += 1
        }
        return nil
    }

    /// The reply's elements when it is an aggregate (array, set, map flattened, push), else nil.
    static func elements(_ reply: [UInt8]) -> [[UInt8]]? {
        guard let type = reply.first, "*~%>".utf8.contains(type), let end = Self.lineEnd(reply[...]) else { return nil }
        var count = Int(String(decoding: reply[1..<end], as: UTF8.self)) ?? -1
        if count < 0 { return nil }
        if type == UInt8(ascii: "%") { count *= 2 }
        var used = end + 2
        var out: [[UInt8]] = []
        for _ in 0..<count {
            guard let n = Self.length(reply[used...]) else { return nil }
            out.append(Array(reply[used..<(used + n)]))
            used += n
        }
        return out
    }

    /// A bulk or simple string's content, an integer's digits; nil for anything else.
    static func scalar(_ reply: [UInt8]) -> [UInt8]? {
        guard let type = reply.first, let end = Self.lineEnd(reply[...]) else { return nil }
        switch type {
        case UInt8(ascii: "+"), UInt8(ascii: ":"), UInt8(ascii: ","): return Array(reply[1..<end])
        case UInt8(ascii: "$"), UInt8(ascii: "="):
            let count = Int(String(decoding: reply[1..<end], as: UTF8.self)) ?? -1
            return count < 0 ? nil : Array(reply[(end + 2)..<(end + 2 + count)])
        default: return nil
        }
    }
}

/// How two replies to the same command are compared.
enum ReplyComparison {
    /// Byte for byte.
    case exact
    /// The same reply type (first byte), and for aggregates the same element count.
    case sameShape
    /// The same type only (counts may differ: INFO text, CLIENT LIST, SCAN cursors).
    case sameType
    /// The same elements in any order (KEYS: hash order differs).
    case unordered
    /// Integers within `tolerance` of each other, or both the same negative code (TTL's -1/-2).
    case integerNear(tolerance: Int)

    /// The rule for a command; most are exact.
    static func rule(for arguments: [[UInt8]]) -> ReplyComparison {
        let name = String(decoding: arguments[0], as: UTF8.self).uppercased()
        let sub = arguments.count > 1 ? String(decoding: arguments[1], as: UTF8.self).uppercased() : ""
        switch name {
        case "TTL", "EXPIRETIME": return .integerNear(tolerance: 1)
        case "PTTL", "PEXPIRETIME": return .integerNear(tolerance: 1500)
        case "TIME", "INFO", "LASTSAVE", "RANDOMKEY", "HELLO": return .sameType
        case "SCAN": return .sameType  // the table layouts differ: the property tests check SCAN's guarantee
        case "KEYS": return .unordered
        case "OBJECT" where sub == "ENCODING": return .exact
        case "CLIENT" where ["ID", "INFO", "LIST"].contains(sub): return .sameType
        case "OBJECT" where sub == "IDLETIME" || sub == "FREQ": return .sameType
        case "MEMORY": return .sameType
        case "SLOWLOG" where sub == "GET": return .sameShape  // durations, times and addresses differ
        case "CONFIG" where sub == "GET": return .sameShape
        // No ACL categories, key specs or tips here (README, differences): the outline must match.
        case "COMMAND" where sub == "INFO" || sub == "DOCS" || sub == "": return .sameShape
        default: return .exact
        }
    }

    /// `id` fields of HELLO replies (connection ids differ between servers) made equal.
    static func withoutClientIDs(_ reply: [UInt8]) -> [UInt8] {
        let marker = Array("$2\r\nid\r\n:".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < reply.count {
            if reply[i...].starts(with: marker) {
                out += marker + Array("N".utf8)
                i += marker.count
                while i < reply.count && reply[i] != 13 { i += 1 }
            } else {
                out.append(reply[i])
                i += 1
            }
        }
        return out
    }

    /// Whether `ours` matches `theirs` under this rule.
    func matches(_ ours: [UInt8], _ theirs: [UInt8]) -> Bool {
        switch self {
        case .exact: return ours == theirs || Self.withoutClientIDs(ours) == Self.withoutClientIDs(theirs)
        case .sameType: return ours.first == theirs.first
        case .sameShape:
            guard ours.first == theirs.first else { return false }
            return RESPFrame.elements(ours)?.count == RESPFrame.elements(theirs)?.count
        case .unordered:
            guard ours.first == theirs.first, let a = RESPFrame.elements(ours), let b = RESPFrame.elements(theirs) else {
                return ours == theirs
            }
            return a.sorted { $0.lexicographicallyPrecedes($1) } == b.sorted { $0.lexicographicallyPrecedes($1) }
        case .integerNear(let tolerance):
            guard ours.first == UInt8(ascii: ":"), theirs.first == UInt8(ascii: ":") else { return ours == theirs }
            guard let a = RESPFrame.scalar(ours).flatMap({ Int(String(decoding: $0, as: UTF8.self)) }),
                  let b = RESPFrame.scalar(theirs).flatMap({ Int(String(decoding: $0, as: UTF8.self)) }) else { return false }
            if a < 0 || b < 0 { return a == b }
            return abs(a - b) <= tolerance
        }
    }
}

/// A failing random sequence replays from its seed (TestSupport's SplitMix64).
typealias SeededGenerator = SplitMix
