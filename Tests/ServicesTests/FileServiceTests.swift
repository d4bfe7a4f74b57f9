// The file protocol's parser as a pure state machine: requests become `FileRequest` values, paths
// that could leave the root are refused before any file system call. Each input is fed whole,
// one byte at a time and all inputs concatenated, and must give the same requests.

import Services
import Testing

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Every request the service yields for `chunks`, stopping after a `lineTooLong` (the wiring closes).
private func requests(_ chunks: [[UInt8]], maxLineBytes: Int = 65536) -> [FileRequest] {
    var service = FileService(maxLineBytes: maxLineBytes)
    var out: [FileRequest] = []
    for chunk in chunks {
        chunk.withUnsafeBytes { service.receive($0) }
        while let request = service.nextRequest() {
            out.append(request)
            if request == .lineTooLong { return out }
        }
    }
    return out
}

private func allFeeds(_ input: [UInt8], maxLineBytes: Int = 65536) -> [(String, [FileRequest])] {
    [("whole", requests([input], maxLineBytes: maxLineBytes)),
     ("byte by byte", requests(input.map { [$0] }, maxLineBytes: maxLineBytes)),
     ("split in two", requests([Array(input.prefix(input.count / 2)), Array(input.dropFirst(input.count / 2))],
                               maxLineBytes: maxLineBytes))]
}

@Suite struct FileServiceTests {
    static let table: [(input: [UInt8], expected: [FileRequest])] = [
        (bytes("get f\n"), [.get(path: bytes("f"), offset: 0, length: nil)]),
        (bytes("GET dir/f.bin 10\n"), [.get(path: bytes("dir/f.bin"), offset: 10, length: nil)]),
        (bytes("get f 10 20\r\n"), [.get(path: bytes("f"), offset: 10, length: 20)]),
        (bytes("get\tf\t0\t0\n"), [.get(path: bytes("f"), offset: 0, length: 0)]),
        (bytes("get ./a//b 000 7\n"), [.get(path: bytes("./a//b"), offset: 0, length: 7)]),
        (bytes("get f x\n"), [.error("bad range")]),
        (bytes("get f -1\n"), [.error("bad range")]),
        (bytes("get f 10 y\n"), [.error("bad range")]),
        (bytes("get f 1e3\n"), [.error("bad range")]),
        (bytes("get f 99999999999999999999999\n"), [.error("bad range")]),
        (bytes("get\n"), [.error("wrong number of arguments for 'get'")]),
        (bytes("get a 1 2 3\n"), [.error("wrong number of arguments for 'get'")]),
        (bytes("get ../x\n"), [.error("forbidden")]),
        (bytes("get ..\n"), [.error("forbidden")]),
        (bytes("get a/../../x\n"), [.error("forbidden")]),
        (bytes("get a/..\n"), [.error("forbidden")]),
        (bytes("get /etc/passwd\n"), [.error("forbidden")]),
        (bytes("get //etc/passwd\n"), [.error("forbidden")]),
        // The path check comes before the range check: a forbidden path is never "bad range".
        (bytes("get ../x nope\n"), [.error("forbidden")]),
        (bytes("get a") + [0] + bytes("b\n"), [.error("forbidden")]),
        (bytes("get ") + [0] + bytes("\n"), [.error("forbidden")]),
        // "..." and "..a" are ordinary names.
        (bytes("get ...\n"), [.get(path: bytes("..."), offset: 0, length: nil)]),
        (bytes("get ..a/b..\n"), [.get(path: bytes("..a/b.."), offset: 0, length: nil)]),
        (bytes("get caf\u{E9}\n"), [.get(path: bytes("caf\u{E9}"), offset: 0, length: nil)]),
        ([103, 101, 116, 32, 0xFF, 0xFE, 10], [.get(path: [0xFF, 0xFE], offset: 0, length: nil)]),
        (bytes("list\n"), [.list(path: [])]),
        (bytes("LIST sub\n"), [.list(path: bytes("sub"))]),
        (bytes("list ../\n"), [.error("forbidden")]),
        (bytes("list /\n"), [.error("forbidden")]),
        (bytes("list a b\n"), [.error("wrong number of arguments for 'list'")]),
        (bytes("bye\n"), [.bye]),
        (bytes("Bye\r\n"), [.bye]),
        (bytes("bye now\n"), [.error("wrong number of arguments for 'bye'")]),
        (bytes("put f\n"), [.error("unknown command 'put'")]),
        (bytes("\n\r\n \t\n"), []),
        (bytes("get a\nlist\nbye\n"), [.get(path: bytes("a"), offset: 0, length: nil), .list(path: []), .bye]),
        (bytes("get unterminated"), []),
    ]

    @Test(arguments: Array(0..<FileServiceTests.table.count))
    func requestsParseTheSameWholeAndByteByByte(index: Int) {
        let (input, expected) = Self.table[index]
        for (feed, got) in allFeeds(input) {
            #expect(got == expected, "\(feed): \(String(decoding: input, as: UTF8.self).debugDescription)")
        }
    }

    @Test func allRequestsConcatenatedGiveAllRequestsInOrder() {
        // The unterminated last entry must stay last (it swallows what follows it).
        let input = Self.table.flatMap(\.input)
        let expected = Self.table.flatMap(\.expected)
        for (feed, got) in allFeeds(input) {
            #expect(got == expected, "\(feed)")
        }
    }

    @Test func overLongLineIsReportedOnceItPassesTheLimit() {
        let long = Array(repeating: UInt8(ascii: "a"), count: 100)
        for (feed, got) in allFeeds(bytes("get ") + long + [10], maxLineBytes: 64) {
            #expect(got == [.lineTooLong], "\(feed)")
        }
        // No terminator yet, already past the limit: refused without waiting for one.
        for (feed, got) in allFeeds(long, maxLineBytes: 64) {
            #expect(got == [.lineTooLong], "\(feed)")
        }
        // Requests before the long line are still answered first.
        for (feed, got) in allFeeds(bytes("list\n") + long + [10], maxLineBytes: 64) {
            #expect(got == [.list(path: []), .lineTooLong], "\(feed)")
        }
        // Exactly at the limit, CRLF-terminated: accepted.
        let exact = bytes("get ") + Array(repeating: UInt8(ascii: "b"), count: 60)
        for (feed, got) in allFeeds(exact + [13, 10], maxLineBytes: 64) {
            #expect(got == [.get(path: Array(exact.dropFirst(4)), offset: 0, length: nil)], "\(feed)")
        }
    }

    @Test(arguments: [
        ("a", true), ("a/b/c", true), ("./a", true), ("a/./b", true), ("...", true), ("a..", true),
        ("..", false), ("../a", false), ("a/..", false), ("a/../b", false), ("a//..//b", false),
        ("/a", false), ("/", false),
    ])
    func pathProblemAllowsOnlyPathsThatStayBeneath(path: String, allowed: Bool) {
        let problem = FileService.pathProblem(ArraySlice(path.utf8))
        #expect((problem == nil) == allowed, "\(path)")
        if !allowed { #expect(problem == "forbidden") }
    }
}
