// reactor-cli: one client for every reactord service. Flags follow the subcommand. Exit codes:
// 0 success, 1 an `ERR` reply or a failed transfer, 2 bad flags, 3 cannot connect.

import ArgumentParser
import Foundation
import Services
#if canImport(Glibc)
import Glibc
#endif

struct HostOption: ParsableArguments {
    @Option(help: "Server address (numeric IPv4 or IPv6, or localhost).")
    var host = "127.0.0.1"
}

@main
struct ReactorCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reactor-cli",
        abstract: "Talk to reactord's kv, echo, time and file services.",
        discussion: """
            Examples:
              reactor-cli kv set greeting hello world     one request, prints OK
              reactor-cli kv get greeting                 prints: hello world
              reactor-cli kv < commands.txt               one request per stdin line
              reactor-cli echo hi there                   prints: hi there
              reactor-cli time --udp                      the server's time over UDP
              reactor-cli file list                       what the file service serves
              reactor-cli file get big.iso -o /tmp/x.iso  download, size verified
            Exit status: 0 success, 1 an ERR reply, 2 bad flags, 3 cannot connect.
            """,
        version: PackageVersion.current,
        subcommands: [KV.self, Echo.self, Time.self, File.self])

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as CLIError {
            FileHandle.standardError.write(Data("reactor-cli: \(error.description)\n".utf8))
            Foundation.exit(error.exitCode)
        } catch {
            if exitCode(for: error) == .validationFailure {
                let message = message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
                FileHandle.standardError.write(Data("reactor-cli: \(message)\n".utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

func printLine(_ bytes: [UInt8]) {
    FileHandle.standardOutput.write(Data(bytes + [10]))
}

func isERR(_ line: [UInt8]) -> Bool { line.starts(with: Array("ERR".utf8)) }

struct KV: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv", abstract: "Send kv requests: one from the words given, or one per stdin line.")
    @OptionGroup var options: HostOption
    @Option(help: "kv service port.") var port = 9877
    @Option(help: "Password to send first (`auth`), when the server has one; REACTORD_REQUIREPASS works too.")
    var password: String?
    @Argument(parsing: .captureForPassthrough, help: "A request, e.g. `set key some value`.") var words: [String] = []

    func validate() throws {
        // The words pass through verbatim, so `--help` or an unknown flag before them would be
        // sent to the server as a command; no kv command begins with '-'.
        guard let first = self.words.first, first.hasPrefix("-") else { return }
        if first == "-h" || first == "--help" { throw CleanExit.helpRequest(Self.self) }
        throw ValidationError("Unknown option '\(first)'")
    }

    func run() throws {
        let socket = try ClientSocket(host: self.options.host, port: self.port)
        if let password = self.password ?? ProcessInfo.processInfo.environment["REACTORD_REQUIREPASS"] {
            try socket.send(Array("auth \(password)\n".utf8))
            guard let reply = try socket.readLine() else {
                throw CLIError(description: "\(socket.endpoint) closed the connection", exitCode: 1)
            }
            if isERR(reply) {
                printLine(reply)
                throw ExitCode(1)
            }
        }
        if !self.words.isEmpty {
            try socket.send(Array((self.words.joined(separator: " ") + "\n").utf8))
            guard let reply = try socket.readLine() else {
                throw CLIError(description: "\(socket.endpoint) closed the connection", exitCode: 1)
            }
            printLine(reply)
            if isERR(reply) { throw ExitCode(1) }
            return
        }
        // Every request is answered before the end: exit 1 if any reply was an ERR (README.md).
        var sawError = false
        while let line = Swift.readLine(strippingNewline: true) {
            if line.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) { continue }  // the server answers nothing
            try socket.send(Array((line + "\n").utf8))
            guard let reply = try socket.readLine() else {
                throw CLIError(description: "\(socket.endpoint) closed the connection", exitCode: 1)
            }
            printLine(reply)
            if isERR(reply) { sawError = true }
            if reply == Array("Goodbye".utf8) { break }
        }
        if sawError { throw ExitCode(1) }
    }
}

struct Echo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo", abstract: "Send text to the echo service and print what comes back.")
    @OptionGroup var options: HostOption
    @Option(help: "echo service port.") var port = 9878
    @Flag(help: "Use UDP (one datagram per line).") var udp = false
    @Argument(help: "Text to send; without it, each stdin line is sent.") var text: [String] = []

    func run() throws {
        let socket = try ClientSocket(host: self.options.host, port: self.port, udp: self.udp)
        let lines: AnySequence<String> = self.text.isEmpty
            ? AnySequence(sequence(state: ()) { _ in Swift.readLine(strippingNewline: true) })
            : AnySequence([self.text.joined(separator: " ")])
        for line in lines {
            if self.udp {
                try socket.send(Array(line.utf8))
                guard let reply = socket.receiveDatagram(timeoutMilliseconds: 2000) else {
                    throw CLIError(description: "no UDP reply from \(socket.endpoint) within 2 s", exitCode: 1)
                }
                printLine(reply)
            } else {
                try socket.send(Array((line + "\n").utf8))
                if line == ":exit" { return }
                guard let reply = try socket.readLine() else {
                    throw CLIError(description: "\(socket.endpoint) closed the connection", exitCode: 1)
                }
                printLine(reply)
            }
        }
    }
}

struct Time: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "time", abstract: "Print the server's time (UTC, microseconds).")
    @OptionGroup var options: HostOption
    @Option(help: "time service port.") var port = 9879
    @Flag(help: "Use UDP.") var udp = false

    func run() throws {
        let socket = try ClientSocket(host: self.options.host, port: self.port, udp: self.udp)
        if self.udp {
            try socket.send(Array("time".utf8))
            guard let reply = socket.receiveDatagram(timeoutMilliseconds: 2000) else {
                throw CLIError(description: "no UDP reply from \(socket.endpoint) within 2 s", exitCode: 1)
            }
            printLine(reply.last == 10 ? Array(reply.dropLast()) : reply)
        } else {
            try socket.send(Array("time\n".utf8))
            guard let reply = try socket.readLine() else {
                throw CLIError(description: "\(socket.endpoint) closed the connection", exitCode: 1)
            }
            printLine(reply)
            if isERR(reply) { throw ExitCode(1) }
        }
    }
}

