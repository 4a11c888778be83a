// The Z3 C API (Debian libz3-dev), for the SMT wrapper.
#include <z3.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

/// Keeps memory glibc's malloc got from the kernel instead of trimming it
/// back after each free: Z3 contexts are built and freed many times, and
/// without this every one faults its pages in anew. No-op elsewhere.
static inline void hvkit_keep_freed_memory(void) {
#if defined(__GLIBC__)
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 1 << 28);
#endif
}
