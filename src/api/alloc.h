/*
 * alloc.h — the fast paths of malloc, calloc and free, inlined into every entry point.
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
#ifndef STRATA_ALLOC_H
#define STRATA_ALLOC_H

#include <string.h>

#include "../internal.h"

/* A block from the page the direct table has for slot (size/16); NULL if that page has none. */
static inline void *sx_direct_pop(sx_heap *h, size_t slot) {
    sx_page *pg = h->direct[slot];
    sx_block *b = pg->free;
    if (sx_unlikely(b == NULL)) return NULL;
    sx_block *next = sx_block_next(b);
    /* the check out of line, as a tail call: malloc stays a leaf function */
    if (sx_unlikely(sx_block_far(b, next))) return sx_malloc_far(h, slot, pg, b, next);
    pg->free = next;
    pg->used++;
    sx_counts_of(h)->n_direct[slot]++;
    sx_block_unfree(b);
    return b;
}

/* A block from the current page of class bin (sizes past the direct table); NULL if it has none
 * free. The page goes to *pgp when pgp is given. */
static inline void *sx_bin_pop(sx_heap *h, unsigned bin, sx_page **pgp) {
    sx_page *pg = h->bins[bin].first; /* the empty heap has none */
    sx_block *b = pg ? pg->free : NULL;
    if (sx_unlikely(b == NULL)) return NULL;
    pg->free = sx_block_pop(pg, b);
    pg->used++;
    sx_counts_of(h)->n_alloc[bin]++;
    sx_block_unfree(b);
    if (pgp) *pgp = pg;
    return b;
}

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

/* Is p the start of a block of page pg that has been made available? (see page.c) */
static inline bool sx_block_valid(const sx_page *pg, const void *p) {
    /* 32 bits suffice: p and start lie in the same 4 MiB, and a negative offset wraps to a value
     * far above any capacity */
    uint32_t x = (uint32_t)((uintptr_t)p - (uintptr_t)pg->start) * pg->inv;
    uint32_t q = (x >> pg->shift) | (x << ((32 - pg->shift) & 31));
    return q < __atomic_load_n(&pg->capacity, __ATOMIC_RELAXED);
}

/* The last step of free, for a block already checked: its page's local list if the thread owns
 * the page, else the owner's (remote.c). */
static inline __attribute__((always_inline)) void sx_free_block(sx_segment *seg, sx_page *pg, sx_block *b) {
    sx_heap *h = sx_tls_heap;
    if (sx_likely(atomic_load_explicit(&seg->heap, memory_order_relaxed) == h)) {
        sx_counts_of(h)->n_free[pg->bin]++;
        sx_page_free_block(h, pg, b);
    } else
        sx_free_remote(seg, pg, b);
}

/* free without secure mode (api/secure.c calls it for blocks leaving its quarantine) */
static inline __attribute__((always_inline)) void sx_free_core(void *p) {
    sx_segment *seg = sx_segment_of(p);
    if (sx_unlikely(!sx_segmap_contains(seg))) { /* NULL too: its "segment" is past the map */
        sx_free_foreign(p, "free");
        return;
    }
    sx_page *pg = sx_page_of(seg, p);
    sx_block *b = (sx_block *)p;
#if STRATA_HARDEN
    if (sx_unlikely(!sx_block_valid(pg, p))) {
        sx_free_bad(p, seg, pg);
        return;
    }
    uintptr_t key = sx_secret ^ (uintptr_t)p;
    if (sx_unlikely(b->key == key)) sx_double_free(p, "free");
    b->key = key;
#endif
    sx_free_block(seg, pg, b);
}

static inline __attribute__((always_inline)) void sx_free_inline(void *p) {
    if (sx_unlikely(sx_secure_on)) {
        sx_secure_free(p, "free", 0, false);
        return;
    }
    sx_free_core(p);
}

/* realloc that stays within its block's size class: the common case of a growing string. */
static inline void *sx_realloc_inline(void *p, size_t size, const char *fn) {
    if (sx_likely(p != NULL && size != 0 && !sx_secure_on)) {
        sx_segment *seg = sx_segment_of(p);
        if (sx_likely(sx_segmap_contains(seg))) {
            sx_page *pg = sx_page_of(seg, p);
            size_t bs = pg->block_size;
            if (sx_likely(pg->kind == SX_SPAN_PAGE && size <= bs && size >= bs / 2 &&
                          sx_block_valid(pg, p) &&
                          ((sx_block *)p)->key != (sx_secret ^ (uintptr_t)p)))
                return p;
        }
    }
    return sx_realloc(p, size, fn);
}

#endif
