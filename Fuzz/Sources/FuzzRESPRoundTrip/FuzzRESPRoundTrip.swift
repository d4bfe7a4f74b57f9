// Fuzz target: the reply encoder (Sources/Services/ReplyWriter.swift) and the request parser in
// round trip. The input is a program of replies (status, bulk, null, integer, double, boolean,
// arrays, maps, sets, verbatim text, errors) written in RESP2 or RESP3; an independent RESP
// reader must read back exactly the values written. Then arrays of bulk strings built from the
// input are encoded and parsed back as requests, fed in arbitrary reads.
// Input: [flags: bit 0 = RESP3][read pattern][program...].

import FuzzSupport
@testable import Services

/// Reads small pieces of the program.
struct Program {
    var input: FuzzInput

    mutating func bytes() -> [UInt8] {
        let count = Int(self.input.byte() % 48)
        return (0..<count).map { _ in self.input.byte() }
    }

    mutating func int64() -> Int64 {
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(self.input.byte()) << (8 * UInt64(i)) }
        return Int64(bitPattern: value)
    }

    var isDone: Bool { self.input.rest.isEmpty }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESPRoundTrip(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var program = Program(input: FuzzInput(data, size))
    let resp3 = program.input.byte() & 1 == 1
    let pattern = program.input.byte() % 32
    var writer = ReplyWriter(encoding: resp3 ? .resp3 : .resp2)
    var expected: [RESPValue] = []
    var doubles: [Double] = []  // checked by value: the text is the encoder's choice
    var requests: [[[UInt8]]] = []
    while !program.isDone {
        let op = program.input.byte() % 13
        switch op {
        case 0:
            writer.ok()
            expected.append(.simple(Array("OK".utf8)))
        case 1:
            let text = program.bytes()
            writer.status(bytes: text)
            expected.append(.simple(text.map { $0 == 13 || $0 == 10 ? 32 : $0 }))
        case 2:
            let value = program.bytes()
            writer.bulk(value)
            expected.append(.bulk(value))
        case 3:
            writer.null()
            expected.append(resp3 ? .null : .bulk(nil))
        case 4:
            let n = program.int64()
            writer.integer(n)
            expected.append(.integer(n))
        case 5:
            let d = Double(bitPattern: UInt64(bitPattern: program.int64()))
            writer.double(d)
            doubles.append(d)
            expected.append(.double([]))  // placeholder, compared by value below
        case 6:
            let b = program.input.byte() & 1 == 1
            writer.boolean(b)
            expected.append(resp3 ? .boolean(b) : .integer(b ? 1 : 0))
        case 7, 8, 9:
            let count = Int(program.input.byte() % 5)
            let elements = op == 8 ? 2 * count : count
            switch op {
            case 7: writer.arrayHeader(count)
            case 8: writer.mapHeader(count)
            default: writer.setHeader(count)
            }
            let items = (0..<elements).map { _ in program.bytes() }
            for item in items { writer.bulk(item) }
            let values = items.map { RESPValue.bulk($0) }
            if op == 8 && resp3 {
                expected.append(.map(stride(from: 0, to: values.count, by: 2).map { (values[$0], values[$0 + 1]) }))
            } else if op == 9 && resp3 {
                expected.append(.set(values))
            } else {
                expected.append(.array(values))
            }
            if op == 7 && count > 0 { requests.append(items) }
        case 10:
            let text = program.bytes()
            writer.verbatim(text)
            expected.append(resp3 ? .verbatim(format: Array("txt".utf8), text: text) : .bulk(text))
        case 11:
            writer.nullArray()
            expected.append(resp3 ? .null : .array(nil))
        default:
            writer.error(.notFound)
            expected.append(.error([]))  // placeholder: any error line
        }
    }
    let output = writer.output
    switch RESPReader.readAll(output) {
    case .failure(let error):
        require(false, "encoder wrote malformed RESP \(error): \(printable(output))")
    case .success(let values):
        require(values.count == expected.count, "\(values.count) values read back, \(expected.count) written")
        var nextDouble = 0
        for (value, wanted) in zip(values, expected) {
            switch (value, wanted) {
            case (.error, .error): continue
            case (.double(let text), .double), (.bulk(.some(let text)), .double):
                let d = doubles[nextDouble]
                nextDouble += 1
                let string = String(decoding: text, as: UTF8.self)
                let read = string == "inf" ? Double.infinity : string == "-inf" ? -Double.infinity
                    : string == "nan" ? Double.nan : Double(string)
                require(read.map { $0 == d || ($0.isNaN && d.isNaN) } ?? false, "double \(d) written as \(string)")
            default:
                require(value == wanted, "read back \(value), wrote \(wanted)")
            }
        }
    }

    // Requests: arrays of bulks, encoded as above, parsed back from arbitrary reads.
    var encoded = ReplyWriter(encoding: .resp2)
    for request in requests {
        encoded.arrayHeader(request.count)
        for argument in request { encoded.bulk(argument) }
    }
    var parser = RESPParser(maxBulkBytes: 512, maxRequestBytes: 1 << 20)
    var parsed: [[[UInt8]]] = []
    encoded.output.withUnsafeBytes { bytes in
        for read in chunks(of: bytes, pattern: pattern) {
            parser.append(read)
            while case .request(let arguments) = parser.next() {
                parsed.append((0..<arguments.count).map { Array(arguments[$0]) })
            }
        }
    }
    require(parsed == requests, "\(requests.count) requests encoded, \(parsed.count) parsed back")
    require(parser.bufferedByteCount == 0, "\(parser.bufferedByteCount) bytes left after the last request")
    return 0
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzRESPRoundTrip) }
}
