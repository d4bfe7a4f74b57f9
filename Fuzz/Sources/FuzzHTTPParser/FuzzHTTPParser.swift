// Fuzz target: the metrics port's HTTP/1.1 request parser (Sources/Services/HTTPRequestParser.swift).
// The same bytes are fed whole and in arbitrary reads (draining requests after each read, as
// HTTPStream does); both must yield the same requests and end the same way (more data wanted, or
// the same refusal), a refusal is 400, 431 or 505, and the parser never holds more than its limit.
// Input: [header limit choice][read pattern][bytes...].

import FuzzSupport
import Services

/// What a parser made of a stream: its requests, then how it stopped.
struct Outcome: Equatable {
    var requests: [HTTPRequest] = []
    var failure: HTTPRequestError?
}

func parse(_ reads: [UnsafeRawBufferPointer], maxHeaderBytes: Int) -> Outcome {
    var parser = HTTPRequestParser(maxHeaderBytes: maxHeaderBytes, maxBufferedBytes: 1 << 20)
    var outcome = Outcome()
    for read in reads {
        parser.append(read)
        require(parser.bufferedByteCount <= parser.maxBufferedBytes, "holds \(parser.bufferedByteCount) bytes")
        draining: while true {
            switch parser.next() {
            case .request(let request):
                require(!request.method.isEmpty && request.path.first == UInt8(ascii: "/")
                            || request.path == Array("*".utf8),
                        "a request with method \(printable(request.method)) path \(printable(request.path))")
                outcome.requests.append(request)
            case .needMoreData:
                break draining
            case .failed(let error):
                require([400, 431, 505].contains(error.status), "refused with status \(error.status)")
                outcome.failure = error
                return outcome
            }
        }
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPParser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let maxHeaderBytes = 16 + Int(input.byte()) * 32
    let pattern = input.byte()
    let bytes = input.rest
    let whole = parse([bytes], maxHeaderBytes: maxHeaderBytes)
    let split = parse(chunks(of: bytes, pattern: pattern == 0 ? 1 : pattern), maxHeaderBytes: maxHeaderBytes)
    require(whole == split, "whole: \(whole.requests.count) requests, \(String(describing: whole.failure)); "
                + "in reads: \(split.requests.count), \(String(describing: split.failure)) for \(printable(bytes))")
    return 0
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzHTTPParser) }
}
