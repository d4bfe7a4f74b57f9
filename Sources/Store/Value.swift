// The value model every data type shares: a type tag (TYPE's names), the encoding OBJECT ENCODING
// reports, and ``CollectionValue``, the small interface a collection type implements once for each of
// its encodings (a compact block while small, as Redis's listpack and intset; a real structure past its
// thresholds). Strings are not objects: the keyspace keeps them inline in its slots (KeyTable.swift).
// A collection is changed only through element effects (``ElementEffect``): commands apply them, the
// log records them, replay and rollback apply them again, so each type's mutation logic is written once.

import Synchronization

/// What TYPE answers for a key.
public enum ValueType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case string = 0
    case hash = 1
    case list = 2
    case set = 3
    case zset = 4

    /// TYPE's reply, also the marker `database.txt` writes before a collection (docs/file-formats.md).
    public var name: String {
        switch self {
        case .string: "string"
        case .hash: "hash"
        case .list: "list"
        case .set: "set"
        case .zset: "zset"
        }
    }

    public var description: String { self.name }

    /// The type named `name` (TYPE's spelling, ASCII).
    public init?<Bytes: Sequence<UInt8>>(name: Bytes) {
        let text = String(decoding: Array(name), as: UTF8.self)
        guard let found = Self.allCases.first(where: { $0.name == text }) else { return nil }
        self = found
    }

    /// Fields per element in log records and `database.txt`: a hash field and its value, a sorted-set
    /// member and its score; one for a list item or a set member.
    public var fieldsPerElement: Int { self == .hash || self == .zset ? 2 : 1 }
}

/// A key holds a value of another type than the command expects (Redis's WRONGTYPE).
public struct WrongTypeError: Error, Sendable, Equatable {
    /// What the key holds.
    public let actual: ValueType
    /// The reply text, as Redis words it.
    public static let message = "WRONGTYPE Operation against a key holding the wrong kind of value"

    public init(actual: ValueType) {
        self.actual = actual
    }
}

/// One element, as borrowed fields (valid for the call it is passed to). `second` is empty for types
/// with one field per element.
public struct Element {
    public var first: UnsafeRawBufferPointer
    public var second: UnsafeRawBufferPointer

    public init(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        self.first = first
        self.second = second
    }
}

/// What an element effect does; the type interprets it (Record.swift kind 9, docs/file-formats.md).
public enum ElementOperation: UInt8, Sendable {
    /// Adds or replaces: a set member, a hash field's value, a sorted-set member's score; a list item
    /// inserted at `position` (0 the head, -1 after the tail).
    case add = 1
    /// Removes: a set member, a hash field, a sorted-set member (`first`); a list item at `position`.
    case remove = 2
}

/// One change to one element of a collection, owned (what the log records and the undo log keeps).
public struct ElementEffect: Sendable, Equatable {
    public var operation: ElementOperation
    /// Lists only (0 otherwise).
    public var position: Int64
    public var first: [UInt8]
    public var second: [UInt8]

    public init(_ operation: ElementOperation, position: Int64 = 0, _ first: [UInt8], _ second: [UInt8] = []) {
        self.operation = operation
        self.position = position
        self.first = first
        self.second = second
    }

    /// Calls `body` with the effect's fields borrowed.
    public func withElement<R>(_ body: (Element) throws -> R) rethrows -> R {
        try self.first.withUnsafeBytes { f in try self.second.withUnsafeBytes { s in try body(Element(f, s)) } }
    }
}

/// A collection value: what the keyspace, the log, `database.txt`, COPY and MEMORY USAGE need of every
/// type and encoding. A type is a class (or a family: one class per encoding behind one facade that
/// converts between them); the keyspace holds it by reference (retained in the slot).
///
/// Invariants a conforming type keeps: ``usedBytes`` is exact (what it holds, its own header included)
/// and changes only inside ``apply(_:position:_:)`` or the type's own mutating methods run through
/// ``Keyspace/mutateCollection(at:_:)`` (which reports the change to the keyspace's account);
/// ``forEachElement(_:)`` streams elements in an order that ``apply(_:position:_:)`` with `.add` at
/// position -1 (append) rebuilds exactly (load, COPY).
public protocol CollectionValue: AnyObject {
    /// TYPE's answer.
    var type: ValueType { get }
    /// OBJECT ENCODING's answer for the current encoding (e.g. `listpack`, `hashtable`, `intset`).
    var encoding: String { get }
    /// Elements held (HLEN, SCARD, LLEN, ZCARD).
    var count: Int { get }
    /// The exact bytes this value accounts for (the keyspace's ``Keyspace/usedBytes`` adds it).
    var usedBytes: Int { get }
    /// A deep copy (COPY): nothing shared with `self`.
    func copy() -> any CollectionValue
    /// Streams the elements out (snapshot, whole-value records) until `body` returns false.
    func forEachElement(_ body: (Element) -> Bool)
    /// Applies one element effect (commands, replay, load, rollback) and, when `inverse` is recording,
    /// writes into it the effect that undoes the change while the element is at hand (the store keeps it
    /// to roll back a write the log refuses): an add over an old value records an add of the old value,
    /// an add of something new records its removal, a removal records an add of what went (a list item
    /// at its absolute index). - Returns: whether it changed anything (nothing is recorded if not).
    @discardableResult
    func apply(_ operation: ElementOperation, position: Int64, _ element: Element, inverse: inout ElementInverse) -> Bool
}

