// The lines of database.txt beyond strings (docs/file-formats.md "Collections"): a collection is a block
//
//     #!hash<TAB>user:1<TAB>@1796000000000       the type (TYPE's name), the key, its deadline if any
//     <TAB>name<TAB>alice                        one line per element: a tab, then its fields
//     <TAB>age<TAB>42                            (two for a hash or a sorted set, one for a list or set)
//     #!end
//
// escaped as strings are. No string line starts with `#` (a key starting with `#` is written `\x23`), so
// `#!` lines never read as strings; inside a block every line is an element (a tab first), a comment, or
// blank, and a block must end with `#!end`, so an element never reads as a string either (a string line
// for the empty key starts with a tab too: it is only ever outside a block). Each element is a line of its
// own: a 10,000,000-element collection is streamed out and in a line at a time. A sorted-set score is
// written as the shortest decimal that reads back as the same Double (`inf`, `-inf`).
//
// `#!db<TAB>N`: the keys that follow belong to database N (Databases.swift); database 0's keys come first
// and unmarked, so a server with strings in database 0 only writes the seed's format byte for byte.
// `#!function<TAB>name` blocks: a function library (FunctionLibraries.swift), its one element line the
// code, escaped; database 0's root keeps it whatever `#!db` line came before.
//
// `#!segments<TAB>N`: the file already holds every record of the rotated log segments numbered up to N
// (`database.wal.1` … `database.wal.N`), so replay skips them: RENAME and COPY are not idempotent, and a
// crash after a compaction's rename and before its segments are deleted leaves them on disk (Recovery.swift).

/// The block being read, if any: state carried from line to line by ``Snapshot/load(path:io:into:diskValues:)``.
struct TypedBlock {
    /// The open block's entry, type and header line, or nil outside a block.
    private var open: (index: Int, type: ValueType, line: Int)?
    /// The open function block's library name, code (once its line is read) and header line.
    private var function: (name: [UInt8], code: [UInt8]?, line: Int)?

    var isClosed: Bool { self.open == nil && self.function == nil }
    /// The highest rotated log segment the file already holds, from its `#!segments<TAB>N` line (0 without
    /// one): recovery and compaction skip segments up to it (Recovery.swift).
    private(set) var coveredSegments = 0
    /// The database the lines belong to: 0 until a `#!db<TAB>n` line.
    private(set) var database = 0

