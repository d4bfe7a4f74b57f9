// Examples/http-plaintext and Examples/async-echo, run as their own processes: each must build
// with the package, bind the port it prints and serve what its header says. Stopped by PID.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The port from an example's "NAME: listening on 127.0.0.1:PORT" line.
private func startExample(_ name: String) throws -> (ReactordProcess, Int) {
    let process = try ReactordProcess(executable: name, arguments: ["0"])
    let lines = try #require(process.waitForLine { $0.hasPrefix("\(name): listening on ") }, "no listening line")
    let port = try #require(lines.last?.split(separator: ":").last.flatMap { Int($0) })
    return (process, port)
}

/// The status lines and bodies of the responses in `bytes` (each with a Content-Length).
private func responses(_ bytes: [UInt8]) -> [(status: String, body: String)] {
    var result: [(String, String)] = []
    var text = Substring(String(decoding: bytes, as: UTF8.self))
    while let headEnd = text.range(of: "\r\n\r\n") {
        let head = text[..<headEnd.lowerBound].split(separator: "\r\n")
        let length = head.first { $0.hasPrefix("Content-Length: ") }.flatMap { Int($0.dropFirst(16)) } ?? 0
        let bodyStart = headEnd.upperBound
        let body = text[bodyStart...].prefix(length)
        result.append((String(head.first ?? ""), String(body)))
        text = text[bodyStart...].dropFirst(length)
    }
    return result
}

@Suite struct AsyncExampleTests {
    @Test func httpPlaintextAnswersPipelinedRequestsAndRefusesMalformedOnes() throws {
        let (process, port) = try startExample("http-plaintext")
        defer { process.kill() }

        // Pipelined requests split at an awkward place; the last asks to close.
        let client = try TestClient(port: port)
        let request = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"
        let all = String(repeating: request, count: 3) + "GET /other HTTP/1.1\r\nHost: x\r\n\r\n"
            + "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        let bytes = Array(all.utf8)
        try client.send(Array(bytes[..<50]))
        try client.send(Array(bytes[50...]))
        let (reply, eof) = client.readToEOF()
        #expect(eof)
        let answers = responses(reply)
        #expect(answers.map(\.status) == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found", "HTTP/1.1 200 OK"])
        #expect(answers.map(\.body) == ["Hello, World!", "Hello, World!", "Hello, World!", "", "Hello, World!"])
        let text = String(decoding: reply, as: UTF8.self)
        #expect(text.contains("\r\nDate: ") && text.contains("\r\nConnection: close\r\n"))

        // HTTP/1.0 without keep-alive: answered as 1.0 and closed.
        let old = try TestClient(port: port)
        try old.send("GET /plaintext HTTP/1.0\r\n\r\n")
        let (oldReply, oldEOF) = old.readToEOF()
        #expect(oldEOF && responses(oldReply).map(\.status) == ["HTTP/1.0 200 OK"])

        // Malformed: the status RFC 9112 names, then the close.
        for (bad, status) in [("GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505"), ("GET / HTTP/1.1\r\n\r\n", "400"),
                              ("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\n", "414")] {
            let other = try TestClient(port: port)
            try other.send(bad)
            let (answer, closed) = other.readToEOF()
            #expect(closed && responses(answer).first?.status.hasPrefix("HTTP/1.1 \(status) ") == true, "\(status)")
        }
    }

    @Test func asyncEchoEchoesEveryClientsBytesInOrder() throws {
        let (process, port) = try startExample("async-echo")
        defer { process.kill() }
        let clients = try (0..<8).map { _ in try TestClient(port: port) }
        // Each client sends more than the loop reads at once, so order and backpressure both matter.
        let payloads = (0..<clients.count).map { i in (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) } }
        for (client, payload) in zip(clients, payloads) {
            try client.send(payload)
            client.shutdownWrite()
        }
        for (client, payload) in zip(clients, payloads) {
            let (echoed, eof) = client.readToEOF(deadline: .now + .seconds(30))
            #expect(eof && echoed == payload)
        }
    }
}
