// CRC-32C by the SSE 4.2 `crc32` instruction: eight bytes per instruction, then the tail in four-,
// two- and one-byte steps. Compiled for that instruction set in this function only, so the binary
// still runs on a processor without it (the caller asks reactord_crc32c_hardware_available first).
#include "CChecksum.h"
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>

int reactord_crc32c_hardware_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

__attribute__((target("sse4.2")))
uint32_t reactord_crc32c_update(uint32_t state, const void *bytes, size_t count) {
    const unsigned char *p = bytes;
    uint64_t crc = state;
    while (count >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);  // unaligned load; the instruction reads little-endian, as the table code does
        crc = _mm_crc32_u64(crc, word);
        p += 8;
        count -= 8;
    }
    // The tail (under eight bytes) in at most three steps: records are short, so it is a good part
    // of every one.
    uint32_t crc32 = (uint32_t)crc;
    if (count >= 4) {
        uint32_t word;
        memcpy(&word, p, 4);
        crc32 = _mm_crc32_u32(crc32, word);
        p += 4;
        count -= 4;
    }
    if (count >= 2) {
        uint16_t half;
        memcpy(&half, p, 2);
        crc32 = _mm_crc32_u16(crc32, half);
        p += 2;
        count -= 2;
    }
    if (count > 0) crc32 = _mm_crc32_u8(crc32, *p);
    return crc32;
}

#else

int reactord_crc32c_hardware_available(void) { return 0; }

uint32_t reactord_crc32c_update(uint32_t state, const void *bytes, size_t count) {
    (void)bytes;
    (void)count;
    return state;  // never called: the portable code runs where the instruction is absent
}

#endif
