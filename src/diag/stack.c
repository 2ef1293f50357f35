/*
 * stack.c — the call stack of an allocation, stored once per distinct stack.
 *
 * Unwinding (glibc's backtrace, DWARF call frame information) costs about 200 ns a frame, too much
 * to pay on every malloc of a busy program. Most allocations come from a few call sites, so a
 * cache keyed by the program's call site and its stack pointer there answers almost all of them:
 * the same (site, sp) pair is, in practice, the same path through the program. Not always (the
 * same function called from two lines of its caller), so a hit must also find the next two return
 * addresses where they were on the stack the first time, one lookup in 64 unwinds anyway and
 * compares, and a key found to stand for two stacks is unwound every time from then on.
 *
 * Stacks live in a table that only grows: records in an arena, a hash of the frames to find them,
 * and an array by id. Inserting is lock-free (compare-and-swap into an empty slot); reading needs
 * no lock at all. All of it is memory the OS layer maps for the diagnostic layer alone.
 */
#define _GNU_SOURCE
#include <execinfo.h>
#include <string.h>

#include "diag.h"

#define MAX_STACKS (1u << 20) /* ids fit in 20 bits: 1 .. MAX_STACKS - 1 */
#define SLOTS (1u << 21) /* load stays under one half */
#define CACHE (1u << 16)
#define ARENA ((size_t)256 << 20)
#define VERIFY_EVERY 64

static sx_stack **by_id;            /* [1 .. MAX_STACKS - 1] */
static _Atomic(sx_stack *) *slots;  /* by hash of the frames */
static _Atomic uint64_t *cache;     /* (site, sp) hash -> check << 32 | id (id 0: always unwind) */
static uint8_t *arena;
static _Atomic size_t arena_used;
static _Atomic uint32_t nstacks;
static __thread unsigned tls_verify __attribute__((tls_model("initial-exec")));

void sx_stack_init(void) {
    by_id = sx_diag_map((MAX_STACKS + 1) * sizeof *by_id);
    slots = sx_diag_map(SLOTS * sizeof *slots);
    cache = sx_diag_map(CACHE * sizeof *cache);
    arena = sx_diag_map(ARENA);
    /* The first backtrace loads libgcc_s (which allocates): do it now, untracked. */
    void *warm[4];
    backtrace(warm, 4);
}

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

/* Return addresses from the program's call site outwards. */
static uint32_t unwind(uintptr_t site, uintptr_t *out, int depth) {
    void *buf[64 + 16];
    int n = backtrace(buf, depth + 16);
    int start = 0;
    while (start < n && start < 16 && (uintptr_t)buf[start] != site) start++;
    if (start == n || start == 16) { /* not found (should not happen): the site alone */
        out[0] = site;
        return 1;
    }
    uint32_t k = 0;
    for (int i = start; i < n && (int)k < depth; i++) out[k++] = (uintptr_t)buf[i];
    return k;
}

static sx_stack *new_record(const uintptr_t *f, uint32_t n, uint64_t h) {
    size_t need = sx_align_up(sizeof(sx_stack) + n * sizeof(uintptr_t), 16);
    size_t at = atomic_fetch_add_explicit(&arena_used, need, memory_order_relaxed);
    if (at + need > ARENA) return NULL;
    sx_stack *s = (sx_stack *)(arena + at);
    s->depth = n;
    s->hash = h;
    memcpy(s->frames, f, n * sizeof *f);
    return s;
}

static sx_stack *intern(const uintptr_t *f, uint32_t n) {
    uint64_t h = n;
    for (uint32_t i = 0; i < n; i++) h = mix(h, f[i]);
    sx_stack *mine = NULL;
    for (size_t i = h & (SLOTS - 1), probes = 0; probes < SLOTS / 2; i = (i + 1) & (SLOTS - 1), probes++) {
        sx_stack *s = atomic_load_explicit(&slots[i], memory_order_acquire);
        if (!s) {
            if (!mine) {
                uint32_t id = atomic_fetch_add_explicit(&nstacks, 1, memory_order_relaxed) + 1;
                if (id >= MAX_STACKS || !(mine = new_record(f, n, h))) return NULL;
                mine->id = id;
                by_id[id] = mine;
            }
            if (atomic_compare_exchange_strong_explicit(&slots[i], &s, mine, memory_order_release,
                                                        memory_order_acquire))
                return mine;
            /* another thread took the slot: s is its record; compare it like any other */
        }
        if (s->hash == h && s->depth == n && !memcmp(s->frames, f, n * sizeof *f)) {
            if (mine) by_id[mine->id] = NULL; /* lost the race: an id with no stack */
            return s;
        }
    }
    return NULL;
}

/* A cache entry, one word: check (20 bits) | id (20) | k1 (12) | k2 (12). k1 and k2 are where,
 * in words above the program's stack pointer, the stack's second and third return addresses
 * were found; a hit must find them there again (0: not found, not checked). This tells apart
 * the calls that the site and stack pointer alone would not: the same function called from two
 * lines of its caller. */
#define K_MAX 4095

static uint32_t find_word(uintptr_t sp, uint32_t from, uintptr_t v) {
    const uintptr_t *w = (const uintptr_t *)sp;
    for (uint32_t k = from; k <= 512; k++)
        if (w[k] == v) return k;
    return 0;
}

static bool still_there(uintptr_t sp, uint64_t v, const sx_stack *s) {
    uint32_t k1 = (uint32_t)(v >> 12) & K_MAX, k2 = (uint32_t)v & K_MAX;
    const uintptr_t *w = (const uintptr_t *)sp;
    return (!k1 || (s->depth > 1 && w[k1] == s->frames[1])) && (!k2 || (s->depth > 2 && w[k2] == s->frames[2]));
}

sx_stack *sx_stack_here(sx_site at) {
    uint64_t key = mix(mix(0, at.pc), at.sp);
    uint64_t check = (key >> 44) | 1;
    _Atomic uint64_t *c = &cache[(key >> 7) & (CACHE - 1)];
    uint64_t v = at.sp ? atomic_load_explicit(c, memory_order_relaxed) : 0;
    bool hit = (v >> 44) == check;
    uint32_t cached = (uint32_t)(v >> 24) & (MAX_STACKS - 1);
    if (hit && cached && (++tls_verify % VERIFY_EVERY) != 0) {
        sx_stack *s = by_id[cached];
        if (s && still_there(at.sp, v, s)) return s;
    }

    uintptr_t frames[64];
    uint32_t n = unwind(at.pc, frames, sx_opt.diag_depth);
    sx_stack *s = intern(frames, n);
    if (!at.sp) return s;
    uint32_t id = s ? s->id : 0, k1 = 0, k2 = 0;
    if (n > 1) k1 = find_word(at.sp, 1, frames[1]);
    if (n > 2 && k1) k2 = find_word(at.sp, k1 + 1, frames[2]);
    /* two stacks behind one key that the return addresses cannot tell apart: unwind every time */
    if (hit && cached && cached != id && s && still_there(at.sp, v, by_id[cached])) id = 0;
    if (!hit || cached)
        atomic_store_explicit(c, check << 44 | (uint64_t)id << 24 | (uint64_t)k1 << 12 | k2,
                              memory_order_relaxed);
    return s;
}

sx_stack *sx_stack_get(uint32_t id) { return id && id < MAX_STACKS ? by_id[id] : NULL; }

uint32_t sx_stack_count(void) {
    uint32_t n = atomic_load(&nstacks);
    return n >= MAX_STACKS ? MAX_STACKS - 1 : n;
}