    /// A `#!` line: a block's header or end, or a reserved marker.
    mutating func directive(
        _ line: UnsafeRawBufferPointer, number: Int, path: String, into root: Keyspace, values: DiskValues?
    ) throws(StoreError) {
        let keyspace = root.database(self.database)
        let values = self.database == 0 ? values : nil
        let body = UnsafeRawBufferPointer(rebasing: line[2...])
        let nameEnd = body.firstIndex(of: Snapshot.tab) ?? body.count
        let name = body[..<nameEnd]
        func fail(_ detail: String) -> StoreError {
            StoreError(operation: "parse", path: path, detail: "line \(number): \(detail)")
        }
        if name.elementsEqual("end".utf8), let function = self.function {
            guard let code = function.code else { throw fail("the function block of line \(function.line) has no code line") }
            root.setFunctionLibrary(function.name, code: code)
            self.function = nil
            return
        }
        if let function = self.function {
            throw fail("the function block of line \(function.line) is not closed with #!end")
        }
        if name.elementsEqual("end".utf8) {
            guard let open = self.open else { throw fail("#!end outside a block") }
            self.open = nil
            if keyspace.collection(at: open.index)!.count == 0 {
                keyspace.remove(at: open.index)  // an empty collection is no key (as in Redis)
            } else {
                keyspace.compactCollection(at: open.index)
            }
            return
        }
        if let open = self.open {
            throw fail("the \(open.type) block of line \(open.line) is not closed with #!end")
        }
        if name.elementsEqual("db".utf8) {
            let digits = body[nameEnd...].dropFirst()
            guard body[nameEnd...].first == Snapshot.tab, !digits.isEmpty, digits.count <= 5,
                  digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
            else { throw fail("a #!db line's second field must be a database number") }
            let index = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            guard index <= Int(Record.maximumDatabaseIndex) else { throw fail("database \(index) is out of range") }
            self.database = index
            return
        }
        if name.elementsEqual("function".utf8) {
            guard body[nameEnd...].first == Snapshot.tab, nameEnd + 1 < body.count else {
                throw fail("#!function without a library name")
            }
            let field = UnsafeRawBufferPointer(rebasing: body[(nameEnd + 1)...])
            var library = [UInt8](repeating: 0, count: field.count)
            let length = library.withUnsafeMutableBufferPointer { Snapshot.unescape(field, into: $0.baseAddress!) }
            guard let length, length > 0 else { throw fail("bad escape (use \\\\ \\n \\r \\t or \\xHH)") }
            library.removeLast(library.count - length)
            self.function = (library, nil, number)
            return
        }
        if name.elementsEqual("segments".utf8) {
            let digits = body[nameEnd...].dropFirst()
            guard body[nameEnd...].first == Snapshot.tab, !digits.isEmpty, digits.count <= 18,
                  digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
            else { throw fail("a #!segments line's second field must be a segment number") }
            self.coveredSegments = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            return
        }
        guard let type = ValueType(name: name), type != .string else {
            throw fail("unknown #! line (expected #!hash, #!list, #!set, #!zset, #!end, #!db or #!segments)")
        }
        guard nameEnd < body.count else { throw fail("#!\(type) without a key") }
        var field = UnsafeRawBufferPointer(rebasing: body[(nameEnd + 1)...])
        var deadline: Int64?
        if let tab = field.lastIndex(of: Snapshot.tab) {
            guard let parsed = Snapshot.deadlineField(UnsafeRawBufferPointer(rebasing: field[(tab + 1)...])) else {
                throw fail("a #!\(type) line's third field must be @ and the deadline in Unix milliseconds")
            }
            deadline = parsed
            field = UnsafeRawBufferPointer(rebasing: field[..<tab])
        }
        guard let empty = CollectionTypes.makeEmpty(type) else {
            throw fail("this server has no \(type) type")
        }
        var key = [UInt8](repeating: 0, count: field.count)
        let keyLength = key.withUnsafeMutableBufferPointer { Snapshot.unescape(field, into: $0.baseAddress!) }
        guard let keyLength else { throw fail("bad escape (use \\\\ \\n \\r \\t or \\xHH)") }
        key.removeLast(key.count - keyLength)
        key.withUnsafeBytes { key in
            values?.forget(key)
            let index = keyspace.set(key, collection: empty, deadline: deadline)
            self.open = (index, type, number)
        }
    }

