/*
 * stack.c — the call stack of an allocation, stored once per distinct stack.
 *
 * Unwinding (libgcc's DWARF unwinder, support/unwind.c) costs about 200 ns a frame, too much
 * to pay on every malloc of a busy program. Most allocations come from a few call sites, so a
 * cache keyed by the program's call site and its stack pointer there answers almost all of them:
 * the same (site, sp) pair is, in practice, the same path through the program. Not always (the
 * same function called from two lines of its caller, or a helper called from many callers at one
 * depth), so the key goes on with the words where the next return addresses were found on the
 * stack, as deep as it takes to tell apart the stacks seen (see the cache below), and every so
 * often a lookup unwinds anyway to check: one in 256 at first, then, while the checks agree, half
 * as often each time, down to one in 4096; a check that disagrees goes back to one in 256.
 *
 * Stacks live in a table that only grows: records in an arena, a hash of the frames to find them,
 * and an array by id. Inserting is lock-free (compare-and-swap into an empty slot); reading needs
 * no lock at all. All of it is memory the OS layer maps for the diagnostic layer alone.
 */
#define _GNU_SOURCE
#include <string.h>

#include "diag.h"

#define MAX_STACKS (1u << 20) /* ids fit in 20 bits: 1 .. MAX_STACKS - 1 */
#define SLOTS (1u << 21) /* load stays under one half */
#define CACHE (1u << 17)
#define ARENA ((size_t)256 << 20)
#define VERIFY_EVERY 256  /* a thread's first checks: one lookup in 256 */
#define VERIFY_RARELY 4096 /* after checks that agreed, halving their rate each time */

/* [1 .. MAX_STACKS - 1]: a record is published here with release, after it is filled in; the
 * cache (below) holds ids, which another thread may read (relaxed) and look up here (acquire) */
static _Atomic(sx_stack *) *by_id;
static _Atomic(sx_stack *) *slots;  /* by hash of the frames */
static _Atomic uint64_t *cache;     /* see cache_get */
static uint8_t *arena;
static _Atomic size_t arena_used;
static _Atomic uint32_t nstacks;
static __thread unsigned tls_verify_every __attribute__((tls_model("initial-exec")));

/* Each thread's memory of its last lookups (sx_stack_memos, read by sx_stack_here in diag.h), by
 * call site: the walk through the cache below (site, stack pointer, and the words read on the
 * stack at each level) and where it led. The same words give the same walk, so a match is the
 * cache's answer without the cache's hashing and loads. `sx_stack_gen` changes when the cache
 * learns that a leaf stood for two stacks (the memories made before are dropped). */
__thread sx_stack_memo sx_stack_memos[SX_STACK_MEMO] __attribute__((tls_model("initial-exec")));
__thread int sx_stack_verify_left __attribute__((tls_model("initial-exec")));
_Atomic uint32_t sx_stack_gen;
typedef sx_stack_memo memo;
#define MEMO_DEPTH SX_STACK_MEMO_DEPTH

void sx_stack_init(void) {
    by_id = sx_diag_map((MAX_STACKS + 1) * sizeof *by_id);
    slots = sx_diag_map(SLOTS * sizeof *slots);
    cache = sx_diag_map(CACHE * sizeof *cache);
    arena = sx_diag_map(ARENA);
    /* libstrata's code, which the unwinder (support/unwind.c, linked in: nothing is loaded) leaves
     * out of stacks, read from /proc/self/maps now */
    sx_unwind_ready(sx_os_page);
}

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

/* Return addresses from the program's call site outwards. */
static uint32_t unwind(uintptr_t site, uintptr_t *out, int depth) {
    void *buf[SX_UNWIND_MAX];
    int n = sx_unwind(buf, depth, site);
    if (n == 0 || (uintptr_t)buf[0] != site) { /* not found (should not happen): the site alone */
        out[0] = site;
        return 1;
    }
    for (int i = 0; i < n; i++) out[i] = (uintptr_t)buf[i];
    return (uint32_t)n;
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
                atomic_store_explicit(&by_id[id], mine, memory_order_release);
            }
            if (atomic_compare_exchange_strong_explicit(&slots[i], &s, mine, memory_order_release,
                                                        memory_order_acquire))
                return mine;
            /* another thread took the slot: s is its record; compare it like any other */
        }
        if (s->hash == h && s->depth == n && !memcmp(s->frames, f, n * sizeof *f)) {
            if (mine) /* lost the race: an id with no stack */
                atomic_store_explicit(&by_id[mine->id], NULL, memory_order_relaxed);
            return s;
        }
    }
    return NULL;
}

/* The cache: one word an entry, tag (40 bits) | value (24). The first key is the site and the
 * stack pointer; an entry either gives the stack's id (a leaf) or says "look deeper" (a node): at
 * which word above the stack pointer the next return address of the stacks seen at this key
 * lies, and the word found there goes into the next key. A new path gets nodes for its
 * first two return addresses, then a leaf (checked against a full unwind now and then); when a
 * stack's unwind disagrees with a leaf, the leaf becomes a node one return address deeper, so a
 * helper called from many callers at the same depth gets one leaf per caller instead of one entry
 * they keep overwriting, and a wrapper chain (PyObject_Malloc <- PyUnicode_New <- ...) gets as
 * many levels as it takes to tell its callers apart. A word's offset is a property of the frame
 * sizes on the path that the key already names, so it is learned once per key. */
