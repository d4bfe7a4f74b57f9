// The bit commands on strings that Redis's string tests use (SETBIT, GETBIT), as Redis 7.0 answers
// them: bit 0 is the most significant bit of the first byte, a write past the end zero-pads the value,
// the offset is checked before the bit and both before the key's type.

import Store

extension CommandTable {
    /// The bit family's rows (arity and flags as Redis 7.0 declares them).
    static let bits: [CommandSpec] = [
        CommandSpec("setbit", arity: 4, flags: [.write, .mayAddMemory], keys: .one, run: Commands.setbit),
        CommandSpec("getbit", arity: 3, flags: [.readOnly, .fast], keys: .one, run: Commands.getbit),
    ]
}

extension CommandCall {
    /// Argument `index` as a bit offset: a non-negative integer whose byte is within the largest value
    /// (Redis's `proto-max-bulk-len` bound, here the value size limit), else Redis's error, answered.
    mutating func bitOffsetArgument(_ arguments: ArgumentVector, _ index: Int) -> Int? {
        guard let offset = ASCII.parseInteger(arguments[index]), offset >= 0, offset >> 3 < Int64(self.maxValueBytes) else {
            self.reply.error(.redis(code: "ERR", "bit offset is not an integer or out of range"))
            return nil
        }
        return Int(offset)
    }
}

extension Commands {
    /// SETBIT key offset 0|1: the bit's previous value; the key is created or zero-padded as needed.
    static func setbit(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let offset = call.bitOffsetArgument(arguments, 2) else { return }
        guard let on = ASCII.parseInteger(arguments[3]), on & ~1 == 0 else {
            return call.reply.error(.redis(code: "ERR", "bit is not an integer or out of range"))
        }
        let key = arguments.copy(1)
        var value: [UInt8]
        let existed: Bool
        switch call.readString(key) {
        case .found(let stored):
            value = stored
            existed = true
        case .missing:
            value = []
            existed = false
        case .answeredWrongType: return
        }
        let byte = offset >> 3
        if value.count <= byte { value.append(contentsOf: repeatElement(0, count: byte + 1 - value.count)) }
        let mask = UInt8(1) << UInt8(7 - (offset & 7))
        let previous = value[byte] & mask != 0
        if on == 1 { value[byte] |= mask } else { value[byte] &= ~mask }
        guard call.set(borrowing: value[...], forKey: key[...], deadline: .keptEdited) else { return }
        call.notifyNew(key, if: !existed)
        call.notify(.string, "setbit", key)
        call.reply.integer(previous ? 1 : 0)
    }

    /// GETBIT key offset: the bit, 0 past the end of the value or for a missing key.
    static func getbit(_ arguments: ArgumentVector, _ call: inout CommandCall) {
        guard let offset = call.bitOffsetArgument(arguments, 2) else { return }
        var bit = 0
        let lookup = call.store.withString(forKey: arguments[1]) { value in
            let byte = offset >> 3
            if byte < value.count && value[byte] & (UInt8(1) << UInt8(7 - (offset & 7))) != 0 { bit = 1 }
        }
        if case .wrongType = lookup { return call.reply.error(.wrongType) }
        call.reply.integer(bit)
    }
}
