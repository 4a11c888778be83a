/*
 * A small, independent 4-level EPT address space in C, speaking hvkit's
 * target protocol version 1 (docs/target-protocol.md) on stdin/stdout:
 * an example of what `hvkit hunt --target` can check, and a target with
 * bugs to find. Build:
 *
 *   cc -O2 -o ept_target ept_target.c            # no known bug
 *   cc -O2 -DBUG_NO_ZERO -o ept_target ept_target.c
 *
 * Seeded bugs, each modelled on a real kind of mapping bug:
 *   BUG_NO_ZERO                  frames are handed out without zeroing
 *   BUG_PARTIAL_UNMAP_DROPS_HUGE unmapping part of a 2 MiB / 1 GiB leaf drops the whole leaf
 *   BUG_OFF_BY_ONE_END           an area's lookup also claims the page after its end
 *   BUG_OVERLAP_MISSES_CONTAINMENT  overlap detection tests only the new range's ends
 *   BUG_ABORT_PARTIAL_HUGE       unmapping part of a huge leaf aborts
 *
 * Host memory: one pool of 8,192 frames at host-physical 4 GiB, shared by
 * every space; page tables come from it too. Linear maps point at memory
 * this process does not have: reads and writes through them answer
 * not_host_memory.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_FRAMES 8192u
#define POOL_BASE 0x100000000ull
#define MAX_SPACES 16
#define MAX_AREAS 512
#define PAGE 0x1000ull

#define F_READ 1ull
#define F_WRITE 2ull
#define F_EXEC 4ull
#define F_ALL 0x3Full
#define E_HUGE (1ull << 7)
#define E_ADDR 0x000FFFFFFFFFF000ull
#define E_SOFT_SHIFT 52 /* user, device, uncached kept in ignored bits 52-54 */

static uint8_t *pool;
static uint32_t free_stack[POOL_FRAMES];
static uint32_t free_top;

enum kind { LINEAR, EAGER, LAZY };
struct area { uint64_t start, size, flags, host; enum kind kind; };
struct space {
    int used;
    uint64_t root, mstart, msize;
    struct area areas[MAX_AREAS];
    int nareas;
    long data_frames;
};
static struct space spaces[MAX_SPACES];

/* ---- frames ---- */
static uint64_t frame_alloc(void) {
    if (free_top == 0) return 0;
    uint32_t i = free_stack[--free_top];
    uint8_t *p = pool + (uint64_t)i * PAGE;
#ifndef BUG_NO_ZERO
    memset(p, 0, PAGE);
#else
    (void)p;
#endif
    return POOL_BASE + (uint64_t)i * PAGE;
}
/* Page tables are always zeroed, bug or not. */
static uint64_t table_alloc(void) {
    uint64_t f = frame_alloc();
    if (f) memset(pool + (f - POOL_BASE), 0, PAGE);
    return f;
}
static void frame_free(uint64_t hpa) { free_stack[free_top++] = (uint32_t)((hpa - POOL_BASE) / PAGE); }
static uint64_t *table(uint64_t hpa) { return (uint64_t *)(pool + (hpa - POOL_BASE)); }

/* ---- entries ---- */
static uint64_t span(int level) { return 1ull << (12 + 9 * level); }
static int idx(uint64_t gpa, int level) { return (int)((gpa >> (12 + 9 * level)) & 511); }
static int present(uint64_t e) { return (e & 7) != 0; }
static uint64_t encode(uint64_t hpa, uint64_t flags, int level) {
    uint64_t e = (hpa & E_ADDR) | (flags & 7) | ((flags >> 3) << E_SOFT_SHIFT);
    return level > 0 ? e | E_HUGE : e;
}
static uint64_t entry_flags(uint64_t e) { return (e & 7) | (((e >> E_SOFT_SHIFT) & 7) << 3); }
static int is_leaf(uint64_t e, int level) { return level == 0 || (e & E_HUGE); }

