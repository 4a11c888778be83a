// Zeroing with non-temporal (streaming) stores.
//
// A frame handed to a guest is zeroed and then left alone by the host: the
// guest touches it later, if at all. Ordinary stores first read each cache
// line into the cache (read-for-ownership) and evict other data; streaming
// stores write the zeros straight to memory, which halves the traffic for a
// cold frame. The fence makes the zeros visible before the frame is mapped.
#ifndef HVKIT_STREAMING_ZERO_H
#define HVKIT_STREAMING_ZERO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

/// Zeroes `bytes` bytes at `p`; both multiples of 64 use streaming stores.
static inline void hv_zero_streaming(void *p, size_t bytes) {
#if defined(__x86_64__)
    if (((uintptr_t)p & 63) == 0 && (bytes & 63) == 0) {
        __m128i zero = _mm_setzero_si128();
        char *c = (char *)p;
        for (size_t i = 0; i < bytes; i += 64) {
            _mm_stream_si128((__m128i *)(c + i), zero);
            _mm_stream_si128((__m128i *)(c + i + 16), zero);
            _mm_stream_si128((__m128i *)(c + i + 32), zero);
            _mm_stream_si128((__m128i *)(c + i + 48), zero);
        }
        _mm_sfence();
        return;
    }
#endif
    memset(p, 0, bytes);
}

#endif
