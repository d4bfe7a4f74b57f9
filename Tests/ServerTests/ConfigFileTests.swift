// The config-file reader and the setting parsers, with no process and no file: redis.conf's
// lexical rules (comments, quotes and escapes, blanks), Redis's names beside ours, the line
// number of every refusal, and the values each setting takes and refuses.

import Logging
import Server
import Testing

@Suite struct ConfigFileTests {
    func configuration(_ text: String) throws(ConfigFileError) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        try ConfigFile.apply(ConfigFile.parse(text: text), to: &configuration)
        return configuration
    }

    /// The error a text gives, or nil if it was accepted.
    func refusal(_ text: String) -> ConfigFileError? {
        do {
            _ = try self.configuration(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func commentsBlankLinesAndIndentationAreSkippedAndLinesAreNumbered() throws {
        let text = "# a comment\n\n   # indented comment\n\t\r\nkv-port 1234\r\n  echo-port   off  \n"
        let entries = try ConfigFile.parse(text: text)
        #expect(entries.map(\.line) == [5, 6])
        #expect(entries.map(\.setting) == [.kvPort, .echoPort])
        #expect(entries.map(\.value) == ["1234", "off"])
    }

    @Test func aHashInsideALineIsData() throws {
        // As redis.conf: only a line whose first non-blank character is '#' is a comment.
        let config = try self.configuration("requirepass abc#def\n")
        #expect(config.requirePassword == "abc#def")
    }

    @Test func doubleQuotesTakeRedisEscapes() throws {
        let entries = try ConfigFile.parse(text: #"requirepass "a b\"c\\d\x41\x7a\n\t\q""#)
        #expect(entries.first?.value == "a b\"c\\dAz\n\tq")
        let empty = try ConfigFile.parse(text: #"requirepass """#)
        #expect(empty.first?.value == "")
    }

    @Test func singleQuotesKeepBackslashesExceptBeforeAQuote() throws {
        let entries = try ConfigFile.parse(text: #"data-dir 'C:\dir\n it\'s'"#)
        #expect(entries.first?.value == #"C:\dir\n it's"#)
    }

    @Test func aQuoteMayStartInsideAWord() throws {
        // sdssplitargs: a quote opens quoting wherever it appears outside quotes.
        let entries = try ConfigFile.parse(text: #"data-dir ab"c d""#)
        #expect(entries.first?.value == "abc d")
    }

    @Test(arguments: [
        (#"requirepass "open"#, "unbalanced quotes"),
        (#"requirepass 'open"#, "unbalanced quotes"),
        (#"requirepass "a"b"#, "closing quote"),
        (#"requirepass 'a'b"#, "closing quote"),
    ])
    func badQuotingIsRefusedWithItsLine(text: String, reason: String) {
        let error = self.refusal("# first\n" + text + "\n")
        #expect(error?.line == 2 && error?.reason.contains(reason) == true, "\(String(describing: error))")
    }

    @Test func redisNamesMeanOurSettings() throws {
        let config = try self.configuration("""
            port 7000
            bind 127.0.0.2
            dir /var/lib/reactord
            maxclients 50
            maxmemory 2gb
            maxmemory-policy allkeys-lru
            appendfsync everysec
            timeout 0
            requirepass secret
            protected-mode no
            loglevel warning
            proto-max-bulk-len 1mb
            """)
        #expect(config.kvPort == .port(7000))
        #expect(config.host == "127.0.0.2")
        #expect(config.dataDirectory == "/var/lib/reactord")
        #expect(config.maxConnections == 50)
        #expect(config.maxMemoryBytes == 2 << 30)
        #expect(config.evictionPolicy == .allKeysLRU)
        #expect(config.fsync == "everysec")
        #expect(config.idleTimeout == .zero)
        #expect(config.requirePassword == "secret")
        #expect(config.protectedMode == false)
        #expect(config.logLevel == .warning)
        #expect(config.maxValueBytes == 1 << 20)
    }

    @Test func ourNamesSetEverySetting() throws {
        let config = try self.configuration("""
            host ::1
            kv-port 0
            echo-port 1
            time-port off
            file-port 65535
            metrics-port 9100
            data-dir "/srv/my data"
            files-root files
            fsync no
            max-connections 3
            idle-timeout 2.5
            max-line 64kb
            max-value 2M
            max-memory 100
            eviction volatile-ttl
            protected-mode yes
            log-level debug
            """)
        #expect(config.host == "::1")
        #expect(config.kvPort == .port(0) && config.echoPort == .port(1) && config.timePort == .off)
        #expect(config.filePort == .port(65535) && config.metricsPort == .port(9100))
        #expect(config.dataDirectory == "/srv/my data" && config.filesRoot == "files")
        #expect(config.fsync == "no" && config.maxConnections == 3 && config.idleTimeout == .milliseconds(2500))
        #expect(config.maxLineBytes == 65536 && config.maxValueBytes == 2_000_000 && config.maxMemoryBytes == 100)
        #expect(config.evictionPolicy == .volatileTTL && config.protectedMode && config.logLevel == .debug)
    }

    @Test func pubSubSettingsTakeRedisLines() throws {
        // redis.conf's form: the limit's groups as words, each line applied onto the last.
        let config = try self.configuration("""
            notify-keyspace-events KEx
            client-output-buffer-limit pubsub 16mb 4mb 30
            client-output-buffer-limit normal 1mb 0 0 replica 128mb 32mb 10
            """)
        #expect(config.keyspaceEvents.letters == "xKE")
        #expect(config.outputBufferLimits.description == "normal 1048576 0 0 slave 134217728 33554432 10 pubsub 16777216 4194304 30")
        #expect(try self.configuration("notify-keyspace-events \"\"\n").keyspaceEvents.isEmpty)
        #expect(try self.configuration("client-output-buffer-limit \"pubsub 1mb 0 0\"\n").outputBufferLimits.pubsub.hard == 1 << 20)
        // Redis's reasons, with the line.
        #expect(self.refusal("\nnotify-keyspace-events KEQ\n")?.line == 2)
        #expect(self.refusal("client-output-buffer-limit pubsub 1mb 0\n")?.reason
            == "client-output-buffer-limit: Wrong number of arguments in buffer limit configuration.")
        #expect(self.refusal("client-output-buffer-limit nobody 0 0 0\n")?.reason
            == "client-output-buffer-limit: Invalid client class specified in buffer limit configuration.")
        #expect(self.refusal("client-output-buffer-limit pubsub x 0 0\n") != nil)
    }

    @Test func namesAndKeywordsAreCaseInsensitiveAndTheLastLineWins() throws {
        let config = try self.configuration("KV-PORT 1\nPort 2\nappendfsync EVERYSEC\nprotected-mode NO\n")
        #expect(config.kvPort == .port(2))
        #expect(config.fsync == "everysec" && !config.protectedMode)
    }

    @Test(arguments: [("debug", Logger.Level.debug), ("verbose", .debug), ("notice", .info), ("info", .info),
                      ("warning", .warning), ("warn", .warning), ("error", .error)])
    func redisLogLevelsMapToOurs(name: String, level: Logger.Level) throws {
        #expect(try self.configuration("loglevel \(name)").logLevel == level)
    }

    @Test(arguments: [
        ("no-such-setting 1", "unknown setting 'no-such-setting'"),
        ("include other.conf", "unknown setting 'include'"),
        ("kv-port 99999", "kv-port: '99999' is not a port (0-65535, or off)"),
        ("port -1", "port: '-1' is not a port (0-65535, or off)"),
        ("bind example.com", "bind: 'example.com' is not a numeric"),
        ("bind 127.0.0.1 -::1", "bind: reactord listens on one address, this line gives 2"),
        ("kv-port", "kv-port needs a value"),
        ("kv-port 1 2", "kv-port takes one value, this line gives 2"),
        ("fsync sometimes", "fsync: 'sometimes' is not one of always, everysec, no"),
        ("maxclients 0", "maxclients: '0' is not a whole number of 1 or more"),
        ("timeout -1", "timeout: '-1' is not a number of seconds"),
        ("idle-timeout nan", "idle-timeout: 'nan' is not a number of seconds"),
        ("max-line 0", "max-line: '0' is less than 1"),
        ("maxmemory 10tb", "maxmemory: '10tb' is not a size in bytes"),
        ("maxmemory-policy allkeys-lfu", "maxmemory-policy: 'allkeys-lfu' is not one of noeviction"),
        ("protected-mode maybe", "protected-mode: 'maybe' is not yes or no"),
        ("loglevel nothing", "loglevel: 'nothing' is not one of error"),
        ("data-dir \"\"", "data-dir: the path is empty"),
        ("data-dir \"a\\x00b\"", "data-dir: a value may not contain a NUL byte"),
        ("requirepass-file \"\"", "requirepass-file: the path is empty"),
    ])
    func badLinesAreRefusedNamingTheLineAndTheReason(line: String, reason: String) {
        let error = self.refusal("# reactord.conf\nkv-port 1\n\n\(line)\necho-port 2\n")
        #expect(error?.line == 4, "\(line): \(String(describing: error))")
        #expect(error?.reason.hasPrefix(reason) == true, "\(line): \(String(describing: error?.reason))")
    }

    @Test func aValueThatIsNotUTF8IsRefused() {
        let bytes = Array("kv-port 1\nrequirepass \"\\xff\"\n".utf8)
        #expect(throws: ConfigFileError(line: 2, reason: "requirepass: the value is not valid UTF-8")) {
            _ = try ConfigFile.parse(bytes: bytes)
        }
    }

    @Test func passwordFileAndPasswordLinesReplaceEachOther() throws {
        var config = ServerConfiguration()
        let file = try ConfigFile.apply(ConfigFile.parse(text: "requirepass a\nrequirepass-file /run/pw\n"), to: &config)
        #expect(file.passwordFile == "/run/pw" && file.passwordFileLine == 2 && config.requirePassword == nil)
        config = ServerConfiguration()
        let inline = try ConfigFile.apply(ConfigFile.parse(text: "requirepass-file /run/pw\nrequirepass b\n"), to: &config)
        #expect(inline.passwordFile == nil && config.requirePassword == "b")
        config = ServerConfiguration()
        try ConfigFile.apply(ConfigFile.parse(text: "requirepass \"\"\n"), to: &config)
        #expect(config.requirePassword == nil, "an empty password means none, as in Redis")
    }

    @Test func describeListsEverySettingOnceWithThePasswordHidden() throws {
        var config = ServerConfiguration()
        config.requirePassword = "hunter2"
        let text = Setting.describe(config)
        #expect(!text.contains("hunter2"))
        #expect(text.contains("requirepass (set)\n"))
        #expect(text.contains("idle-timeout 300\n"), "seconds without a trailing .0")
        let names = text.split(separator: "\n").map { String($0.split(separator: " ")[0]) }
        #expect(names == Setting.allCases.filter { $0 != .requirepassFile }.map(\.rawValue))
    }

    @Test func describedSettingsReadBackToTheSameConfiguration() throws {
        // What --check-config prints uses the names and value forms the file takes (paths
        // without blanks, the password line aside), so it can be pasted into a config file.
        let original = try self.configuration("kv-port 0\nidle-timeout 0.25\nmax-value 3kb\nloglevel notice\neviction allkeys-random\n")
        let printed = Setting.describe(original).split(separator: "\n").filter { !$0.hasPrefix("requirepass") }.joined(separator: "\n")
        let reread = try self.configuration(printed)
        #expect(Setting.describe(reread) == Setting.describe(original))
        #expect(reread.idleTimeout == .milliseconds(250) && reread.maxValueBytes == 3072 && reread.kvPort == .port(0))
        #expect(reread.logLevel == .info && reread.evictionPolicy == .allKeysRandom)
    }

    @Test func everySettingRefusesGarbageWithoutTrapping() {
        // Every parser, fed values a fuzzer would try: a refusal or a value, never a crash.
        let samples = ["", " ", "-", "-0", "+1", "1e309", "9223372036854775807", "99999999999999999999", "0x10",
                       "inf", "1gbb", "\u{FFFD}", "00000000000000000000001", "1.", ".5", "..", "off", "OFF"]
        for setting in Setting.allCases where setting != .requirepassFile {
            for sample in samples {
                var config = ServerConfiguration()
                _ = try? setting.apply(sample, to: &config)
            }
        }
    }
}