/* ---- JSON in (flat objects only) and out ---- */
static const char *field(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? p + strlen(pat) : NULL;
}
static int get_int(const char *line, const char *key, long long *out) {
    const char *p = field(line, key);
    if (!p) return 0;
    char *end;
    *out = strtoll(p, &end, 10);
    return end != p;
}
static int get_str(const char *line, const char *key, char *out, size_t n) {
    const char *p = field(line, key);
    if (!p || *p != '"') return 0;
    p++;
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < n) out[i++] = *p++;
    out[i] = 0;
    return *p == '"';
}
static int get_hex(const char *line, const char *key, uint64_t *out) {
    char s[40];
    if (!get_str(line, key, s, sizeof s) || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || !s[2]) return 0;
    char *end;
    *out = strtoull(s + 2, &end, 16);
    return *end == 0 && strlen(s + 2) <= 16;
}

static long long req_id;
static void ok(const char *extra) { printf("{\"id\":%lld,\"ok\":true%s}\n", req_id, extra ? extra : ""); }
static void err(const char *category, const char *message) {
    printf("{\"id\":%lld,\"ok\":false,\"error\":\"%s\",\"message\":\"%s\"}\n", req_id, category, message);
}

/* ---- checks, in the order the protocol fixes ---- */
static const char *check_flags(uint64_t f) {
    if (f & ~F_ALL) return "bad_flags";
    if ((f & F_WRITE) && !(f & F_READ)) return "bad_flags";
    if (!(f & 7)) return "bad_flags";
    return NULL;
}
static const char *check_range(struct space *sp, uint64_t gpa, uint64_t size) {
    if (size == 0) return "empty_range";
    if (gpa & (PAGE - 1)) return "unaligned";
    if (size & (PAGE - 1)) return "unaligned";
    if (gpa + size < gpa) return "overflow";
    if (gpa < sp->mstart || gpa + size > sp->mstart + sp->msize) return "out_of_range";
    return NULL;
}
static int overlaps(const struct area *a, uint64_t lo, uint64_t hi) {
#ifdef BUG_OVERLAP_MISSES_CONTAINMENT
    uint64_t last = hi - 1;
    return (lo >= a->start && lo < a->start + a->size) || (last >= a->start && last < a->start + a->size);
#else
    return a->start < hi && lo < a->start + a->size;
#endif
}
static int is_free(struct space *sp, uint64_t lo, uint64_t hi) {
    for (int i = 0; i < sp->nareas; i++)
        if (overlaps(&sp->areas[i], lo, hi)) return 0;
    return 1;
}
static struct area *area_at(struct space *sp, uint64_t gpa) {
    for (int i = 0; i < sp->nareas; i++) {
        struct area *a = &sp->areas[i];
#ifdef BUG_OFF_BY_ONE_END
        if (gpa >= a->start && gpa - a->start < a->size + PAGE) return a;
#else
        if (gpa >= a->start && gpa - a->start < a->size) return a;
#endif
    }
    return NULL;
}
static int add_area(struct space *sp, struct area a) {
    if (sp->nareas == MAX_AREAS) return 0;
    int i = sp->nareas++;
    while (i > 0 && sp->areas[i - 1].start > a.start) { sp->areas[i] = sp->areas[i - 1]; i--; }
    sp->areas[i] = a;
    return 1;
}

