// FileRoot (Sources/Server/FileRoot.swift) over a real temporary directory: regular files open
// with their size, directories and escapes are refused with the errno the file service maps,
// listings leave out symlinks that lead outside, and a missing root is created.

import Foundation
import Reactor
@testable import Server
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct FileRootTests {
    /// A fresh directory holding `a` (5 bytes), `d/`, `inside` -> a, and `out` -> /etc.
    static func makeTree() throws -> String {
        let path = NSTemporaryDirectory() + "fileroot-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fm = FileManager.default
        try fm.createDirectory(atPath: path + "/d", withIntermediateDirectories: true)
        try Data("hello".utf8).write(to: URL(fileURLWithPath: path + "/a"))
        try fm.createSymbolicLink(atPath: path + "/inside", withDestinationPath: "a")
        try fm.createSymbolicLink(atPath: path + "/out", withDestinationPath: "/etc")
        return path
    }

    static func errno(_ body: () throws -> Void) -> CInt? {
        do {
            try body()
            return nil
        } catch {
            return (error as? IOError)?.errno ?? -1
        }
    }

    @Test func opensRegularFilesAndRefusesDirectoriesAndEscapes() throws {
        let path = try Self.makeTree()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let root = try FileRoot(path: path)
        #expect(try root.open(Array("a".utf8)).size == 5)
        #expect(try root.open(Array("inside".utf8)).size == 5)
        #expect(Self.errno { _ = try root.open(Array("d".utf8)) } == EISDIR)
        #expect(Self.errno { _ = try root.open(Array("missing".utf8)) } == ENOENT)
        #expect(Self.errno { _ = try root.open(Array("../a".utf8)) } == EXDEV)
        #expect(Self.errno { _ = try root.open(Array("out/passwd".utf8)) } == EXDEV)
        #expect(Self.errno { _ = try root.list(Array("a".utf8)) } == ENOTDIR)
        let names = try root.list([]).map { String(decoding: $0.name, as: UTF8.self) }
        #expect(names == ["a", "d", "inside"])
    }

    @Test func rootIsCreatedWhenMissing() throws {
        let path = NSTemporaryDirectory() + "fileroot-new-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try FileRoot(path: path)
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue)
    }
}