#define NODE (1u << 23)
#define MIN_LEVELS 2 /* a leaf keyed by the site's two callers at least (when they are found) */
#define K_SPAN 2048 /* how far above the last one the next return address is looked for */

static bool cache_get(uint64_t key, uint32_t *value) {
    uint64_t v = atomic_load_explicit(&cache[key & (CACHE - 1)], memory_order_relaxed);
    *value = (uint32_t)v & 0xffffff;
    return (v >> 24) == ((key >> 24) | 1);
}

static void cache_put(uint64_t key, uint32_t value) {
    atomic_store_explicit(&cache[key & (CACHE - 1)], ((key >> 24) | 1) << 24 | value, memory_order_relaxed);
}

static uint64_t deeper(uint64_t key, uintptr_t sp, uint32_t k) {
    return mix(key, ((const uintptr_t *)sp)[k]);
}

/* Where, above word `after`, the return address v lies (0: not within reach). */
static uint32_t find_word(uintptr_t sp, uint32_t after, uintptr_t v) {
    const uintptr_t *w = (const uintptr_t *)sp;
    for (uint32_t k = after + 1; k <= after + K_SPAN && k < NODE; k++)
        if (w[k] == v) return k;
    return 0;
}

/* Record the unwound stack s (frames f[0..n)) under its keys. False: the cache said otherwise. */
static bool learn(uint64_t key, uintptr_t sp, const uintptr_t *f, uint32_t n, uint32_t id) {
    uint32_t v, at = 0; /* at: the word holding f[level] (f[0], the site, is not on the stack) */
    for (uint32_t level = 0; level < 64; level++) {
        if (!cache_get(key, &v)) { /* a new path: its first return addresses in the key, then a leaf */
            for (uint32_t k; level < MIN_LEVELS && level + 1 < n && (k = find_word(sp, at, f[level + 1]));
                 level++, at = k) {
                cache_put(key, NODE | k);
                key = deeper(key, sp, k);
            }
            break;
        }
        if (v & NODE) {
            if (!(at = v & ~NODE)) { id = 0; break; }
            key = deeper(key, sp, at);
            continue;
        }
        if (v == id) return true;
        atomic_fetch_add_explicit(&sx_stack_gen, 1, memory_order_relaxed); /* memories of this leaf */
        /* a leaf that stands for another stack: they part deeper down, look one level further */
        uint32_t k = level + 1 < n ? find_word(sp, at, f[level + 1]) : 0;
        if (!k || !id) { id = 0; break; } /* cannot tell them apart: unwind every time */
        cache_put(key, NODE | k);
        key = deeper(key, sp, k);
        break;
    }
    cache_put(key, id);
    return false;
}

/* sx_stack_here's way when its memory has no answer: the cache, else (and when a check is due) an
 * unwind. */
sx_stack *sx_stack_lookup(sx_site at) {
    uint64_t key = mix(mix(1, at.pc), at.sp);
    uint32_t v;
    bool check = sx_stack_verify_left <= 0;
    if (at.sp && !check) {
        memo *m = &sx_stack_memos[sx_stack_memo_of(at)];
        uint32_t gen = atomic_load_explicit(&sx_stack_gen, memory_order_relaxed);
        const uintptr_t *w = (const uintptr_t *)at.sp;
        uint32_t n = 0, off[MEMO_DEPTH];
        for (uint64_t k = key; cache_get(k, &v); k = deeper(k, at.sp, v & ~NODE)) {
            if (!(v & NODE)) {
                sx_stack *s = v ? atomic_load_explicit(&by_id[v], memory_order_acquire) : NULL;
                if (s && n <= MEMO_DEPTH) {
                    *m = (memo){.pc = at.pc, .sp = at.sp, .gen = gen, .n = n, .st = s};
                    for (uint32_t i = 0; i < n; i++) m->off[i] = off[i], m->val[i] = w[off[i]];
                }
                if (s) return s;
                break;
            }
            if (!(v & ~NODE)) break;
            if (n < MEMO_DEPTH) off[n] = v & ~NODE;
            n++;
        }
    }
    uintptr_t frames[64];
    uint32_t n = unwind(at.pc, frames, sx_opt.diag_depth);
    sx_stack *s = intern(frames, n);
    bool agreed = at.sp && learn(key, at.sp, frames, n, s ? s->id : 0);
    if (check) { /* the next check: later when the cache was right, soon when it was not */
        unsigned every = tls_verify_every;
        every = !agreed || !every ? VERIFY_EVERY : every < VERIFY_RARELY ? every * 2 : VERIFY_RARELY;
        tls_verify_every = every;
        sx_stack_verify_left = (int)every;
    }
    return s;
}

sx_stack *sx_stack_get(uint32_t id) {
    return id && id < MAX_STACKS ? atomic_load_explicit(&by_id[id], memory_order_acquire) : NULL;
}

uint32_t sx_stack_count(void) {
    uint32_t n = atomic_load(&nstacks);
    return n >= MAX_STACKS ? MAX_STACKS - 1 : n;
}
