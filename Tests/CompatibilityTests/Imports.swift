// The helpers every file of this target uses (in-process servers, child processes), imported once.

@_exported import ServerTestSupport
