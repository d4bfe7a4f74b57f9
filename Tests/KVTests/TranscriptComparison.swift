// The differential tests that replay scripted conversations (pub/sub, tracking, client reply
// modes) compare them one way: each script against Redis and against reactord, in RESP2 and in
// RESP3, the first differing frame reported.

extension RedisDifferentialTests.Pair {
    /// Plays every script against both servers in RESP2 and RESP3 through `transcript` (the frames
    /// a script's connections received, as text). - Returns: for each script that differs its first
    /// differing frame (and a line when the frame counts differ), and how many frames Redis sent.
    func compareTranscripts<Script>(
        _ scripts: [(String, Script)], _ transcript: (Script, _ port: Int, _ protocolVersion: Int) throws -> [String]
    ) throws -> (differences: [String], frames: Int) {
        var differences: [String] = []
        var frames = 0
        for version in [2, 3] {
            for (name, script) in scripts {
                let theirs = try transcript(script, self.oracle.port, version)
                let ours = try transcript(script, self.server.kvPort, version)
                frames += theirs.count
                if let (mine, redis) = zip(ours, theirs).first(where: { $0 != $1 }) {
                    differences.append("[\(name), RESP\(version)]\n    reactord: \(mine)\n    redis:    \(redis)")
                }
                if ours.count != theirs.count { differences.append("[\(name), RESP\(version)] frame counts differ") }
            }
        }
        return (differences, frames)
    }
}
