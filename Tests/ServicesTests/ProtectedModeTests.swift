// Protected mode's refusal lines: the words docs/protocol.md gives, in the form the kv peer's
// first byte selects.

import Services
import Testing

@Suite struct ProtectedModeTests {
    static let text = "reactord is in protected mode: set a password (--requirepass) or start with --protected-mode no"

    @Test func respPeerGetsADeniedError() {
        #expect(ProtectedMode.kvLine(firstByte: UInt8(ascii: "*")) == Array("-DENIED \(Self.text)\r\n".utf8))
    }

    @Test func anyOtherFirstByteGetsTheLineProtocolForm() {
        for first in ["g", "P", "\r", "\n", " ", "\u{0}", "$", "+"] {
            #expect(ProtectedMode.kvLine(firstByte: first.utf8.first!) == Array("ERR DENIED \(Self.text)\n".utf8))
        }
        #expect(ProtectedMode.errorLine == Array("ERR DENIED \(Self.text)\n".utf8))
    }
}
