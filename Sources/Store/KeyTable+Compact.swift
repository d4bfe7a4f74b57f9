// Small sets and sorted sets without an object: the compact form of a collection's slot.
//
// A small set (an intset) or sorted set (a listpack) is mostly its members: a few dozen bytes. Held as an
// object, it costs the object too (a 48-byte allocation: Swift's 16-byte header and the type's fields)
// beside its members' block; Redis pays a 16-byte robj. So when nothing but the keyspace holds such a
// value, its slot keeps the members' block alone, with what the object knew (count, width or byte count)
// in spare bits of the slot's `valueLength`, and no object at all:
//
//     valueLength: collectionFlag | compactFlag | payload << 8 | type tag      32: the members' block
//     set payload:        count << 2 | width code (1: 2 bytes, 2: 4 bytes, 3: 8 bytes), count < 2^20
//     sorted-set payload: pairs << 14 | byte count, pairs < 2^8, byte count < 2^14
//
// `compactFlag` is the bit a string uses as ``Slot/rawFlag``: never set on a collection otherwise, and it
// keeps `keyLength + valueLength` past the inline capacity as the collection flag already does, so the
// string hot path is unchanged. The block is the one the object held (``IntSet/takeBlock()``,
// ``PackedEntries/takeStorage()``): changing forms moves a pointer, copying only an intset of up to 20
// bytes, which the object keeps inside itself.
//
// Whoever asks for the object (``KeyTable/object(_:)``: every read, write, COPY, RENAME, snapshot, undo)
// gets one: the slot is expanded back to an object first, which it keeps. It becomes compact again after an
// element write (``Keyspace/applyElement(_:at:type:_:position:_:inverse:)``), a snapshot block's load or a
// replayed record, and only when the keyspace's reference is the only one
// (`isKnownUniquelyReferenced`): a command still holding the object after its write keeps seeing the
// value, since the slot then keeps that object. The value's account (``CollectionValue/usedBytes``) is
// the same in both forms, so changing forms changes no byte account.

import Glibc

extension Slot {
    /// In a collection's `valueLength`: the slot holds the value's members' block, not an object.
    static let compactFlag: UInt32 = 0x4000_0000
    static let compactPayloadShift: UInt32 = 8
    static let compactPayloadMask: UInt32 = (1 << 22) - 1

    /// Whether a collection's slot (``isCollection(_:)`` must hold) is in the compact form.
    @inline(__always)
    static func isCompact(_ slot: UnsafeMutableRawPointer) -> Bool {
        slot.load(fromByteOffset: Self.valueLength, as: UInt32.self) & Self.compactFlag != 0
    }
}

extension KeyTable {
    private static let setCountLimit = 1 << 20
    private static let sortedSetPairLimit = 1 << 8
    private static let sortedSetByteLimit = 1 << 14

    private static func compactPayload(_ slot: UnsafeMutableRawPointer) -> Int {
        Int((slot.load(fromByteOffset: Slot.valueLength, as: UInt32.self) >> Slot.compactPayloadShift)
            & Slot.compactPayloadMask)
    }

    /// The element count and byte account of a compact slot's value, without expanding it.
    static func compactFacts(_ slot: UnsafeMutableRawPointer) -> (count: Int, bytes: Int) {
        let payload = Self.compactPayload(slot)
        switch Self.type(slot) {
        case .set:
            let count = payload >> 2
            return (count, SetValue.compactBytes(count: count, width: 1 << (payload & 3)))
        case .zset:
            return (payload >> 14, SortedSetValue.compactBytes(byteCount: payload & (Self.sortedSetByteLimit - 1)))
        default:
            preconditionFailure("a compact slot of type \(Self.type(slot))")
        }
    }

    /// The byte account of the collection in `slot` (either form; no reference outlives the call).
    @inline(never)
    static func collectionBytes(_ slot: UnsafeMutableRawPointer) -> Int {
        Slot.isCompact(slot) ? Self.compactFacts(slot).bytes : Self.object(slot).usedBytes
    }

    /// Frees a compact slot's block (the caller takes the value out of the account).
    static func freeCompact(_ slot: UnsafeMutableRawPointer) {
        Glibc.free(slot.load(fromByteOffset: Slot.objectOffset, as: UnsafeMutableRawPointer.self))
    }

