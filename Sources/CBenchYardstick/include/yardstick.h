#ifndef HVKIT_YARDSTICK_H
#define HVKIT_YARDSTICK_H
#include <stdint.h>

/// Yardsticks for `hvkit bench addrspace`: the least a nested page table
/// can do on this machine, measured in the same run as HVKit's figures, so
/// they can be judged as ratios on machines whose speed changes.
///
/// Nanoseconds per translate of a random address of 1 GiB mapped with 4 KiB
/// pages: a plain four-level walk of 512-entry tables, nothing else.
double hv_yardstick_walk_ns(uint64_t seed, int count);
/// Nanoseconds per fault of `count` distinct random pages of 1 GiB: the
/// walk creating tables as needed, a bump-allocated frame, the leaf store;
/// with `locked`, each fault inside one uncontended pthread mutex.
double hv_yardstick_fault_ns(uint64_t seed, int count, int locked);

#endif
