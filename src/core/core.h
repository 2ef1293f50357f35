/*
 * core.h — the core layer: allocation without secure mode and without the entry points' concerns
 * (alloc.c: the kind of block a request gets, the retry when the kernel refuses memory, a block's
 * page and size), the free of a block (sx_free_core), misuse (misuse.c: invalid, double and
 * foreign pointers) and giving back everything cached (reclaim.c). Secure mode wraps it; the
 * entry points call it. The process is set up before any of it runs (api/init.c), but for
 * misuse.c, which reads its options itself. Below it: heap, region, os, support.
 */
#ifndef STRATA_CORE_H
#define STRATA_CORE_H

#include "../heap/heap.h"

#pragma GCC visibility push(hidden)

/* ---- alloc.c ---- */
void *sx_heap_alloc(sx_heap *h, size_t size, size_t align, bool zero);
int sx_aligned_bin(size_t size, size_t align); /* the class of an aligned request; -1: none */
/* A block of any size from the calling thread's heap (one of an orphan heap if it is exiting),
 * and once more after sx_reclaim if the kernel refuses memory; NULL with ENOMEM. */
void *sx_core_alloc(size_t size, size_t align, bool zero);
void *sx_core_retry(size_t size, size_t align, bool zero); /* the second try only */
void *sx_alloc_exiting(size_t size, size_t align, bool zero); /* a thread without a heap */
/* A sample of the heap profile is due (h->profile_due): the request served by the profile heap
 * instead of by block p of h, which goes back. */
void *sx_profile_swap(sx_heap *h, void *p, size_t size, size_t align, bool zero);
/* The page of a pointer given back (realloc, malloc_usable_size); NULL if it is foreign. Aborts
 * on pointers into strata's memory that are not live blocks. */
sx_page *sx_block_checked(void *p, const char *fn, sx_segment **segp);
size_t sx_block_size(sx_segment *seg, sx_page *pg, const void *p);
size_t sx_block_usable(void *p, const char *fn, sx_page **pgp); /* 0, *pgp NULL: foreign */
bool sx_large_resize(sx_segment *seg, sx_page *pg, size_t size); /* in place, owner only */

/* ---- reclaim.c: giving back what strata holds and does not use ---- */
/* Everything, from every heap it can reach and every cache; bytes given back (0: nothing was
 * there). pad: bytes kept at the top of the brk heap (malloc_trim's argument). */
size_t sx_reclaim(size_t pad);
void sx_limit_check(void); /* sx_limit_due: look at the usage, reclaim past the mark */

/* ---- misuse.c: invalid, double and foreign frees ---- */
bool sx_is_foreign(const sx_segment *seg, const sx_page *pg, const void *p);
_Noreturn void sx_free_invalid(void *p, const char *fn, sx_segment *seg, sx_page *pg);
void sx_free_bad(void *p, sx_segment *seg, sx_page *pg); /* free() of a pointer that is no block */
_Noreturn void sx_double_free(void *p, const char *fn);
/* A size given back with block p (C++'s sized delete, free_sized) that no request of that size
 * could have got: the wrong type, or a new[] given to delete. Aborts then. */
void sx_size_check(void *p, size_t size, const char *fn);
/* The rest of free for a block of a padded class (or a large block: pg->bin >= SX_PAD_BIN): its
 * canary must be whole (heap.h). */
void sx_free_padded(sx_segment *seg, sx_page *pg, sx_block *b);
void sx_free_foreign(void *p, const char *fn);
void *sx_foreign_realloc(void *p, size_t size);
size_t sx_foreign_usable_size(void *p);

#pragma GCC visibility pop

/* The sampled guard's turn (region/sampled.c), on a slow path: NULL when it is not, or when the
 * block cannot be sampled (too big, every slot live). sample_left goes below zero only when
 * guard_sample is on. */
static inline void *sx_sample_take(sx_heap *h, size_t size, size_t align, bool zero) {
    if (sx_likely(h->sample_left >= 0)) return NULL;
    if (size > sx_os_page - 16) return NULL; /* too big for a slot: the next request takes the turn */
    bool first = h->sample_rng == 0; /* a new heap: its first gap, not a sample */
    h->sample_left = sx_sampled_gap(&h->sample_rng, (uintptr_t)h);
    return first ? NULL : sx_sampled_alloc(size, align, zero);
}

/* free without secure mode (secure mode calls it for blocks leaving its quarantine) */
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
    if (sx_unlikely(pg->bin >= SX_PAD_BIN)) { /* a tail call: free stays a leaf */
        sx_free_padded(seg, pg, b);
        return;
    }
#endif
    sx_free_block(seg, pg, b);
}

#endif
