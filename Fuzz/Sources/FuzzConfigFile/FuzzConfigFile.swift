// Fuzz target: the config-file reader (Sources/Server/ConfigFile.swift, Setting.swift). Any bytes
// either parse into entries or are refused with an error naming a line of the input; entries come
// in line order; applying them to the defaults either succeeds or is refused naming one of their
// lines; and what the settings print (`--check-config`) reads back as the same configuration.
// Input: the bytes of a config file.

import FuzzSupport
import Server

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    let lineCount = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).count
    let entries: [ConfigFile.Entry]
    do {
        entries = try ConfigFile.parse(bytes: bytes)
    } catch {
        require((1...max(lineCount, 1)).contains(error.line), "error on line \(error.line) of \(lineCount): \(error)")
        return 0
    }
    require(zip(entries, entries.dropFirst()).allSatisfy { $0.line < $1.line }, "entries out of line order")
    require(entries.allSatisfy { (1...lineCount).contains($0.line) }, "an entry on a line the input lacks")
    var configuration = ServerConfiguration()
    do {
        _ = try ConfigFile.apply(entries, to: &configuration)
    } catch {
        require(entries.contains { $0.line == error.line }, "apply refused line \(error.line), which holds no entry")
        return 0
    }
    // What --check-config prints, written back as a config file, means the same settings (the
    // password is printed as "(set)", never itself, so it is left out).
    let shown = Setting.allCases.filter { $0 != .requirepassFile && $0 != .requirepass }
    let printed = shown.map { setting in
        "\(setting.rawValue) \(quoted(setting.value(in: configuration)))"
    }.joined(separator: "\n")
    var again = ServerConfiguration()
    do {
        _ = try ConfigFile.apply(try ConfigFile.parse(text: printed), to: &again)
    } catch {
        require(false, "the printed settings do not read back: \(error)\n\(printed)")
    }
    for setting in shown {
        require(setting.value(in: again) == setting.value(in: configuration),
                "\(setting.rawValue): \(setting.value(in: configuration)) printed, \(setting.value(in: again)) read back")
    }
    return 0
}

/// A value as a config file line can carry it: double-quoted with redis.conf's escapes.
func quoted(_ value: String) -> String {
    var text = "\""
    for byte in value.utf8 {
        switch byte {
        case UInt8(ascii: "\""): text += "\\\""
        case UInt8(ascii: "\\"): text += "\\\\"
        case 0x20..<0x7F: text.append(Character(Unicode.Scalar(byte)))
        default: text += "\\x" + String(byte, radix: 16).leftPadded(to: 2)
        }
    }
    return text + "\""
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - self.count)) + self }
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzConfigFile) }
}
