// database.txt: escaping, hand-edited files, refusing malformed ones.

import Glibc
import Testing

@testable import Store

@Suite struct SnapshotTests {
    /// Writes `keyspace` as `directory`/database.txt and returns its path.
    static func writeSnapshot(_ keyspace: Keyspace, in directory: String, leavingOutExpiredAt now: Int64? = nil) throws -> String {
        let path = directory + "/database.txt"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        try Snapshot.write(keyspace, to: fd, path: path, io: .system, leavingOutExpiredAt: now)
        return path
    }

    @Test func escapingRoundTripsEveryByteInKeysAndValues() throws {
        try withTemporaryDirectory { directory in
            let allBytes = (0...255).map { UInt8($0) }
            let map: [[UInt8]: [UInt8]] = [
                allBytes: allBytes,
                bytes("#looks like a comment"): bytes("#value"),
                bytes("tab\tkey"): bytes("line1\nline2\r\n"),
                bytes("back\\slash"): bytes("\\x41 is not an escape here"),
                bytes("empty"): [],
                []: bytes("empty key"),
                [0xFF, 0xFE]: [0xC3, 0x28],  // bytes >= 0x80 raw, not UTF-8 checked
            ]
            let path = try Self.writeSnapshot(makeKeyspace(map), in: directory)

            let loaded = Keyspace()
            #expect(try Snapshot.load(path: path, io: .system, into: loaded))
            #expect(dictionary(loaded) == map)
            loaded.checkInvariants()

            // One line per key after the header, no raw control bytes except the separators.
            let text = readFile(path)!
            #expect(text.starts(with: bytes("# reactord snapshot, 7 keys\n")))
            #expect(text.filter { $0 == 0x0A }.count == map.count + 1)
            #expect(text.allSatisfy { $0 >= 0x20 || $0 == 0x09 || $0 == 0x0A })
            #expect(text.split(separator: 0x0A).contains(bytes("\\x23looks like a comment\t#value")[...]))
        }
    }

    /// A value several times the 1 MiB write chunk, all of it bytes that escape to four (the worst
    /// case), round trips: it is escaped a piece at a time, and no escape is split across pieces.
    @Test func aValueLargerThanTheWriteBufferIsEscapedInPiecesAndRoundTrips() throws {
        try withTemporaryDirectory { directory in
            var big = [UInt8](repeating: 0x01, count: 3 << 20)
            for i in stride(from: 0, to: big.count, by: 997) { big[i] = UInt8(truncatingIfNeeded: i) }
            let map: [[UInt8]: [UInt8]] = [bytes("#big"): big, bytes("small"): bytes("v")]
            let path = try Self.writeSnapshot(makeKeyspace(map), in: directory)
            let loaded = Keyspace()
            #expect(try Snapshot.load(path: path, io: .system, into: loaded))
            #expect(dictionary(loaded) == map)
        }
    }

    @Test func keysPastTheirDeadlineAreLeftOutWhenAskedFor() throws {
        try withTemporaryDirectory { directory in
            let keyspace = Keyspace()
            _ = keyspace.set(bytes("gone"), bytes("1"), deadline: 1_000)
            _ = keyspace.set(bytes("stays"), bytes("2"), deadline: 3_000)
            _ = keyspace.set(bytes("plain"), bytes("3"))
            let path = try Self.writeSnapshot(keyspace, in: directory, leavingOutExpiredAt: 2_000)
            let text = String(decoding: readFile(path)!, as: UTF8.self)
            #expect(text.hasPrefix("# reactord snapshot, 2 keys\n"))
            #expect(!text.contains("gone"))
            #expect(text.contains("stays\t2\t@3000\n") && text.contains("plain\t3\n"))
        }
    }

