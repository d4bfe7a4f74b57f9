// Fuzz target: ReactorHTTP's request framer (Sources/ReactorHTTP/HTTPRequestFramer.swift). The
// same bytes are framed whole and in arbitrary reads; both must yield the same requests and end
// the same way (more data wanted, or the same refusal); a refusal is one of the statuses RFC 9112
// names (400, 413, 414, 431, 501, 505); and the framer never holds more than its limits allow.
// Input: [limits choice][read pattern][bytes...].

import FuzzSupport
import ReactorHTTP

struct Outcome: Equatable {
    var requests: [String] = []
    var failure: HTTPRequestError?
}

func frame(_ reads: [UnsafeRawBufferPointer], limits: HTTPLimits) -> Outcome {
    var framer = HTTPRequestFramer(limits: limits)
    var outcome = Outcome()
    let bound = max(limits.maxRequestLineBytes + 2 + limits.maxHeaderBytes,
                    limits.maxBodyBytes + max(limits.maxChunkLineBytes, limits.maxHeaderBytes))
    for read in reads {
        do {
            try framer.frame(read) { request in
                require(!request.method.isEmpty && !request.target.isEmpty, "a request without method or target")
                require(request.body.count <= limits.maxBodyBytes, "a body of \(request.body.count) bytes")
                let headers = request.headers.map { "\($0.name)=\($0.value)" }.joined(separator: "\n")
                outcome.requests.append("\(request.method) \(request.target) \(request.version) \(headers) \(request.body) \(request.keepAlive)")
            }
        } catch {
            require([400, 413, 414, 431, 501, 505].contains(error.status), "refused with status \(error.status)")
            outcome.failure = error
            return outcome
        }
        require(framer.bufferedByteCount <= bound, "holds \(framer.bufferedByteCount) bytes")
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPFramer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let choice = Int(input.byte())
    var limits = HTTPLimits()
    limits.maxRequestLineBytes = 8 + (choice & 3) * 40
    limits.maxHeaderBytes = 16 + ((choice >> 2) & 3) * 64
    limits.maxHeaderCount = 1 + (choice >> 4) & 7
    limits.maxBodyBytes = (choice >> 7) == 0 ? 64 : 4096
    limits.maxChunkLineBytes = 12
    let pattern = input.byte()
    let bytes = input.rest
    let whole = frame([bytes], limits: limits)
    let split = frame(chunks(of: bytes, pattern: pattern == 0 ? 1 : pattern), limits: limits)
    require(whole == split, "whole: \(whole.requests.count) requests, \(String(describing: whole.failure)); "
                + "in reads: \(split.requests.count), \(String(describing: split.failure)) for \(printable(bytes))")
    return 0
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzHTTPFramer) }
}
