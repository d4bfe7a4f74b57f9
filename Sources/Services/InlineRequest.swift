// Redis's inline requests on a RESP connection: a request whose first byte is not `*` is one line
// of words, split as Redis's sdssplitargs splits them (sds.c): blanks separate words; "double
// quotes" take the escapes \n \r \t \b \a \xHH and \<any byte>; 'single quotes' take only \';
// a closing quote must be followed by a blank or the end of the line, and a quote left open is
// an error. A NUL byte ends the line, as it ends the C string sdssplitargs reads. The words
// are unescaped in place (a word is never longer than the bytes it was read from), so they stay
// ranges of the parser's buffer like a multibulk's bulks.

enum InlineRequest {
    /// Redis's PROTO_INLINE_MAX_SIZE: a line still without its LF past this many bytes is refused.
    static let maxLineBytes = 64 * 1024

    /// Splits `bytes[start..<end]` (the line without its terminator) into words, rewriting
    /// the bytes in place, and appends each word's range to `words`. Returns false for
    /// unbalanced quotes (the words appended so far are then meaningless).
    static func split(_ bytes: UnsafeMutableBufferPointer<UInt8>, from start: Int, to end: Int, into words: inout [Range<Int>]) -> Bool {
        // `at(i)` reads like sdssplitargs's `*p`: 0 past the end of the line.
        @inline(__always) func at(_ i: Int) -> UInt8 { i < end ? bytes[i] : 0 }
        var p = start
        while true {
            while p < end && isSpace(bytes[p]) { p += 1 }
            if at(p) == 0 { return true }
            var write = p
            let wordStart = p
            var inDouble = false
            var inSingle = false
            var done = false
            while !done {
                let c = at(p)
                if inDouble {
                    if c == UInt8(ascii: "\\") && at(p + 1) == UInt8(ascii: "x"), let high = hex(at(p + 2)), let low = hex(at(p + 3)) {
                        bytes[write] = high << 4 | low
                        write += 1
                        p += 3
                    } else if c == UInt8(ascii: "\\") && at(p + 1) != 0 {
                        p += 1
                        let escaped: UInt8
                        switch at(p) {
                        case UInt8(ascii: "n"): escaped = ASCII.lf
                        case UInt8(ascii: "r"): escaped = ASCII.cr
                        case UInt8(ascii: "t"): escaped = 9
                        case UInt8(ascii: "b"): escaped = 8
                        case UInt8(ascii: "a"): escaped = 7
                        default: escaped = at(p)
                        }
                        bytes[write] = escaped
                        write += 1
                    } else if c == UInt8(ascii: "\"") {
                        if at(p + 1) != 0 && !isSpace(at(p + 1)) { return false }
                        done = true
                    } else if c == 0 {
                        return false
                    } else {
                        bytes[write] = c
                        write += 1
                    }
                } else if inSingle {
                    if c == UInt8(ascii: "\\") && at(p + 1) == UInt8(ascii: "'") {
                        p += 1
                        bytes[write] = UInt8(ascii: "'")
                        write += 1
                    } else if c == UInt8(ascii: "'") {
                        if at(p + 1) != 0 && !isSpace(at(p + 1)) { return false }
                        done = true
                    } else if c == 0 {
                        return false
                    } else {
                        bytes[write] = c
                        write += 1
                    }
                } else {
                    switch c {
                    case UInt8(ascii: " "), ASCII.lf, ASCII.cr, 9, 0: done = true
                    case UInt8(ascii: "\""): inDouble = true
                    case UInt8(ascii: "'"): inSingle = true
                    default:
                        bytes[write] = c
                        write += 1
                    }
                }
                if at(p) != 0 { p += 1 }
            }
            words.append(wordStart..<write)
        }
    }

    /// C's isspace in the "C" locale.
    @inline(__always) private static func isSpace(_ c: UInt8) -> Bool { c == 32 || (c >= 9 && c <= 13) }

    @inline(__always) private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case ASCII.zero...ASCII.nine: c - ASCII.zero
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