/* ---- page tables ---- */
/* The table at `level` for gpa, creating tables on the way; NULL if out of frames. */
static uint64_t *walk_create(struct space *sp, uint64_t gpa, int level) {
    uint64_t *t = table(sp->root);
    for (int l = 3; l > level; l--) {
        uint64_t *e = &t[idx(gpa, l)];
        if (!present(*e)) {
            uint64_t n = table_alloc();
            if (!n) return NULL;
            *e = (n & E_ADDR) | 7;
        }
        t = table(*e & E_ADDR);
    }
    return t;
}
/* Replaces a huge leaf by a table of the next smaller leaves. */
static int split(uint64_t *e, int level) {
    uint64_t n = table_alloc();
    if (!n) return 0;
    uint64_t *t = table(n), base = *e & E_ADDR, flags = entry_flags(*e);
    for (int i = 0; i < 512; i++) t[i] = encode(base + (uint64_t)i * span(level - 1), flags, level - 1);
    *e = (n & E_ADDR) | 7;
    return 1;
}
/* Removes leaves in [lo, hi) below table t (at `level`, covering from base). */
static void clear_range(struct space *sp, uint64_t *t, int level, uint64_t base, uint64_t lo, uint64_t hi, int owned) {
    uint64_t s = span(level);
    for (int i = 0; i < 512; i++) {
        uint64_t es = base + (uint64_t)i * s, ee = es + s;
        if (ee <= lo || es >= hi || !present(t[i])) continue;
        if (is_leaf(t[i], level)) {
            if (es >= lo && ee <= hi) {
                if (owned) { frame_free(t[i] & E_ADDR); sp->data_frames--; }
                t[i] = 0;
                continue;
            }
#ifdef BUG_ABORT_PARTIAL_HUGE
            fprintf(stderr, "ept_target: partial unmap of a huge page at 0x%" PRIx64 "\n", es);
            abort();
#endif
#ifdef BUG_PARTIAL_UNMAP_DROPS_HUGE
            t[i] = 0;
            continue;
#endif
            if (!split(&t[i], level)) { t[i] = 0; continue; }
        }
        clear_range(sp, table(t[i] & E_ADDR), level - 1, es, lo, hi, owned);
    }
}
/* New flags for leaves in [lo, hi); huge leaves cut by the range are split. */
static int flag_range(uint64_t *t, int level, uint64_t base, uint64_t lo, uint64_t hi, uint64_t flags) {
    uint64_t s = span(level);
    for (int i = 0; i < 512; i++) {
        uint64_t es = base + (uint64_t)i * s, ee = es + s;
        if (ee <= lo || es >= hi || !present(t[i])) continue;
        if (is_leaf(t[i], level)) {
            if (es >= lo && ee <= hi) { t[i] = encode(t[i] & E_ADDR, flags, level); continue; }
            if (!split(&t[i], level)) return 0;
        }
        if (!flag_range(table(t[i] & E_ADDR), level - 1, es, lo, hi, flags)) return 0;
    }
    return 1;
}
static void free_tables(uint64_t hpa, int level, int owned_data, struct space *sp) {
    uint64_t *t = table(hpa);
    for (int i = 0; i < 512 && level > 0; i++)
        if (present(t[i]) && !is_leaf(t[i], level)) free_tables(t[i] & E_ADDR, level - 1, owned_data, sp);
    frame_free(hpa);
}
/* translate: leaf level found, or -1. */
static int lookup(struct space *sp, uint64_t gpa, uint64_t *hpa, uint64_t *flags) {
    uint64_t *t = table(sp->root);
    for (int l = 3; l >= 0; l--) {
        uint64_t e = t[idx(gpa, l)];
        if (!present(e)) return -1;
        if (is_leaf(e, l)) {
            *hpa = (e & E_ADDR & ~(span(l) - 1)) + (gpa & (span(l) - 1));
            *flags = entry_flags(e);
            return l;
        }
        t = table(e & E_ADDR);
    }
    return -1;
}

/* Cuts every area at lo and hi; the parts inside get `flags`, or go when drop. */
static void reshape(struct space *sp, uint64_t lo, uint64_t hi, int drop, uint64_t flags) {
    struct area out[MAX_AREAS * 2];
    int n = 0;
    for (int i = 0; i < sp->nareas; i++) {
        struct area a = sp->areas[i];
        uint64_t end = a.start + a.size;
        if (!(a.start < hi && lo < end)) { out[n++] = a; continue; }
        if (a.start < lo) { struct area l = a; l.size = lo - a.start; out[n++] = l; }
        if (!drop) {
            struct area m = a;
            m.start = a.start > lo ? a.start : lo;
            m.size = (end < hi ? end : hi) - m.start;
            m.host = a.host + (m.start - a.start);
            m.flags = flags;
            out[n++] = m;
        }
        if (end > hi) { struct area r = a; r.start = hi; r.size = end - hi; r.host = a.host + (hi - a.start); out[n++] = r; }
    }
    if (n > MAX_AREAS) n = MAX_AREAS; /* cannot happen in the driver's cases */
    memcpy(sp->areas, out, sizeof(struct area) * (size_t)n);
    sp->nareas = n;
}

