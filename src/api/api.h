/*
 * api.h — the api layer: malloc, free and the rest of the glibc interface (api.c, alloc.c),
 * misuse (misuse.c), mallopt and friends (compat.c), giving back what is cached (reclaim.c),
 * start-up (init.c) and the statistics report (stats.c). Below it: secure, heap, region, os,
 * support. Above it: explicit, diag.
 *
 * Its fast paths of malloc, calloc and free are inlined into every entry point.
 *
 * malloc of up to 1 KiB: read the thread's heap, index its direct table by size/16, pop the page's
 * free list. No lock, no atomic read-modify-write, no search. Anything else (an empty list, a
 * bigger size, a thread with no heap yet) goes to sx_malloc_slow.
 *
 * Each heap counts its thread's calls (one increment each), for statistics.
 *
 * free: the segment is the address rounded down to 4 MiB; the segment map says whether strata owns
 * it (so a foreign pointer is never dereferenced); the slice descriptor gives the page; one
 * multiply checks that the pointer is the start of a block that exists; the free key in the
 * block's second word catches a double free. A block of the thread's own heap goes on its page's
 * local free list; another heap's block goes to that heap (remote.c).
 */
#ifndef STRATA_API_H
#define STRATA_API_H

#include <string.h>

#include "../secure/secure.h"

#pragma GCC visibility push(hidden)

/* ---- init.c: process start-up; every entry point calls sx_process_init before the core ---- */
extern _Atomic int sx_init_state; /* 0 none, 1 running, 2 done */
void sx_process_init_slow(void);
static inline void sx_process_init(void) {
    if (sx_unlikely(atomic_load_explicit(&sx_init_state, memory_order_acquire) != 2))
        sx_process_init_slow();
}

/* ---- alloc.c: secure mode or the core ---- */
void *sx_malloc_slow(size_t size); /* the malloc fast path's slow path */
void *sx_alloc(size_t size, size_t align, bool zero);
void *sx_realloc(void *p, size_t size, const char *fn);
size_t sx_usable_size(void *p);
int sx_memalign(void **out, size_t align, size_t size);

/* ---- stats.c: the statistics report, taken inside the process (walks every heap and segment) ---- */
void sx_snapshot_take(sx_snapshot *s);
struct strata_stats;
void sx_stats_snapshot(struct strata_stats *out);
/* title NULL: the one-line exit summary of verbose=1; otherwise malloc_stats' report. */
void sx_stats_print(int fd, const char *title);
#pragma GCC visibility pop


/* Sizes the direct table may serve; its slots have no page where they must not (secure mode,
 * stats=1, a threshold below 1 KiB: see sx_heap_direct_point), so that no load is needed here. */
static inline void *sx_malloc_inline(size_t size) {
    if (sx_likely(size <= SX_DIRECT_MAX)) {
        void *p = sx_direct_pop(sx_tls_heap, (size + 15) >> 4);
        if (sx_likely(p != NULL)) return p;
    }
    return sx_malloc_slow(size);
}

static inline void *sx_calloc_inline(size_t count, size_t size) {
    size_t total;
    if (sx_unlikely(__builtin_mul_overflow(count, size, &total))) {
        errno = ENOMEM;
        return NULL;
    }
    if (sx_likely(total <= SX_DIRECT_MAX)) {
        void *p = sx_malloc_inline(total);
        if (sx_likely(p != NULL)) memset(p, 0, total);
        return p;
    }
    return sx_alloc(total, 0, true);
}

static inline __attribute__((always_inline)) void sx_free_inline(void *p) {
    if (sx_unlikely(sx_secure_on)) {
        sx_secure_free(p, "free", 0, false);
        return;
    }
    sx_free_core(p);
}

/* A free that is given the size asked for (free_sized, C++'s sized delete). The size is checked
 * against the block's class: a cheap test first, the exact one (core/misuse.c) only when the
 * size is not between half the block and all of it. */
static inline __attribute__((always_inline)) void sx_free_sized_inline(void *p, size_t size, const char *fn) {
    if (sx_unlikely(sx_secure_on)) {
        sx_secure_free(p, fn, size, true);
        return;
    }
#if STRATA_HARDEN
    sx_segment *seg = sx_segment_of(p);
    if (sx_likely(sx_segmap_contains(seg))) {
        size_t bs = sx_page_of(seg, p)->block_size; /* 0 for huge blocks: always the exact test */
        if (sx_unlikely(size > bs || size * 2 < bs)) sx_size_check(p, size, fn);
    }
#endif
    sx_free_core(p);
}

/* realloc that stays within its block's size class: the common case of a growing string. */
static inline void *sx_realloc_inline(void *p, size_t size, const char *fn) {
    if (sx_likely(p != NULL && size != 0 && !sx_secure_on)) {
        sx_segment *seg = sx_segment_of(p);
        if (sx_likely(sx_segmap_contains(seg))) {
            sx_page *pg = sx_page_of(seg, p);
            size_t bs = sx_page_usable(pg);
            if (sx_likely(pg->kind == SX_SPAN_PAGE && size <= bs && size >= bs / 2 &&
                          sx_block_valid(pg, p) &&
                          ((sx_block *)p)->key != (sx_secret ^ (uintptr_t)p)))
                return p;
        }
    }
    return sx_realloc(p, size, fn);
}

#endif