    /// Deadlines of 19 digits (a PEXPIREAT past the year 33,658, up to Int64.max) come back as
    /// deadlines, in a short line and in one longer than the read buffer; 20 digits is a value.
    @Test func deadlinesOfNineteenDigitsRoundTrip() throws {
        try withTemporaryDirectory { directory in
            let keyspace = Keyspace()
            let big = [UInt8](repeating: 0x61, count: (1 << 20) + 100)
            _ = keyspace.set(bytes("far"), bytes("v"), deadline: 4_195_730_024_608_447_034)
            _ = keyspace.set(bytes("max"), bytes("w"), deadline: .max)
            _ = keyspace.set(bytes("long"), big, deadline: .max)
            let path = try Self.writeSnapshot(keyspace, in: directory)
            for diskValues in [nil, DiskValues(threshold: 1 << 20)] {
                let loaded = Keyspace()
                #expect(try Snapshot.load(path: path, io: .system, into: loaded, diskValues: diskValues))
                diskValues?.close(io: .system)
                for (key, deadline) in [("far", Int64(4_195_730_024_608_447_034)), ("max", .max), ("long", .max)] {
                    let index = try #require(loaded.find(bytes(key)), "\(key)")
                    #expect(loaded.deadline(at: index) == deadline, "\(key)")
                }
                #expect(loaded.find(bytes("far")).map { [UInt8](loaded.value(at: $0)) } == bytes("v"))
                #expect(loaded.find(bytes("long")).map { loaded.value(at: $0).count } == (diskValues == nil ? big.count : 0))
            }
            writeFile(path, bytes("k\tv\t@12345678901234567890\n"))  // past Int64.max: not a deadline
            let loaded = Keyspace()
            #expect(try Snapshot.load(path: path, io: .system, into: loaded))
            let index = try #require(loaded.find(bytes("k")))
            #expect(loaded.deadline(at: index) == nil)
            #expect([UInt8](loaded.value(at: index)) == bytes("v\t@12345678901234567890"))
        }
    }

    @Test func escapesAreWrittenAsSpecified() {
        var output = Snapshot.OutputBuffer(capacity: 256)
        defer { output.deallocate() }
        Snapshot.escape([0x5C, 0x0A, 0x0D, 0x09, 0x00, 0x1F, 0x7F, 0xFF, 0x23], escapeLeadingHash: false, into: &output)
        let written = Array(UnsafeBufferPointer(start: output.pointer, count: output.count))
        #expect(String(decoding: written.prefix(16), as: UTF8.self) == "\\\\\\n\\r\\t\\x00\\x1f")
        #expect(Array(written.suffix(3)) == [0x7F, 0xFF, 0x23])
    }

    @Test func aHandWrittenFileWithCommentsCRLFAndBlankLinesLoads() throws {
        try withTemporaryDirectory { directory in
            let text = "# written by hand\r\n"
                + "\r\n"
                + "alpha\tone\r\n"
                + "\n"
                + "# a comment in the middle\n"
                + "beta\ttwo words\twith a raw tab\n"
                + "gamma\t\\x41\\x4a\\x4A\\t\\\\\n"
                + "empty\t\n"
                + "alpha\toverwritten\n"
                + "last\tno final newline"
            writeFile(directory + "/database.txt", bytes(text))
            let store = try DurableStore(configuration: .test(directory))
            #expect(store.count == 5)
            #expect(contents(store, keys: ["alpha", "beta", "gamma", "empty", "last"]) == [
                "alpha": "overwritten", "beta": "two words\twith a raw tab", "gamma": "AJJ\t\\", "empty": "",
                "last": "no final newline",
            ])
        }
    }

    @Test(arguments: [
        ("ok\tvalue\n# fine\nno tab here\nlater\tvalue\n", "line 3: no tab"),
        ("ok\tvalue\nbad\t\\q\n", "line 2: bad escape"),
        ("bad\\xZ1\tvalue\n", "line 1: bad escape"),
        ("\n\nbad\ttrailing backslash\\", "line 3: bad escape"),
    ])
    func aMalformedLineRefusesToStartAndNamesTheLine(text: String, expected: String) throws {
        try withTemporaryDirectory { directory in
            writeFile(directory + "/database.txt", bytes(text))
            do throws(StoreError) {
                _ = try DurableStore(configuration: .test(directory))
                Issue.record("opened a malformed snapshot")
            } catch {
                #expect(error.description.contains(directory + "/database.txt"))
                #expect(error.description.contains(expected), "\(error)")
            }
        }
    }

    @Test func aLineLongerThanTheReadChunkLoads() throws {
        try withTemporaryDirectory { directory in
            let long = [UInt8](repeating: UInt8(ascii: "v"), count: 3 << 20)
            writeFile(directory + "/database.txt", bytes("a\t1\nlong\t") + long + bytes("\nz\t2\n"))
            let store = try DurableStore(configuration: .test(directory))
            #expect(store.value(forKey: bytes("long")) == long)
            #expect(store.count == 3)
        }
    }
}
