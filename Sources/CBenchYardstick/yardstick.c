#include "yardstick.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// Tables are 512 pointers; a leaf entry holds a frame address with bit 0 set.
typedef struct table { uintptr_t e[512]; } table;

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static table *new_table(void) { return calloc(1, sizeof(table)); }

// The walk to the level-0 slot of `gpa`, creating tables on the way.
static uintptr_t *slot_creating(table *root, uint64_t gpa) {
    table *t = root;
    for (int level = 3; level > 0; level--) {
        uintptr_t *e = &t->e[(gpa >> (12 + 9 * level)) & 511];
        if (!*e) *e = (uintptr_t)new_table();
        t = (table *)*e;
    }
    return &t->e[(gpa >> 12) & 511];
}

static void free_tree(table *t, int level) {
    if (level > 0)
        for (int i = 0; i < 512; i++)
            if (t->e[i]) free_tree((table *)t->e[i], level - 1);
    free(t);
}

double hv_yardstick_walk_ns(uint64_t seed, int count) {
    const uint64_t base = 1ull << 30, size = 1ull << 30;
    table *root = new_table();
    for (uint64_t page = 0; page < size; page += 4096) *slot_creating(root, base + page) = (0x100000000ull + page) | 1;
    uint64_t s = seed, sink = 0;
    double start = now_ns();
    for (int i = 0; i < count; i++) {
        uint64_t gpa = base + splitmix(&s) % size;
        const table *t = root;
        uintptr_t e = 0;
        for (int level = 3; level >= 0; level--) {
            e = t->e[(gpa >> (12 + 9 * level)) & 511];
            if (!e) break;
            t = (const table *)e;
        }
        sink += (e & ~(uintptr_t)0xFFF) | (gpa & 0xFFF);
    }
    double elapsed = now_ns() - start;
    free_tree(root, 3);
    // The sum keeps the loop from being optimised away; it is never zero here.
    return sink == 0 ? -1 : elapsed / count;
}

double hv_yardstick_fault_ns(uint64_t seed, int count, int locked) {
    const uint64_t base = 1ull << 30, pages = 262144;
    // Distinct random pages: a shuffled prefix of 0..<pages.
    uint32_t *order = malloc(pages * sizeof(uint32_t));
    for (uint32_t i = 0; i < pages; i++) order[i] = i;
    uint64_t s = seed;
    for (uint64_t i = 0; i < (uint64_t)count; i++) {
        uint64_t j = i + splitmix(&s) % (pages - i);
        uint32_t t = order[i]; order[i] = order[j]; order[j] = t;
    }
    table *root = new_table();
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    uint64_t next_frame = 0x100000000ull;
    double start = now_ns();
    for (int i = 0; i < count; i++) {
        uint64_t gpa = base + (uint64_t)order[i] * 4096;
        if (locked) pthread_mutex_lock(&lock);
        uintptr_t *slot = slot_creating(root, gpa);
        if (!*slot) {
            *slot = next_frame | 1;
            next_frame += 4096;
        }
        if (locked) pthread_mutex_unlock(&lock);
    }
    double elapsed = now_ns() - start;
    free_tree(root, 3);
    free(order);
    return next_frame == 0x100000000ull + (uint64_t)count * 4096 ? elapsed / count : -1;
}