struct File: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "file", abstract: "Download or list files served by the file service.",
        subcommands: [Get.self, List.self])

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download a file (progress on a terminal, size verified, never overwrites unless --force).")
        @OptionGroup var options: HostOption
        @Option(help: "file service port.") var port = 9880
        @Option(name: .shortAndLong, help: "Where to write (default: the file's name in the current directory; - for stdout).")
        var output: String?
        @Flag(help: "Replace the output file if it exists.") var force = false
        @Argument(help: "Path relative to the server's files root.") var path: String

        func run() throws {
            let target = self.output ?? String(self.path.split(separator: "/").last ?? "download")
            var status = stat()
            let exists = target != "-" && stat(target, &status) == 0
            // A device or FIFO (`-o /dev/null`) is written in place: a temporary file renamed
            // over it would replace the node itself. Only a regular file has contents to protect.
            let inPlace = target == "-" || (exists && status.st_mode & S_IFMT != S_IFREG)
            if exists && !inPlace && !self.force {
                throw CLIError(description: "\(target) exists; pass --force to replace it", exitCode: 1)
            }
            let socket = try ClientSocket(host: self.options.host, port: self.port)
            _ = try socket.readLine()  // greeting
            try socket.send(Array("get \(self.path)\n".utf8))
            guard let header = try socket.readLine() else {
                throw CLIError(description: "\(socket.endpoint) closed the connection", exitCode: 1)
            }
            let text = String(decoding: header, as: UTF8.self)
            guard text.hasPrefix("OK "), let size = Int(text.dropFirst(3)) else {
                FileHandle.standardError.write(Data("reactor-cli: \(text)\n".utf8))
                throw ExitCode(1)
            }
            // Written beside the target and renamed at the end: an interrupted download never
            // leaves a truncated file under the real name.
            let partial = inPlace ? target : target + ".part"
            let out = target == "-" ? STDOUT_FILENO : open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard out >= 0 else {
                throw CLIError(description: "cannot write \(partial): \(String(cString: strerror(errno)))", exitCode: 1)
            }
            let progress = Progress(total: size, enabled: isatty(2) == 1 && target != "-")
            // Each received chunk goes to write(2) from the buffer it was received into.
            let received: Int
            do {
                received = try socket.read(count: size) { chunk in
                    try Self.writeAll(out, chunk, name: partial)
                    progress.advance(by: chunk.count)
                }
            } catch {
                if target != "-" { Glibc.close(out) }
                if !inPlace { unlink(partial) }
                throw error
            }
            progress.finish()
            if target != "-" && Glibc.close(out) != 0 {
                if !inPlace { unlink(partial) }
                throw CLIError(description: "cannot write \(partial): \(String(cString: strerror(errno)))", exitCode: 1)
            }
            guard received == size else {
                if !inPlace { unlink(partial) }
                throw CLIError(description: "short transfer: got \(received) of \(size) bytes", exitCode: 1)
            }
            if !inPlace && rename(partial, target) != 0 {
                throw CLIError(description: "cannot rename \(partial) to \(target): \(String(cString: strerror(errno)))", exitCode: 1)
            }
            if target != "-" { FileHandle.standardError.write(Data("\(target): \(size) bytes\n".utf8)) }
        }

        /// write(2) until every byte is out (short writes continue, EINTR retries).
        static func writeAll(_ fd: CInt, _ bytes: UnsafeRawBufferPointer, name: String) throws {
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw CLIError(description: "cannot write \(name): \(String(cString: strerror(errno)))", exitCode: 1)
                }
                offset += n
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a directory (default: the root).")
        @OptionGroup var options: HostOption
        @Option(help: "file service port.") var port = 9880
        @Argument(help: "Directory relative to the files root.") var directory: String?

        func run() throws {
            let socket = try ClientSocket(host: self.options.host, port: self.port)
            _ = try socket.readLine()  // greeting
            try socket.send(Array("list \(self.directory ?? "")\n".utf8))
            guard let header = try socket.readLine() else {
                throw CLIError(description: "\(socket.endpoint) closed the connection", exitCode: 1)
            }
            let text = String(decoding: header, as: UTF8.self)
            guard text.hasPrefix("OK "), let count = Int(text.dropFirst(3)) else {
                FileHandle.standardError.write(Data("reactor-cli: \(text)\n".utf8))
                throw ExitCode(1)
            }
            for _ in 0..<count {
                guard let line = try socket.readLine() else { break }
                printLine(line)
            }
        }
    }
}

/// A progress bar on stderr, redrawn at most ten times a second.
final class Progress {
    let total: Int
    let enabled: Bool
    private var done = 0
    private var lastDraw = 0.0
    private let start = Date()

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    func advance(by n: Int) {
        self.done += n
        guard self.enabled else { return }
        let now = Date().timeIntervalSince(self.start)
        if now - self.lastDraw >= 0.1 || self.done == self.total {
            self.lastDraw = now
            self.draw(elapsed: now)
        }
    }

    func finish() {
        if self.enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func draw(elapsed: Double) {
        let fraction = self.total == 0 ? 1 : Double(self.done) / Double(self.total)
        let width = 30
        let filled = Int(fraction * Double(width))
        let rate = elapsed > 0 ? Double(self.done) / elapsed / 1_048_576 : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = String(format: "\r[%@] %3.0f%%  %.1f/%.1f MiB  %.1f MiB/s", bar, fraction * 100,
                          Double(self.done) / 1_048_576, Double(self.total) / 1_048_576, rate)
        FileHandle.standardError.write(Data(line.utf8))
    }
}
