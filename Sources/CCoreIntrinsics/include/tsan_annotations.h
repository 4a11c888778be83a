// Happens-before edges for ThreadSanitizer where it cannot see them itself:
// Swift's Synchronization.Mutex locks with futexes, which TSan does not
// model, so code under such a lock looks racy to it. The lock holder calls
// hv_tsan_acquire(key) first and hv_tsan_release(key) last, key being any
// address fixed for the lock's life. Outside a TSan build both are empty.
#pragma once
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(HV_TSAN) || __has_feature(thread_sanitizer)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static inline __attribute__((always_inline)) void hv_tsan_acquire(const void *key) { __tsan_acquire((void *)key); }
static inline __attribute__((always_inline)) void hv_tsan_release(const void *key) { __tsan_release((void *)key); }
static inline int hv_tsan_enabled(void) { return 1; }
#else
static inline __attribute__((always_inline)) void hv_tsan_acquire(const void *key) { (void)key; }
static inline __attribute__((always_inline)) void hv_tsan_release(const void *key) { (void)key; }
static inline int hv_tsan_enabled(void) { return 0; }
#endif
