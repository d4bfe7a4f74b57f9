// What protected mode tells a peer it refuses (docs/protocol.md "Authentication"): one line in
// the form the service speaks, then the caller closes. Deciding who is refused (loopback or
// not, a password set or not) is the server's business; this file only holds the words.

/// The refusal lines of protected mode.
public enum ProtectedMode {
    /// The text after `DENIED`, the same on every service (Redis words its own the same way).
    public static let reason =
        "reactord is in protected mode: set a password (--requirepass) or start with --protected-mode no"

    /// `-DENIED <reason>\r\n`: the kv port's refusal for a RESP peer.
    public static let respLine: [UInt8] = Array("-DENIED \(reason)\r\n".utf8)

    /// `ERR DENIED <reason>\n`: the refusal on echo, time and file, and for a kv line-protocol peer.
    public static let errorLine: [UInt8] = Array("ERR DENIED \(reason)\n".utf8)

    /// The kv port's refusal for a peer whose first byte is `firstByte`: the protocol that byte
    /// selects (``KVSession/wireProtocol(firstByte:)``) decides the form.
    public static func kvLine(firstByte: UInt8) -> [UInt8] {
        KVSession.wireProtocol(firstByte: firstByte) == .resp ? Self.respLine : Self.errorLine
    }
}
