// Relaxed atomic loads and stores of 64-bit words in raw memory.
//
// Page-table entries are read without the address space's lock by the
// optimistic (sequence-counted) translate path while a writer may be changing
// them under the lock. Every entry access goes through these so that the
// concurrent accesses are atomic ones, not a data race; on x86-64 and AArch64
// each compiles to one plain load or store.
#ifndef HVKIT_WORD_ATOMICS_H
#define HVKIT_WORD_ATOMICS_H

#include <stdint.h>

static inline uint64_t hv_word_load_relaxed(const uint64_t *word) {
    return __atomic_load_n(word, __ATOMIC_RELAXED);
}

static inline void hv_word_store_relaxed(uint64_t *word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELAXED);
}

#endif
