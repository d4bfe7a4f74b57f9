// Function libraries are durable (Sources/Store/FunctionLibraries.swift): kind-13 records replayed at
// start-up (a log cut anywhere gives the libraries of the whole records before the cut, a FUNCTION FLUSH
// all or none), `#!function` blocks in database.txt written by compaction and read back, any byte of
// the code round-tripping, and a malformed block refused.

import Testing
@testable import Store

@Suite struct FunctionLibraryTests {
    typealias Libraries = [[UInt8]: [UInt8]]

    static func libraries(_ store: DurableStore) -> Libraries {
        Dictionary(uniqueKeysWithValues: store.functionLibraries.map { ($0.name, $0.code) })
    }

    /// Code with every awkward byte: tab, newline, CR, backslash, a leading `#`, NUL, non-UTF-8.
    static let awkward = bytes("#!lua name=b\n\tlocal s = '\\\\'\r\n") + [0, 0xFF, 0x80] + bytes("\n")

    @Test func aFunctionRecordRoundTrips() {
        for record in [Record.function(name: bytes("lib"), code: Self.awkward), .function(name: bytes("lib"), code: nil)] {
            var encoded: [UInt8] = []
            record.encode(into: &encoded)
            #expect(encoded[8] == Record.kindFunction)
            encoded.withUnsafeBytes { raw in #expect(Record.decode(raw) == .record(record, size: encoded.count)) }
        }
        // A library has a name: a kind-13 record without one is invalid.
        var unnamed: [UInt8] = []
        Record.function(name: [], code: bytes("x")).encode(into: &unnamed)
        unnamed.withUnsafeBytes { raw in
            if case .record = Record.decode(raw) { Issue.record("a nameless function record decoded") }
        }
    }

    /// Load, replace, load, flush (one group), load: after a cut at every byte, the libraries are those
    /// of the whole records before it.
    @Test func aLogCutAnywhereGivesTheLibrariesOfTheWholeRecordsBeforeIt() throws {
        try withTemporaryDirectory { source in
            let store = try DurableStore(configuration: .test(source))
            var boundaries: [(end: Int, libraries: Libraries)] = [(0, [:])]
            func step(_ body: () throws -> Void) throws {
                try body()
                #expect(store.writeBuffered() == .ok)
                boundaries.append((readFile(source + "/database.wal")!.count, Self.libraries(store)))
            }
            try step { try store.setFunctionLibrary(bytes("a"), code: bytes("#!lua name=a\ncode a")) }
            try step { try store.setFunctionLibrary(bytes("a"), code: bytes("#!lua name=a\ncode a, again")) }
            try step { try store.setFunctionLibrary(bytes("b"), code: Self.awkward) }
            try step {
                store.beginAtomicGroup()
                try store.setFunctionLibrary(bytes("a"), code: nil)
                try store.setFunctionLibrary(bytes("b"), code: nil)
                store.endAtomicGroup()
            }
            try step { try store.setFunctionLibrary(bytes("c"), code: bytes("#!lua name=c\n")) }
            #expect(boundaries.last!.libraries == [bytes("c"): bytes("#!lua name=c\n")])
            let full = readFile(source + "/database.wal")!
            for cut in 0...full.count {
                let expected = boundaries.last { $0.end <= cut }!.libraries
                let seen = try withTemporaryDirectory { directory in
                    writeFile(directory + "/database.wal", Array(full[..<cut]))
                    return Self.libraries(try reopenStore(configuration: .test(directory)))
                }
                #expect(seen == expected, "cut at \(cut)")
            }
        }
    }

    /// Compaction writes `#!function` blocks; a reopened store (snapshot, then the later log) has them,
    /// in load order, whatever bytes the code holds, next to keys of several databases.
    @Test func compactionKeepsTheLibraries() throws {
        try withTemporaryDirectory { directory in
            let store = try DurableStore(configuration: .test(directory))
            _ = try store.set(bytes("v"), forKey: bytes("k"))
            try store.withDatabase(3) { () throws(StoreError) in _ = try store.set(bytes("w"), forKey: bytes("k3")) }
            try store.setFunctionLibrary(bytes("first"), code: bytes("#!lua name=first\n"))
            try store.setFunctionLibrary(bytes("b\tname"), code: Self.awkward)
            try store.setFunctionLibrary(bytes("gone"), code: bytes("#!lua name=gone\n"))
            try store.setFunctionLibrary(bytes("gone"), code: nil)
            #expect(store.writeBuffered() == .ok)
            let job = try #require(try startCompaction(store))
            try store.setFunctionLibrary(bytes("later"), code: bytes("#!lua name=later\n"))
            #expect(store.writeBuffered() == .ok)
            let result = job.run()
            #expect(throws: Never.self) { try result.get() }
            store.finishCompaction(job, result: result)
            let text = String(decoding: readFile(directory + "/database.txt")!, as: UTF8.self)
            #expect(text.contains("#!function\tfirst\n\t#!lua name=first\\n\n#!end\n"), "\(text)")
            #expect(!text.contains("gone") && !text.contains("later"), "\(text)")

            // A copy of the files (the store still holds the directory): the snapshot, then the later log.
            try withTemporaryDirectory { copy in
                for name in ["database.txt", "database.wal"] { writeFile(copy + "/" + name, readFile(directory + "/" + name)!) }
                let reopened = try reopenStore(configuration: .test(copy))
                #expect(reopened.functionLibraries.map(\.name) == [bytes("first"), bytes("b\tname"), bytes("later")])
                #expect(Self.libraries(reopened)[bytes("b\tname")] == Self.awkward)
                #expect(contents(reopened, keys: ["k"]) == ["k": "v"])
            }
            // Compacted again (close), then reopened from database.txt alone.
            try store.close()
            let again = try reopenStore(configuration: .test(directory))
            #expect(again.functionLibraries.map(\.name) == [bytes("first"), bytes("b\tname"), bytes("later")])
            #expect(Self.libraries(again)[bytes("b\tname")] == Self.awkward)
        }
    }

    @Test func aMalformedFunctionBlockIsRefused() throws {
        let cases: [(String, String)] = [
            ("#!function\tlib\n\tcode\n", "not closed with #!end"),
            ("#!function\tlib\n#!end\n", "has no code line"),
            ("#!function\tlib\n\tone\n\ttwo\n#!end\n", "holds one line"),
            ("#!function\n\tcode\n#!end\n", "without a library name"),
            ("#!function\tlib\nk\tv\n#!end\n", "holds one line"),
        ]
        for (file, message) in cases {
            try withTemporaryDirectory { directory in
                writeFile(directory + "/database.txt", bytes("# reactord snapshot, 0 keys\n" + file))
                do {
                    _ = try DurableStore(configuration: .test(directory))
                    Issue.record("accepted: \(file.debugDescription)")
                } catch {
                    #expect("\(error)".contains(message), "\(error)")
                }
            }
        }
    }
}
