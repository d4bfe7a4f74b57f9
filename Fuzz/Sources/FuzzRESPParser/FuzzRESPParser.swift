// Fuzz target: the RESP request parser (Sources/Services/RESPParser.swift) on arbitrary bytes.
// The same bytes fed whole and in arbitrary reads must give the same requests and the same
// final state (more data needed, or the same protocol error); every request parsed must
// survive a round trip through the reply encoder (ReplyWriter writes it back as an array of
// bulk strings), read back identically by the parser and by an independent RESP reader.
// Input: [read pattern][flags: bit 0 = unauthenticated limits][bytes...].

import FuzzSupport
@testable import Services

/// What a parser made of a stream.
struct Parsed: Equatable {
    var requests: [[[UInt8]]] = []
    var error: RESPParser.ProtocolError?
}

func parse(_ reads: [UnsafeRawBufferPointer], unauthenticated: Bool) -> (Parsed, buffered: Int) {
    // maxRequestBytes above any input: that limit depends on how bytes arrive, by design.
    var parser = RESPParser(maxBulkBytes: 512, maxRequestBytes: 1 << 20)
    let authentication = AuthenticationState()
    if unauthenticated { parser.attach(authentication) }
    var parsed = Parsed()
    for read in reads {
        parser.append(read)
        while true {
            switch parser.next() {
            case .request(let arguments):
                require(arguments.count >= 1, "a request without a command name")
                parsed.requests.append((0..<arguments.count).map { Array(arguments[$0]) })
                continue
            case .needMoreData:
                parser.releaseIfIdle()
            case .failed(.protocolError(let error)):
                parsed.error = error
                return (parsed, parser.bufferedByteCount)
            case .failed(let other):
                require(false, "RESP parser failed with a line-protocol error \(other)")
            }
            break
        }
    }
    return (parsed, parser.bufferedByteCount)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESPParser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let pattern = input.byte() % 32
    let unauthenticated = input.byte() & 1 == 1
    let (whole, wholeBuffered) = parse([input.rest], unauthenticated: unauthenticated)
    let (cut, cutBuffered) = parse(chunks(of: input.rest, pattern: pattern), unauthenticated: unauthenticated)
    require(whole == cut, "fed whole: \(whole.requests.count) requests, error \(String(describing: whole.error)); "
            + "in reads of pattern \(pattern): \(cut.requests.count), \(String(describing: cut.error))")
    if whole.error == nil {
        require(wholeBuffered == cutBuffered, "buffered \(wholeBuffered) bytes fed whole, \(cutBuffered) in reads")
    }

    for request in whole.requests {
        var writer = ReplyWriter(encoding: .resp2)
        writer.arrayHeader(request.count)
        for argument in request { writer.bulk(argument) }
        let encoded = writer.output
        encoded.withUnsafeBytes { bytes in
            let (again, buffered) = parse([bytes], unauthenticated: false)
            require(again.error == nil && again.requests == [request] && buffered == 0,
                    "round trip of \(printable(encoded)) parsed as \(again.requests.count) requests, "
                    + "error \(String(describing: again.error)), \(buffered) bytes left")
        }
        switch RESPReader.read(encoded, at: 0) {
        case .value(let value, let next):
            require(next == encoded.count && value == .array(request.map { .bulk($0) }),
                    "the reader sees \(value) in \(printable(encoded))")
        case let other:
            require(false, "the reader cannot read \(printable(encoded)): \(other)")
        }
    }
    return 0
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzRESPParser) }
}
