// AUTH (RESP and the line protocol's `auth`) and the password check HELLO … AUTH shares. The
// password is the context's (`--requirepass`); the comparison takes the same time whatever the
// input, and the password is never echoed, logged or shown.

extension Commands {
    /// AUTH [username] password. With no password set, `AUTH password` is an error and
    /// `AUTH default anything` succeeds, as Redis's default user with `nopass` behaves.
    static func auth(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard arguments.count <= 3 else { return call.reply.error(.syntax) }
        let user: ArraySlice<UInt8>? = arguments.count == 3 ? arguments[1] : nil
        if user == nil && call.state.password == nil { return call.reply.error(.noPasswordSet) }
        guard Self.checkCredentials(user: user, password: arguments[arguments.count - 1], &call) else {
            return call.reply.error(.wrongPassword)
        }
        call.client.markAuthenticated()
        call.reply.ok()
    }

    /// Whether `user` (nil: the default user) and `password` open the connection.
    static func checkCredentials(user: ArraySlice<UInt8>?, password: ArraySlice<UInt8>, _ call: inout CommandCall) -> Bool {
        if let user, !user.elementsEqual("default".utf8) { return false }  // the only user; names are case-sensitive
        guard let expected = call.state.password else { return true }
        return Password.matches(password, expected)
    }
}

/// The password comparison (AUTH, HELLO, and the metrics port's bearer token).
public enum Password {
    /// Compares in time that depends only on the two lengths, never on the bytes: every byte of
    /// `expected` is read exactly once and `given` is read `expected.count` times (cycling
    /// through it), whatever the first mismatch; differences are OR-ed together with no branch
    /// on them, and a length difference is folded into the same result. Redis's
    /// `time_independent_strcmp` has the same aim. Generic so a test can count the reads.
    public static func matches<Given: RandomAccessCollection<UInt8>, Expected: RandomAccessCollection<UInt8>>(
        _ given: Given, _ expected: Expected
    ) -> Bool where Given.Index == Int, Expected.Index == Int {
        var difference = UInt(bitPattern: given.count ^ expected.count)
        let givenCount = given.count
        var i = 0
        for byte in expected {
            let other = givenCount == 0 ? 0 : given[given.startIndex + i % givenCount]
            difference |= UInt(other ^ byte)
            i += 1
        }
        return difference == 0
    }
}

/// Whether a connection has authenticated, shared by its session (which sets it) and its RESP
/// parser (which applies Redis's unauthenticated limits until it is set). Loop thread only.
final class AuthenticationState {
    @exclusivity(unchecked) var isAuthenticated = false
}
