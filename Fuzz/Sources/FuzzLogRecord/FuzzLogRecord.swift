// Fuzz target: the log record decoder (Sources/Store/Record.swift) on arbitrary bytes, frame after
// frame as replay reads them. The owned and the in-place decoder must agree on what each frame
// is, and a frame that decodes must encode back to exactly its bytes.
// Input: the bytes of a log.

import FuzzSupport
@testable import Store

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLogRecord(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var rest = UnsafeRawBufferPointer(start: data, count: size)
    while true {
        let owned = Record.decode(rest)
        let view = Record.decodeView(rest)
        switch (owned, view) {
        case (.record(let record, let size), .record(let inPlace, let viewSize)):
            require(size == viewSize && size <= rest.count, "sizes \(size) and \(viewSize) of \(rest.count) bytes")
            require(inPlace.key.count + inPlace.value.count + Record.payloadHeaderBytes <= size,
                    "the view's key and value exceed the frame")
            var encoded: [UInt8] = []
            record.encode(into: &encoded)
            require(encoded.elementsEqual(rest[..<size]),
                    "\(record) re-encodes as \(printable(encoded)), read from \(printable(rest[..<size]))")
            rest = UnsafeRawBufferPointer(rebasing: rest[size...])
            continue
        case (.incomplete, .incomplete):
            return 0
        case (.invalid, .invalid), (.unsupported, .unsupported):
            return 0
        case (.invalid(let reason), .record(let inPlace, _)) where inPlace.kind == Record.kindGroup:
            // Only a group's members are decoded further by the owned decoder (replay checks them
            // with Record.forEachMember): both must then refuse them.
            require(Record.forEachMember(of: inPlace.value, { _ in }) == nil,
                    "decode refuses a group (\(reason)) whose members replay")
            return 0
        default:
            require(false, "decode says \(owned), decodeView disagrees")
            return 0
        }
    }
}

@main
enum Main {
    static func main() { FuzzDriver.run(fuzzLogRecord) }
}