    /// An element line of the open block (`rawLine` starts with a tab; `length` leaves out a CR),
    /// unescaped in place.
    mutating func element(
        _ rawLine: UnsafeMutableRawBufferPointer, _ length: Int, number: Int, path: String, into keyspace: Keyspace
    ) throws(StoreError) {
        func fail(_ detail: String) -> StoreError {
            StoreError(operation: "parse", path: path, detail: "line \(number): \(detail)")
        }
        let line = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(rawLine)[..<length])
        if let function = self.function {
            guard line.first == Snapshot.tab, function.code == nil else {
                throw fail("the function block of line \(function.line) holds one line, its code, then #!end")
            }
            let output = rawLine.baseAddress!.assumingMemoryBound(to: UInt8.self)
            guard let codeLength = Snapshot.unescape(UnsafeRawBufferPointer(rebasing: line[1...]), into: output) else {
                throw fail("bad escape (use \\\\ \\n \\r \\t or \\xHH)")
            }
            self.function!.code = Array(UnsafeBufferPointer(start: output, count: codeLength))
            return
        }
        guard let open = self.open else { preconditionFailure("no block open") }
        guard line.first == Snapshot.tab else {
            throw fail("the \(open.type) block of line \(open.line) is not closed with #!end")
        }
        let text = UnsafeRawBufferPointer(rebasing: line[1...])
        let split = text.firstIndex(of: Snapshot.tab)
        guard (split != nil) == (open.type.fieldsPerElement == 2) else {
            throw fail("a \(open.type) element has \(open.type.fieldsPerElement) field(s)")
        }
        let output = rawLine.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let firstText = UnsafeRawBufferPointer(rebasing: text[..<(split ?? text.count)])
        guard let firstLength = Snapshot.unescape(firstText, into: output) else {
            throw fail("bad escape (use \\\\ \\n \\r \\t or \\xHH)")
        }
        var second = UnsafeRawBufferPointer(start: nil, count: 0)
        var score = 0.0
        if let split {
            let secondText = UnsafeRawBufferPointer(rebasing: text[(split + 1)...])
            guard let secondLength = Snapshot.unescape(secondText, into: output + firstLength) else {
                throw fail("bad escape (use \\\\ \\n \\r \\t or \\xHH)")
            }
            second = UnsafeRawBufferPointer(start: output + firstLength, count: secondLength)
            if open.type == .zset {
                guard let parsed = Double(String(decoding: second, as: UTF8.self)), !parsed.isNaN else {
                    throw fail("a sorted-set score must be a number")
                }
                score = parsed
            }
        }
        let first = UnsafeRawBufferPointer(start: output, count: firstLength)
        _ = keyspace.mutateCollection(at: open.index) { object in
            if open.type == .zset {
                withUnsafeBytes(of: score) { object.apply(.add, position: -1, Element(first, $0)) }
            } else {
                object.apply(.add, position: -1, Element(first, second))
            }
        }
    }

    /// End of file: a block still open is an error.
    func finish(path: String) throws(StoreError) {
        if let function = self.function {
            throw StoreError(operation: "parse", path: path,
                             detail: "the function block of line \(function.line) is not closed with #!end")
        }
        if let open = self.open {
            throw StoreError(operation: "parse", path: path,
                             detail: "the \(open.type) block of line \(open.line) is not closed with #!end")
        }
    }
}

extension Snapshot {
    /// Writes the block of the collection at entry `index` (header, element lines, `#!end`), escaping
    /// each field a piece at a time as string values are (the output buffer never holds more than a
    /// chunk). `yielding`: give the CPU away every so often (CPUYield.swift; not on the loop thread).
    static func writeBlock(
        _ keyspace: Keyspace, at index: Int, into output: inout OutputBuffer, fd: CInt, path: String, io: StoreIO,
        yielding: Bool = true, stopIf cancelled: () -> Bool
    ) throws(StoreError) {
        let object = keyspace.collection(at: index)!
        output.append(byte: Self.hash)
        output.append(byte: Self.bang)
        output.append(Array(object.type.name.utf8))
        output.append(byte: Self.tab)
        try Self.escapeInPieces(keyspace.key(at: index), escapeLeadingHash: false, into: &output, fd: fd, path: path,
                                io: io, stopIf: cancelled)
        if let deadline = keyspace.deadline(at: index) {
            output.append(byte: Self.tab)
            output.append(byte: Self.at)
            output.append(Array(String(deadline).utf8))
        }
        output.append(byte: Self.newline)
        var failure: StoreError?
        var pace = CPUYield()
        object.forEachElement { element in
            if yielding { pace.tick() }
            do throws(StoreError) {
                output.append(byte: Self.tab)
                try Self.escapeInPieces(element.first, escapeLeadingHash: false, into: &output, fd: fd, path: path,
                                        io: io, stopIf: cancelled)
                if object.type.fieldsPerElement == 2 {
                    output.append(byte: Self.tab)
                    if object.type == .zset {
                        output.append(Self.scoreText(element.second))
                    } else {
                        try Self.escapeInPieces(element.second, escapeLeadingHash: false, into: &output, fd: fd,
                                                path: path, io: io, stopIf: cancelled)
                    }
                }
                output.append(byte: Self.newline)
                return true
            } catch {
                failure = error
                return false
            }
        }
        if let failure { throw failure }
        output.append(Array("#!end\n".utf8))
    }

    /// A sorted-set score (8 bytes, a Double) as the shortest text that reads back as the same value.
    static func scoreText(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        precondition(bytes.count == 8, "a sorted-set score is 8 bytes")
        return Array(bytes.loadUnaligned(as: Double.self).description.utf8)
    }
}
