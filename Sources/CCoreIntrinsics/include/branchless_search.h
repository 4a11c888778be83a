// A binary search whose halving step is a conditional move, not a branch.
//
// On keys in random order each branch of the usual search mispredicts half
// the time; for the address space's area map that was most of a small
// map's search time. In Swift, LLVM's x86 cmov conversion turns the select
// back into a branch inside the loop; __builtin_unpredictable keeps it.
#ifndef HVKIT_BRANCHLESS_SEARCH_H
#define HVKIT_BRANCHLESS_SEARCH_H

#include <stddef.h>
#include <stdint.h>

/// How many of the `n` keys at `keys[0]`, `keys[stride]`, `keys[2 * stride]`,
/// ... (sorted ascending, `stride` in 64-bit words) are <= `key`.
static inline size_t hv_count_at_or_below(const uint64_t *keys, size_t stride, size_t n, uint64_t key) {
    if (n == 0) return 0;
    // The answer lies in [lo, lo + n], and lo + n never exceeds the count.
    size_t lo = 0;
    while (n > 1) {
        size_t half = n >> 1;
        lo = __builtin_unpredictable(keys[(lo + half) * stride] <= key) ? lo + half : lo;
        n -= half;
    }
    return lo + (keys[lo * stride] <= key);
}

#endif