    /// Gives a compact slot its object back (which then holds the block).
    @inline(never)
    static func expand(_ slot: UnsafeMutableRawPointer) {
        let payload = Self.compactPayload(slot)
        let block = slot.load(fromByteOffset: Slot.objectOffset, as: UnsafeMutableRawPointer.self)
        let type = Self.type(slot)
        let object: AnyObject
        switch type {
        case .set:
            object = SetValue(adopting: block, count: payload >> 2, width: 1 << (payload & 3))
        case .zset:
            object = SortedSetValue(adopting: block, byteCount: payload & (Self.sortedSetByteLimit - 1),
                                    pairs: payload >> 14)
        default:
            preconditionFailure("a compact slot of type \(type)")
        }
        slot.storeBytes(of: Unmanaged<AnyObject>.passRetained(object).toOpaque(), toByteOffset: Slot.objectOffset,
                        as: UnsafeMutableRawPointer.self)
        slot.storeBytes(of: Slot.collectionFlag | UInt32(type.rawValue), toByteOffset: Slot.valueLength, as: UInt32.self)
    }

    /// Turns the collection in `slot` into the compact form when it is a small set or sorted set and the
    /// slot's reference is its only one; else leaves it.
    static func compactIfUnshared(_ slot: UnsafeMutableRawPointer) {
        let length = slot.load(fromByteOffset: Slot.valueLength, as: UInt32.self)
        guard length & (Slot.collectionFlag | Slot.compactFlag) == Slot.collectionFlag else { return }
        let tag = UInt8(truncatingIfNeeded: length)
        let opaque = slot.load(fromByteOffset: Slot.objectOffset, as: UnsafeMutableRawPointer.self)
        // What the compact form would hold, read without touching the reference count (a big set's write
        // pays only this).
        let payload: UInt32
        if tag == ValueType.set.rawValue {
            guard Self.isInstance(opaque, of: SetValue.self),
                  let shape = Unmanaged<SetValue>.fromOpaque(opaque)._withUnsafeGuaranteedRef({ $0.compactShape }),
                  shape.count < Self.setCountLimit
            else { return }
            payload = UInt32(shape.count) << 2 | UInt32(shape.width.trailingZeroBitCount)
        } else if tag == ValueType.zset.rawValue {
            guard Self.isInstance(opaque, of: SortedSetValue.self),
                  let shape = Unmanaged<SortedSetValue>.fromOpaque(opaque)._withUnsafeGuaranteedRef({ $0.compactShape }),
                  shape.pairs < Self.sortedSetPairLimit, shape.byteCount < Self.sortedSetByteLimit
            else { return }
            payload = UInt32(shape.pairs) << 14 | UInt32(shape.byteCount)
        } else {
            return
        }
        // The slot's reference, taken over: unique when nothing else holds the value. (By its class: the
        // check through an `AnyObject` existential answered false for a unique reference in a debug build.)
        let block: UnsafeMutableRawPointer
        if tag == ValueType.set.rawValue {
            var object = Unmanaged<SetValue>.fromOpaque(opaque).takeRetainedValue()
            guard isKnownUniquelyReferenced(&object) else {
                _ = Unmanaged.passRetained(object)  // the slot keeps its reference
                return
            }
            block = object.detachCompact().block
        } else {
            var object = Unmanaged<SortedSetValue>.fromOpaque(opaque).takeRetainedValue()
            guard isKnownUniquelyReferenced(&object) else {
                _ = Unmanaged.passRetained(object)
                return
            }
            block = object.detachCompact().block
        }
        slot.storeBytes(of: block, toByteOffset: Slot.objectOffset, as: UnsafeMutableRawPointer.self)
        slot.storeBytes(of: Slot.collectionFlag | Slot.compactFlag | payload << Slot.compactPayloadShift | UInt32(tag),
                        toByteOffset: Slot.valueLength, as: UInt32.self)
        // The object, left empty, went with its branch's scope.
    }

    @inline(__always)
    private static func isInstance(_ opaque: UnsafeMutableRawPointer, of type: AnyClass) -> Bool {
        Unmanaged<AnyObject>.fromOpaque(opaque)._withUnsafeGuaranteedRef {
            ObjectIdentifier(Swift.type(of: $0)) == ObjectIdentifier(type)
        }
    }
}
