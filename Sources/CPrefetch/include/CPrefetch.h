// A cache prefetch hint for Swift, which has no spelling of its own for one: a descent through a
// large skiplist (Sources/Store/Types/SortedSetSkiplist.swift) asks for the node it will probably
// read next while it waits for the one it is reading, so that two cache misses overlap instead of
// following each other. A hint only: it never faults and changes no result.
#ifndef REACTORD_CPREFETCH_H
#define REACTORD_CPREFETCH_H

static inline __attribute__((always_inline)) void reactord_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
