// After a failed log write the store's function libraries are rolled back (Sources/Store/UndoLog.swift,
// UndoKind.function); the interpreter is then made to match them (ServerState.reconcileFunctionLibraries,
// Sources/Services/Scripting/FunctionPersistence.swift): what it runs is what a restart would load.

@testable import Services
import Testing

@Suite struct FunctionReconcileTests {
    static func library(_ name: String, returning value: String) -> String {
        "#!lua name=\(name)\nredis.register_function('f\(name)', function() return '\(value)' end)"
    }

    func fcall(_ function: String, _ server: TestServer) -> String {
        execute(["FCALL", function, "0"], on: .resp, encoding: .resp2, store: server)
    }

    @Test func theInterpreterFollowsTheStoresLibraries() {
        let server = TestServer()
        #expect(execute(["FUNCTION", "LOAD", Self.library("a", returning: "a1")], on: .resp, encoding: .resp2, store: server)
                == "$1\r\na\r\n")
        #expect(execute(["FUNCTION", "LOAD", Self.library("b", returning: "b1")], on: .resp, encoding: .resp2, store: server)
                == "$1\r\nb\r\n")
        // The store holds: a with other code (a replacement lost), no b (its load lost), c (its delete lost).
        let stored = [("a", "a0"), ("c", "c0")].map { (name: Array($0.0.utf8), code: Array(Self.library($0.0, returning: $0.1).utf8)) }
        #expect(server.state.reconcileFunctionLibraries(stored, now: { (0, 0) }).isEmpty)
        #expect(self.fcall("fa", server) == "$2\r\na0\r\n")
        #expect(self.fcall("fb", server) == "-ERR Function not found\r\n")
        #expect(self.fcall("fc", server) == "$2\r\nc0\r\n")
        let list = execute(["FUNCTION", "LIST"], on: .resp, encoding: .resp2, store: server)
        #expect(list.contains("$1\r\na\r\n") && list.contains("$1\r\nc\r\n") && !list.contains("$1\r\nb\r\n"), "\(list)")
        // Already in line: nothing changes.
        #expect(server.state.reconcileFunctionLibraries(stored, now: { (0, 0) }).isEmpty)
        #expect(self.fcall("fa", server) == "$2\r\na0\r\n")
        // A library that no longer loads is reported, not kept half-loaded.
        let broken = [(name: Array("d".utf8), code: Array("#!lua name=d\nerror('no')".utf8))]
        #expect(server.state.reconcileFunctionLibraries(broken, now: { (0, 0) }).count == 1)
        #expect(self.fcall("fa", server) == "-ERR Function not found\r\n")
    }
}
