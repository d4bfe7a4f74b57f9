// Redis 7's functions: FUNCTION LOAD of `#!lua name=<library>` code that calls
// `redis.register_function`, FCALL / FCALL_RO, and the library registry FUNCTION LIST / DELETE /
// FLUSH / STATS read.

import CLua

/// The loaded libraries and their functions.
struct FunctionLibraries {
}

extension ScriptEngine {
    func registerFunction(_ lua: OpaquePointer) -> Int32 {
        self.pushError("redis.register_function can only be called on FUNCTION LOAD command")
        return -1
    }

    /// The interrupt hook, every 100,000 instructions of a running script.
    func interrupt(_ lua: OpaquePointer) -> Int32 {
        guard let run = self.run, run.killed else { return 0 }
        self.pushError("Script killed by user with SCRIPT KILL...")
        return -1
    }
}