extension CollectionValue {
    /// Applies one element effect without recording its inverse (replay, load, rollback, building).
    @discardableResult
    public func apply(_ operation: ElementOperation, position: Int64, _ element: Element) -> Bool {
        var ignored = ElementInverse.ignoring
        return self.apply(operation, position: position, element, inverse: &ignored)
    }
}

/// The effect that undoes one element change, written by the collection while it makes the change (one
/// lookup for both). The store owns one and reuses its buffer, which holds the effect already laid out
/// as a kind-9 record's rest (Record.swift), the form its undo log keeps; replay and rollback pass
/// ``ignoring``.
public struct ElementInverse {
    /// Whether the collection should record (false: replay, load, rollback).
    public let isRecording: Bool
    /// Whether something was recorded since the last ``reset()``.
    public private(set) var isRecorded = false
    public private(set) var operation = ElementOperation.add
    public private(set) var position: Int64 = 0
    /// The record rest: type (set by ``withRest(type:_:)``), operation, position, first length, fields.
    private var rest: [UInt8] = []

    /// A recorder that records nothing.
    public static var ignoring: ElementInverse { ElementInverse(recording: false) }

    public init(recording: Bool) {
        self.isRecording = recording
    }

    /// Records `operation` of the element (`second` empty for one-field types); replaces an earlier one.
    public mutating func record(
        _ operation: ElementOperation, position: Int64 = 0, _ first: UnsafeRawBufferPointer,
        _ second: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) {
        guard self.isRecording else { return }
        self.operation = operation
        self.position = position
        // Sized once and written in place: appending field by field cost more than the change itself
        // for a push or pop.
        let header = Record.elementHeaderBytes
        let total = header + first.count + second.count
        if self.rest.count < total {
            self.rest.append(contentsOf: repeatElement(0, count: total - self.rest.count))
        } else if self.rest.count > total {
            self.rest.removeLast(self.rest.count - total)
        }
        self.rest.withUnsafeMutableBytes { raw in
            raw[0] = 0
            raw[1] = operation.rawValue
            raw.storeBytes(of: position.littleEndian, toByteOffset: 2, as: Int64.self)
            raw.storeBytes(of: UInt32(first.count).littleEndian, toByteOffset: header - 4, as: UInt32.self)
            if let source = first.baseAddress, first.count > 0 {
                (raw.baseAddress! + header).copyMemory(from: source, byteCount: first.count)
            }
            if let source = second.baseAddress, second.count > 0 {
                (raw.baseAddress! + header + first.count).copyMemory(from: source, byteCount: second.count)
            }
        }
        self.isRecorded = true
    }

    /// Forgets what was recorded, keeping the buffer.
    public mutating func reset() {
        self.isRecorded = false
    }

    /// Calls `body` with the recorded effect as a kind-9 record's rest for a value of `type`.
    mutating func withRest<R>(type: ValueType, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        self.rest[0] = type.rawValue
        return self.rest.withUnsafeBytes(body)
    }

    /// The recorded effect, owned (tests, the in-memory fakes).
    public var effect: ElementEffect {
        let header = Record.elementHeaderBytes
        let firstCount = self.rest.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 10, as: UInt32.self))) }
        return ElementEffect(self.operation, position: self.position, Array(self.rest[header..<(header + firstCount)]),
                             Array(self.rest[(header + firstCount)...]))
    }
}

/// The collection types the store can build from `database.txt` and the log: each registers a
/// factory of empty values at start-up (the types' own module; tests register a test-only type).
/// Read from the loop and the compaction thread.
public enum CollectionTypes {
    private static let factories = Mutex<[ValueType: @Sendable () -> any CollectionValue]>([:])

    /// Makes values of `type` with `make` from now on (replacing any earlier factory).
    public static func register(_ type: ValueType, _ make: @escaping @Sendable () -> any CollectionValue) {
        precondition(type != .string, "strings are not collections")
        Self.factories.withLock { $0[type] = make }
    }

    /// Whether values of `type` can be made (a log or snapshot naming another type is refused).
    public static func isRegistered(_ type: ValueType) -> Bool {
        Self.factories.withLock { $0[type] != nil }
    }

    /// An empty value of `type`, or nil when no factory is registered for it.
    public static func makeEmpty(_ type: ValueType) -> (any CollectionValue)? {
        Self.factories.withLock { $0[type] }?()
    }
}
