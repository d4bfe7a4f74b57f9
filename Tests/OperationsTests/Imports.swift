// The helpers every file of this target uses (in-process servers, loopback clients, child
// processes, TestFailure, Shared, pollFor, TemporaryDirectory), imported once for all of them.

@_exported import ServerTestSupport
