// CRC-32C with the processor's own instruction (SSE 4.2 `crc32` on x86-64), for the log's record
// checksums (Sources/Store/CRC32C.swift). Swift cannot name that instruction, so it lives here, in C,
// with the check of whether this processor has it. It must compute exactly the values of the
// portable table-driven code in Swift (the on-disk format's checksum: docs/file-formats.md).
#ifndef REACTORD_CCHECKSUM_H
#define REACTORD_CCHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/// 1 if this processor has the CRC-32C instruction (then reactord_crc32c_update may be called), else 0.
int reactord_crc32c_hardware_available(void);

/// Folds `count` bytes at `bytes` into the running CRC-32C state `state` (no initial or final
/// inversion: the caller's, as in Sources/Store/CRC32C.swift). Only where the instruction exists.
uint32_t reactord_crc32c_update(uint32_t state, const void *bytes, size_t count);

#endif
