// The `--config FILE` format: redis.conf's syntax (docs/protocol.md, "reactord"). Text in,
// entries with line numbers out, then applied onto a ServerConfiguration through Setting. Pure
// and Foundation-free: the executable reads the file; a fuzz target may feed it any bytes.
//
// Read as Redis reads redis.conf (its config.c and sds.c `sdssplitargs`): each line is trimmed;
// empty lines and lines whose first character is `#` are skipped (a `#` later in a line is data);
// the rest splits into words at blanks, where a word may be double-quoted (escapes `\n \r \t \b
// \a \\ \" \xHH`) or single-quoted (only `\'`), and a closing quote must end the word.

/// A parsed config file.
public enum ConfigFile {
    /// One `name value` line.
    public struct Entry: Equatable, Sendable {
        /// 1-based line number in the file.
        public let line: Int
        /// The name as written (`port`, `kv-port`), for messages.
        public let name: String
        public let setting: Setting
        public let value: String
    }

    /// Splits `text` into entries, checking every name and the number of values on each line.
    /// Values are checked by ``apply(_:to:)``.
    /// - Throws: ``ConfigFileError`` naming the first bad line.
    public static func parse(text: String) throws(ConfigFileError) -> [Entry] {
        try Self.parse(bytes: Array(text.utf8))
    }

