// A hint to start loading a cache line now. It never faults and is not
// ordered by fences or locked instructions, so a lookup can start the load
// of a line it will need before it takes a lock, and the miss overlaps the
// locking instead of following it.
#ifndef HVKIT_PREFETCH_H
#define HVKIT_PREFETCH_H

static inline void hv_prefetch_for_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

#endif