/* ---- operations ---- */
static void op_map_linear(struct space *sp, uint64_t gpa, uint64_t hpa, uint64_t size, uint64_t flags) {
    const char *e = check_flags(flags);
    if (!e) e = check_range(sp, gpa, size);
    if (!e && (hpa & (PAGE - 1))) e = "unaligned";
    if (!e && hpa + size < hpa) e = "overflow";
    if (!e && !is_free(sp, gpa, gpa + size)) e = "overlap";
    if (!e && (hpa >= (1ull << 52) || size > (1ull << 52) - hpa)) e = "out_of_range";
    if (e) { err(e, "refused"); return; }
    uint64_t g = gpa, h = hpa, end = gpa + size;
    while (g < end) {
        int level = 0;
        for (int l = 2; l >= 1; l--)
            if (!(g & (span(l) - 1)) && !(h & (span(l) - 1)) && end - g >= span(l)) { level = l; break; }
        uint64_t *t = walk_create(sp, g, level);
        if (!t) { clear_range(sp, table(sp->root), 3, 0, gpa, g, 0); err("no_memory", "no frame for a table"); return; }
        t[idx(g, level)] = encode(h, flags, level);
        g += span(level);
        h += span(level);
    }
    add_area(sp, (struct area){gpa, size, flags, hpa, LINEAR});
    ok(NULL);
}
static void op_map_alloc(struct space *sp, uint64_t gpa, uint64_t size, uint64_t flags, int eager) {
    const char *e = check_flags(flags);
    if (!e) e = check_range(sp, gpa, size);
    if (!e && !is_free(sp, gpa, gpa + size)) e = "overlap";
    if (e) { err(e, "refused"); return; }
    if (eager) {
        for (uint64_t g = gpa; g < gpa + size; g += PAGE) {
            uint64_t *t = walk_create(sp, g, 0);
            uint64_t f = t ? frame_alloc() : 0;
            if (!f) { clear_range(sp, table(sp->root), 3, 0, gpa, g, 1); err("no_memory", "out of frames"); return; }
            t[idx(g, 0)] = encode(f, flags, 0);
            sp->data_frames++;
        }
    }
    add_area(sp, (struct area){gpa, size, flags, 0, eager ? EAGER : LAZY});
    ok(NULL);
}
static void op_unmap(struct space *sp, uint64_t gpa, uint64_t size) {
    const char *e = check_range(sp, gpa, size);
    if (e) { err(e, "refused"); return; }
    uint64_t hi = gpa + size;
    for (int i = 0; i < sp->nareas; i++) {
        struct area *a = &sp->areas[i];
        uint64_t end = a->start + a->size;
        if (!(a->start < hi && gpa < end)) continue;
        uint64_t lo2 = a->start > gpa ? a->start : gpa, hi2 = end < hi ? end : hi;
        clear_range(sp, table(sp->root), 3, 0, lo2, hi2, a->kind != LINEAR);
    }
    reshape(sp, gpa, hi, 1, 0);
    ok(NULL);
}
static void op_protect(struct space *sp, uint64_t gpa, uint64_t size, uint64_t flags) {
    const char *e = check_flags(flags);
    if (!e) e = check_range(sp, gpa, size);
    if (e) { err(e, "refused"); return; }
    if (!flag_range(table(sp->root), 3, 0, gpa, gpa + size, flags)) { err("no_memory", "no frame to split a leaf"); return; }
    reshape(sp, gpa, gpa + size, 0, flags);
    ok(NULL);
}
static void op_fault(struct space *sp, uint64_t gpa, uint64_t access) {
    const char *o;
    struct area *a = area_at(sp, gpa);
    uint64_t hpa, fl;
    if (gpa < sp->mstart || gpa - sp->mstart >= sp->msize) o = "outside_range";
    else if (!a) o = "no_area";
    else if ((access & 7 & a->flags) != (access & 7)) o = "access_not_allowed";
    else if (a->kind == LINEAR) o = "linear_backend";
    else if (lookup(sp, gpa, &hpa, &fl) >= 0) o = "already_present";
    else {
        uint64_t *t = walk_create(sp, gpa, 0);
        uint64_t f = t ? frame_alloc() : 0;
        if (!f) { err("no_memory", "out of frames"); return; }
        t[idx(gpa, 0)] = encode(f, a->flags, 0);
        sp->data_frames++;
        o = "handled";
    }
    char buf[64];
    snprintf(buf, sizeof buf, ",\"outcome\":\"%s\"", o);
    ok(buf);
}
/* The host pointer for each byte chunk of [gpa, gpa+8), checked page by page. */
static const char *access_word(struct space *sp, uint64_t gpa, uint64_t need, uint8_t *ptrs[2], size_t lens[2]) {
    if (gpa + 8 < gpa) return "overflow";
    int n = 0;
    uint64_t cur = gpa, end = gpa + 8;
    while (cur < end) {
        uint64_t chunk_end = (cur & ~(PAGE - 1)) + PAGE;
        if (chunk_end > end) chunk_end = end;
        struct area *a = area_at(sp, cur);
        uint64_t hpa, fl;
        if (!a) return "unmapped";
        int mapped = lookup(sp, cur, &hpa, &fl) >= 0;
        if (a->kind != LINEAR && !mapped) return "not_present";
        if ((a->flags & need) != need) return "access_denied";
        if (a->kind == LINEAR || hpa < POOL_BASE || hpa >= POOL_BASE + POOL_FRAMES * PAGE) return "not_host_memory";
        ptrs[n] = pool + (hpa - POOL_BASE);
        lens[n] = (size_t)(chunk_end - cur);
        n++;
        cur = chunk_end;
    }
    return NULL;
}
static void op_read(struct space *sp, uint64_t gpa) {
    uint8_t *p[2] = {0, 0};
    size_t len[2] = {0, 0};
    const char *e = access_word(sp, gpa, F_READ, p, len);
    if (e) { err(e, "refused"); return; }
    uint8_t bytes[8];
    memcpy(bytes, p[0], len[0]);
    if (len[0] < 8) memcpy(bytes + len[0], p[1], 8 - len[0]);
    uint64_t v;
    memcpy(&v, bytes, 8);
    char buf[64];
    snprintf(buf, sizeof buf, ",\"value\":\"0x%" PRIx64 "\"", v);
    ok(buf);
}
static void op_write(struct space *sp, uint64_t gpa, uint64_t v) {
    uint8_t *p[2] = {0, 0};
    size_t len[2] = {0, 0};
    const char *e = access_word(sp, gpa, F_WRITE, p, len);
    if (e) { err(e, "refused"); return; }
    uint8_t bytes[8];
    memcpy(bytes, &v, 8);
    memcpy(p[0], bytes, len[0]);
    if (len[0] < 8) memcpy(p[1], bytes + len[0], 8 - len[0]);
    ok(NULL);
}
static void op_translate(struct space *sp, uint64_t gpa) {
    uint64_t hpa, fl;
    int l = gpa < (1ull << 48) ? lookup(sp, gpa, &hpa, &fl) : -1;
    if (l < 0) { ok(",\"mapped\":false"); return; }
    char buf[160];
    snprintf(buf, sizeof buf, ",\"mapped\":true,\"hpa\":\"0x%" PRIx64 "\",\"flags\":%" PRIu64 ",\"page_size\":\"0x%" PRIx64 "\"", hpa, fl, span(l));
    ok(buf);
}
static void drop(struct space *sp) {
    for (int i = 0; i < sp->nareas; i++) {
        struct area *a = &sp->areas[i];
        clear_range(sp, table(sp->root), 3, 0, a->start, a->start + a->size, a->kind != LINEAR);
    }
    free_tables(sp->root, 3, 0, sp);
    memset(sp, 0, sizeof *sp);
}