    /// ``parse(text:)`` over the file's bytes as read: a value that is not UTF-8 is refused
    /// with its line number rather than mended.
    public static func parse(bytes: [UInt8]) throws(ConfigFileError) -> [Entry] {
        var entries: [Entry] = []
        var lineNumber = 0
        for rawLine in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = Self.trimmed(rawLine)
            if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
            let words: [[UInt8]]
            do {
                words = try Self.splitWords(line)
            } catch {
                throw ConfigFileError(line: lineNumber, reason: error.description)
            }
            guard let first = words.first else { continue }
            guard let name = String(validating: first, as: UTF8.self), let setting = Setting(name: name) else {
                throw ConfigFileError(line: lineNumber, reason: "unknown setting '\(String(decoding: first, as: UTF8.self))'")
            }
            var values = words.dropFirst()
            if setting == .clientOutputBufferLimit && values.count > 1 {
                // Redis's line gives the groups as words (`client-output-buffer-limit pubsub 32mb 8mb 60`).
                values = [Array(values.joined(separator: [UInt8(ascii: " ")]))]
            }
            guard values.count == 1, let valueBytes = values.first else {
                if values.isEmpty { throw ConfigFileError(line: lineNumber, reason: "\(name) needs a value") }
                if setting == .host {
                    // Redis's `bind` may list several addresses; reactord listens on one, and
                    // quietly binding only the first would leave the others unserved.
                    throw ConfigFileError(
                        line: lineNumber, reason: "\(name): reactord listens on one address, this line gives \(values.count)")
                }
                throw ConfigFileError(line: lineNumber, reason: "\(name) takes one value, this line gives \(values.count)")
            }
            guard let value = String(validating: valueBytes, as: UTF8.self) else {
                throw ConfigFileError(line: lineNumber, reason: "\(name): the value is not valid UTF-8")
            }
            entries.append(Entry(line: lineNumber, name: name, setting: setting, value: value))
        }
        return entries
    }

    /// What applying a file leaves for the executable to do.
    public struct Applied: Equatable, Sendable {
        /// The last `requirepass-file` line's path, unless a later `requirepass` line replaced
        /// it: the executable reads the password from it (and names `passwordFileLine` if it cannot).
        public var passwordFile: String?
        public var passwordFileLine = 0
        /// Every setting a line of the file gave.
        public var settings: Set<Setting> = []
        public init() {}
    }

    /// Applies entries in order onto `configuration`; a later line for the same setting wins.
    /// - Throws: ``ConfigFileError`` naming the first line whose value is bad.
    @discardableResult
    public static func apply(_ entries: [Entry], to configuration: inout ServerConfiguration) throws(ConfigFileError) -> Applied {
        var applied = Applied()
        for entry in entries {
            applied.settings.insert(entry.setting)
            switch entry.setting {
            case .requirepassFile:
                guard !entry.value.isEmpty else { throw ConfigFileError(line: entry.line, reason: "\(entry.name): the path is empty") }
                applied.passwordFile = entry.value
                applied.passwordFileLine = entry.line
                configuration.requirePassword = nil
            case .requirepass:
                applied.passwordFile = nil
                fallthrough
            default:
                do {
                    try entry.setting.apply(entry.value, to: &configuration)
                } catch {
                    throw ConfigFileError(line: entry.line, reason: "\(entry.name): \(error.description)")
                }
            }
        }
        return applied
    }

    // MARK: Lexing

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0B || byte == 0x0C
    }

    private static func trimmed(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var bytes = line
        while let first = bytes.first, Self.isBlank(first) { bytes.removeFirst() }
        while let last = bytes.last, Self.isBlank(last) { bytes.removeLast() }
        return bytes
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Splits one trimmed line into words as redis.conf's reader does.
    /// - Throws: ``SettingError`` for an unterminated quote or a quote followed by more text.
    static func splitWords(_ line: ArraySlice<UInt8>) throws(SettingError) -> [[UInt8]] {
        let quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'"), backslash = UInt8(ascii: "\\")
        var words: [[UInt8]] = []
        var i = line.startIndex
        let end = line.endIndex
        while true {
            while i < end, Self.isBlank(line[i]) { i += 1 }
            if i == end { return words }
            var word: [UInt8] = []
            var inDouble = false, inSingle = false
            wordLoop: while true {
                if inDouble {
                    guard i < end else { throw SettingError("unbalanced quotes") }
                    let byte = line[i]
                    if byte == backslash, i + 3 < end, line[i + 1] == UInt8(ascii: "x"),
                       let high = Self.hexValue(line[i + 2]), let low = Self.hexValue(line[i + 3]) {
                        word.append(high << 4 | low)
                        i += 4
                        continue
                    }
                    if byte == backslash, i + 1 < end {
                        switch line[i + 1] {
                        case UInt8(ascii: "n"): word.append(0x0A)
                        case UInt8(ascii: "r"): word.append(0x0D)
                        case UInt8(ascii: "t"): word.append(0x09)
                        case UInt8(ascii: "b"): word.append(0x08)
                        case UInt8(ascii: "a"): word.append(0x07)
                        case let other: word.append(other)
                        }
                        i += 2
                        continue
                    }
                    if byte == quote {
                        // The closing quote must end the word (Redis: "closing quote must be
                        // followed by a space or nothing at all").
                        i += 1
                        guard i == end || Self.isBlank(line[i]) else { throw SettingError("text right after a closing quote") }
                        break wordLoop
                    }
                    word.append(byte)
                    i += 1
                } else if inSingle {
                    guard i < end else { throw SettingError("unbalanced quotes") }
                    let byte = line[i]
                    if byte == backslash, i + 1 < end, line[i + 1] == apostrophe {
                        word.append(apostrophe)
                        i += 2
                        continue
                    }
                    if byte == apostrophe {
                        i += 1
                        guard i == end || Self.isBlank(line[i]) else { throw SettingError("text right after a closing quote") }
                        break wordLoop
                    }
                    word.append(byte)
                    i += 1
                } else {
                    guard i < end else { break wordLoop }
                    let byte = line[i]
                    if Self.isBlank(byte) { break wordLoop }
                    if byte == quote {
                        inDouble = true
                    } else if byte == apostrophe {
                        inSingle = true
                    } else {
                        word.append(byte)
                    }
                    i += 1
                }
            }
            words.append(word)
        }
    }
}

/// A bad line of a config file: `reactord: FILE:LINE: <reason>` once the executable adds the name.
public struct ConfigFileError: Error, CustomStringConvertible, Sendable, Equatable {
    public let line: Int
    public let reason: String
    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }
    /// `12: port: '99999' is not a port (0-65535, or off)`
    public var description: String { "\(self.line): \(self.reason)" }
}
