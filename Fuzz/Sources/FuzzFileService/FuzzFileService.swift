// Fuzz target: the file service's request parser and path rules (Sources/Services/FileService.swift).
// The same bytes fed whole and in arbitrary reads must give the same requests; no request that
// reaches the file system may name an absolute path, a `..` component or a NUL byte; ranges
// are never negative.
// Input: [read pattern][request bytes...].

import FuzzSupport
import Services

func runFile(_ reads: [UnsafeRawBufferPointer]) -> [FileRequest] {
    var service = FileService(maxLineBytes: 256)
    var requests: [FileRequest] = []
    for read in reads {
        service.receive(read)
        while let request = service.nextRequest() {
            requests.append(request)
            if request == .lineTooLong { return requests }
        }
    }
    return requests
}

func checkPath(_ path: [UInt8]) {
    require(path.first != UInt8(ascii: "/"), "absolute path \(printable(path)) accepted")
    require(!path.contains(0), "path with NUL \(printable(path)) accepted")
    require(!path.split(separator: UInt8(ascii: "/")).contains { $0.elementsEqual("..".utf8) },
            "path with .. \(printable(path)) accepted")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFileService(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let pattern = input.byte() % 32
    let whole = runFile([input.rest])
    let cut = runFile(chunks(of: input.rest, pattern: pattern))
    require(whole == cut, "fed whole: \(whole); in reads: \(cut)")
    for request in whole {
        switch request {
        case .get(let path, let offset, let length):
            checkPath(path)
            require(!path.isEmpty, "get of an empty path")
            require(offset >= 0 && (length ?? 0) >= 0, "negative range \(offset), \(String(describing: length))")
        case .list(let path):
            checkPath(path)
        case .bye, .error, .lineTooLong:
            break
        }
    }
    return 0
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzFileService) }
}