static void serve(const char *line) {
    char op[32];
    long long s = -1;
    if (!get_int(line, "id", &req_id)) req_id = -1;
    if (!get_str(line, "op", op, sizeof op)) { err("bad_request", "no op"); return; }
    if (!strcmp(op, "hello")) {
        ok(",\"name\":\"c-target (4-level EPT in C)\",\"protocol\":1,\"formats\":[\"ept\"],"
           "\"ops\":[\"hello\",\"new_space\",\"map_linear\",\"map_alloc\",\"unmap\",\"protect\",\"translate\",\"fault\",\"read\",\"write\",\"live_frames\",\"drop_space\"],"
           "\"zeroes_frames\":true");
        return;
    }
    if (!get_int(line, "space", &s) || s < 0 || s >= MAX_SPACES) { err("bad_request", "bad space"); return; }
    struct space *sp = &spaces[s];
    uint64_t gpa = 0, hpa = 0, size = 0, value = 0;
    long long flags = 0;
    if (!strcmp(op, "new_space")) {
        char fmt[16];
        if (sp->used) { err("bad_request", "space exists"); return; }
        if (!get_str(line, "format", fmt, sizeof fmt) || strcmp(fmt, "ept")) { err("unsupported", "only ept"); return; }
        if (!get_hex(line, "start", &gpa) || !get_hex(line, "size", &size)) { err("bad_request", "start and size"); return; }
        uint64_t root = table_alloc();
        if (!root) { err("no_memory", "no root"); return; }
        *sp = (struct space){.used = 1, .root = root, .mstart = gpa, .msize = size};
        ok(NULL);
        return;
    }
    if (!sp->used) { err("bad_request", "no such space"); return; }
    if (!strcmp(op, "drop_space")) { drop(sp); ok(NULL); return; }
    if (!strcmp(op, "live_frames")) {
        char buf[48];
        snprintf(buf, sizeof buf, ",\"frames\":%ld", sp->data_frames);
        ok(buf);
        return;
    }
    int have_gpa = get_hex(line, "gpa", &gpa);
    if (!strcmp(op, "translate") && have_gpa) { op_translate(sp, gpa); return; }
    if (!strcmp(op, "read") && have_gpa) { op_read(sp, gpa); return; }
    if (!strcmp(op, "write") && have_gpa && get_hex(line, "value", &value)) { op_write(sp, gpa, value); return; }
    if (!strcmp(op, "fault") && have_gpa && get_int(line, "access", &flags)) { op_fault(sp, gpa, (uint64_t)flags); return; }
    if (!have_gpa || !get_hex(line, "size", &size)) { err("bad_request", "gpa and size"); return; }
    if (!strcmp(op, "unmap")) { op_unmap(sp, gpa, size); return; }
    if (!get_int(line, "flags", &flags) || flags < 0) { err("bad_request", "flags"); return; }
    if (!strcmp(op, "protect")) { op_protect(sp, gpa, size, (uint64_t)flags); return; }
    if (!strcmp(op, "map_linear") && get_hex(line, "hpa", &hpa)) { op_map_linear(sp, gpa, hpa, size, (uint64_t)flags); return; }
    if (!strcmp(op, "map_alloc")) {
        char pop[8];
        if (!get_str(line, "populate", pop, sizeof pop)) { err("bad_request", "populate"); return; }
        op_map_alloc(sp, gpa, size, (uint64_t)flags, !strcmp(pop, "eager"));
        return;
    }
    err("unsupported", "unknown operation");
}

int main(void) {
    pool = malloc((size_t)POOL_FRAMES * PAGE);
    if (!pool) return 1;
    memset(pool, 0xA5, (size_t)POOL_FRAMES * PAGE); /* memory is not zero until someone zeroes it */
    for (uint32_t i = 0; i < POOL_FRAMES; i++) free_stack[i] = POOL_FRAMES - 1 - i;
    free_top = POOL_FRAMES;
    static char line[1 << 16];
    while (fgets(line, sizeof line, stdin)) {
        serve(line);
        fflush(stdout);
    }
    return 0;
}
