// How every fuzz target starts, and how it reports a broken invariant.
//
// SwiftPM links an executable target with `--defsym main=<Module>_main` (so tests can link it)
// and compiles its entry point under that name; libFuzzer's runtime brings its own `main`. A
// target that only defined `LLVMFuzzerTestOneInput` would leave `<Module>_main` undefined and fail
// to link. So each target also has a tiny `@main` that calls ``FuzzDriver/run(_:)``, which hands
// the command line to libFuzzer's documented `LLVMFuzzerRunDriver` (Fuzz/README.md).

import CLibFuzzer
import Glibc

/// Starts libFuzzer from a target's `@main`.
public enum FuzzDriver {
    /// Runs libFuzzer on the process's command line with `testOneInput` (the target's
    /// `LLVMFuzzerTestOneInput`), then exits with libFuzzer's status.
    public static func run(_ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
    }
}

/// Fails the run when `condition` is false: prints `message` to stderr and aborts, so libFuzzer
/// saves the input as a crash. Used for invariants a target checks (not only memory errors).
@inline(__always)
public func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() {
        let text = "fuzz invariant failed at \(file):\(line): \(message())\n"
        text.withCString { _ = write(2, $0, strlen($0)) }
        abort()
    }
}

/// Bytes shown with control characters and non-ASCII escaped, for invariant messages.
public func printable<C: Collection>(_ bytes: C, limit: Int = 400) -> String where C.Element == UInt8 {
    var text = ""
    for byte in bytes.prefix(limit) {
        switch byte {
        case UInt8(ascii: "\r"): text += "\\r"
        case UInt8(ascii: "\n"): text += "\\n"
        case UInt8(ascii: "\\"): text += "\\\\"
        case 0x20..<0x7f: text += String(UnicodeScalar(byte))
        default: text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }
    }
    if bytes.count > limit { text += "…(\(bytes.count) bytes)" }
    return text
}
