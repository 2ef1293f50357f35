/*
 * pages.c — a buddy page allocator: strata_pages, and the one object caches take slabs from.
 *
 * Memory comes in top-level blocks of 2^max_order pages, each mapped aligned to its size. A block
 * of order o starts at a multiple of 2^o pages from its top-level block's base, so its buddy (the
 * other half of the block of order o + 1 it was split from) is found by flipping one bit of its
 * page index: idx ^ (1 << o). Allocation takes the smallest free block of order >= o (a bit scan
 * over the mask of non-empty lists) and splits it, pushing the upper halves on their lists; a free
 * merges the block with its buddy for as long as the buddy is free and whole, then pushes it.
 *
 * Each top-level block has one byte per page out of band (sx_pages_top.heads): 0, or the order of the
 * block that starts at that page and whether it is free or allocated. That is what tells whether a
 * buddy is free with the same order, and what catches a double free, a free with the wrong order
 * and a pointer into the middle of a block. The free lists are doubly linked through the first
 * bytes of the free blocks, so taking a buddy off its list is O(1); nothing is ever searched.
 *
 * A top-level block that becomes wholly free is unmapped, unless the allocator keeps one
 * (STRATA_PAGES_KEEP) and has none. With STRATA_PAGES_DECOMMIT (the slab allocator's) a freed
 * block's pages after its first (which holds its list links) go back to the kernel at once.
 *
 * Under memcheck (support/vgrind.h) free blocks are inaccessible, their links opened around each
 * read and write of them here; a block handed out is undefined (nothing promises zeros), and one of
 * strata_pages_alloc is described as a block, freed at strata_pages_free (a slab's is the cache's
 * to describe).
 */
#include <string.h>

#include "explicit.h"

strata_pages sx_slab_pages;
static strata_pages default_pages;
static pthread_once_t static_once = PTHREAD_ONCE_INIT;

static size_t top_size(const strata_pages *pa) {
    return (size_t)1 << (pa->page_shift + pa->max_order);
}

static void pages_init(strata_pages *pa, unsigned max_order, unsigned flags) {
    pthread_mutex_init(&pa->lock, NULL);
    pa->max_order = max_order;
    pa->flags = flags;
    pa->page_shift = (unsigned)__builtin_ctzl(sx_os_page);
    for (unsigned o = 0; o <= STRATA_PAGES_MAX_ORDER; o++) pa->free[o] = NULL;
    pa->magic = SX_PAGES_MAGIC;
    sx_registry_pages_add(pa);
}

static void static_init(void) {
    sx_process_init(); /* the page size */
    unsigned shift = (unsigned)__builtin_ctzl(sx_os_page);
    pages_init(&default_pages, 10, STRATA_PAGES_KEEP);
    pages_init(&sx_slab_pages, SX_SEG_SHIFT - shift, STRATA_PAGES_DECOMMIT);
}

void sx_pages_static_init(void) { pthread_once(&static_once, static_init); }

static strata_pages *checked(strata_pages *pa, const char *fn) {
    if (!pa) {
        sx_pages_static_init();
        return &default_pages;
    }
    if (pa->magic != SX_PAGES_MAGIC) sx_fatal("%s(): %p is not a page allocator (destroyed?)", fn, (void *)pa);
    return pa;
}

/* ---- free lists ----
 * Under memcheck (vg) the links of a free block are nobody's but during a list operation here:
 * the memcheck variants open them (and the neighbours' the operation writes), do the same, and
 * close them again. */

static inline __attribute__((always_inline)) void push(strata_pages *pa, unsigned o, sx_pages_free_block *b) {
    SX_LIST_PUSH(pa->free[o], b, next, prev);
    pa->nfree[o]++;
    pa->nonempty |= 1u << o;
}

static inline __attribute__((always_inline)) void unlink_(strata_pages *pa, unsigned o, sx_pages_free_block *b) {
    SX_LIST_REMOVE(pa->free[o], b, next, prev);
    if (--pa->nfree[o] == 0) pa->nonempty &= ~(1u << o);
}

static void links_open(sx_pages_free_block *b) {
    if (b) sx_vg_defined(b, sizeof *b);
}
static void links_close(sx_pages_free_block *b) {
    if (b) sx_vg_noaccess(b, sizeof *b);
}

static sx_noinline void push_vg(strata_pages *pa, unsigned o, sx_pages_free_block *b) {
    sx_pages_free_block *head = pa->free[o];
    links_open(b);
    links_open(head);
    push(pa, o, b);
    links_close(head);
    links_close(b);
}

static sx_noinline void unlink_vg(strata_pages *pa, unsigned o, sx_pages_free_block *b) {
    links_open(b);
    sx_pages_free_block *next = b->next, *prev = b->prev;
    links_open(next);
    links_open(prev);
    unlink_(pa, o, b);
    links_close(prev);
    links_close(next);
    links_close(b);
}

static inline __attribute__((always_inline)) void list_push(strata_pages *pa, unsigned o,
                                                            sx_pages_free_block *b, bool vg) {
    if (vg) push_vg(pa, o, b);
    else push(pa, o, b);
}

static inline __attribute__((always_inline)) void list_remove(strata_pages *pa, unsigned o,
                                                              sx_pages_free_block *b, bool vg) {
    if (vg) unlink_vg(pa, o, b);
    else unlink_(pa, o, b);
}

static uint8_t *page_at(const strata_pages *pa, const sx_pages_top *t, size_t idx) {
    return (uint8_t *)t->base + (idx << pa->page_shift);
}

/* ---- top-level blocks ---- */

static bool top_new(strata_pages *pa) {
    size_t size = top_size(pa), pages = (size_t)1 << pa->max_order;
    sx_pages_top *t = sx_explicit_alloc(sizeof(sx_pages_top) + pages, 16);
    if (!t) return false;
    uint8_t *base = sx_os_map_aligned(size, size, 0);
    if (!base) {
        sx_explicit_free(t);
        return false;
    }
    memset(t->heads, 0, pages);
    t->owner = pa;
    t->base = (uintptr_t)base;
    if (!sx_pagemap_set(t->base, size, t)) {
        sx_pagemap_set(t->base, size, NULL);
        sx_os_unmap(base, size);
        sx_explicit_free(t);
        return false;
    }
    if (pa == &sx_slab_pages) sx_slabmap_mark(t->base, true);
    sx_vg_noaccess(base, size); /* under memcheck: free */
    SX_LIST_PUSH(pa->tops, t, next, prev);
    pa->ntops++;
    pa->maps++;
    t->heads[0] = (uint8_t)(SX_HEAD_FREE | pa->max_order);
    list_push(pa, pa->max_order, (sx_pages_free_block *)base, sx_vg_memcheck);
    return true;
}

/* t is wholly free and off the free lists. */
static void top_release(strata_pages *pa, sx_pages_top *t) {
    SX_LIST_REMOVE(pa->tops, t, next, prev);
    pa->ntops--;
    pa->unmaps++;
    if (pa == &sx_slab_pages) sx_slabmap_mark(t->base, false);
    sx_pagemap_set(t->base, top_size(pa), NULL);
    sx_os_unmap((void *)t->base, top_size(pa));
    sx_explicit_free(t);
}

/* ---- allocation and free ----
 * Each made twice by the compiler: for vg false, and for vg true, under memcheck (the variant
 * chosen at the entry: no other test of sx_vg_memcheck on the way). */

static inline __attribute__((always_inline)) void *pages_alloc(strata_pages *pa, unsigned order, bool vg) {
    if (order > pa->max_order) {
        errno = EINVAL;
        return NULL;
    }
    sx_lock(&pa->lock);
    uint32_t avail = pa->nonempty >> order;
    for (int tries = 0; !avail; tries++) {
        if (top_new(pa)) {
            avail = pa->nonempty >> order;
            break;
        }
        sx_unlock(&pa->lock);
        /* the kernel refused: what strata keeps elsewhere goes back, then once more */
        if (tries > 0 || !sx_explicit_reclaim()) {
            errno = ENOMEM;
            return NULL;
        }
        sx_lock(&pa->lock);
        avail = pa->nonempty >> order;
    }
    unsigned o = order + (unsigned)__builtin_ctz(avail);
    sx_pages_free_block *b = pa->free[o];
    list_remove(pa, o, b, vg);
    sx_pages_top *t = sx_pagemap_get((uintptr_t)b);
    size_t idx = ((uintptr_t)b - t->base) >> pa->page_shift;
    while (o > order) { /* keep the lower half, free the upper */
        o--;
        size_t half = idx + ((size_t)1 << o);
        t->heads[half] = (uint8_t)(SX_HEAD_FREE | o);
        list_push(pa, o, (sx_pages_free_block *)page_at(pa, t, half), vg);
        pa->splits++;
    }
    t->heads[idx] = (uint8_t)(SX_HEAD_USED | order);
    pa->in_use_pages += (size_t)1 << order;
    pa->allocs++;
    if (vg) { /* before another thread may free it: a slab, or a block of the program's */
        size_t bytes = (size_t)1 << (pa->page_shift + order);
        if (pa == &sx_slab_pages) sx_vg_undefined(b, bytes);
        else sx_vg_malloclike(b, bytes, false);
    }
    sx_unlock(&pa->lock);
    return b;
}

static sx_noinline void *pages_alloc_vg(strata_pages *pa, unsigned order) {
    return pages_alloc(pa, order, true);
}

void *sx_pages_alloc(strata_pages *pa, unsigned order) {
    return sx_unlikely(sx_vg_memcheck) ? pages_alloc_vg(pa, order) : pages_alloc(pa, order, false);
}

static _Noreturn void bad_free(strata_pages *pa, sx_pages_top *t, void *p, unsigned order, const char *fn) {
    uintptr_t a = (uintptr_t)p;
    if (!t || t->owner != pa || a - t->base >= top_size(pa))
        sx_fatal("%s(): %p was not allocated by page allocator %p", fn, p, (void *)pa);
    if (a & (((uintptr_t)1 << pa->page_shift) - 1))
        sx_fatal("%s(): invalid pointer %p (not the start of a page)", fn, p);
    uint8_t h = t->heads[(a - t->base) >> pa->page_shift];
    if (h & SX_HEAD_USED)
        sx_fatal("%s(): block %p was allocated with order %u, freed with order %u", fn, p,
                 h & SX_HEAD_ORDER, order);
    if (h & SX_HEAD_FREE) sx_fatal("%s(): double free of %p detected", fn, p);
    sx_fatal("%s(): invalid pointer %p (no allocated block starts there: a double free or a page "
             "inside a block)", fn, p);
}

static inline __attribute__((always_inline)) void pages_free(strata_pages *pa, void *p, unsigned order,
                                                             const char *fn, bool vg) {
    uintptr_t a = (uintptr_t)p;
    sx_lock(&pa->lock);
    sx_pages_top *t = sx_pagemap_get(a);
    if (sx_unlikely(!t || t->owner != pa || a - t->base >= top_size(pa) ||
                    (a & (((uintptr_t)1 << pa->page_shift) - 1)) ||
                    t->heads[(a - t->base) >> pa->page_shift] != (SX_HEAD_USED | order)))
        bad_free(pa, t, p, order, fn);
    size_t idx = (a - t->base) >> pa->page_shift;
    if (vg) {
        if (pa == &sx_slab_pages) sx_vg_noaccess(p, (size_t)1 << (pa->page_shift + order));
        else sx_vg_freelike(p);
    }
    t->heads[idx] = 0;
    pa->in_use_pages -= (size_t)1 << order;
    pa->frees++;
    unsigned o = order;
    for (; o < pa->max_order; o++) {
        size_t buddy = idx ^ ((size_t)1 << o);
        if (t->heads[buddy] != (SX_HEAD_FREE | o)) break;
        list_remove(pa, o, (sx_pages_free_block *)page_at(pa, t, buddy), vg);
        t->heads[buddy] = 0;
        idx &= ~((size_t)1 << o);
        pa->merges++;
    }
    size_t keep = (pa->flags & STRATA_PAGES_KEEP) ? 1 : 0;
    if (o == pa->max_order && pa->nfree[o] >= keep) {
        top_release(pa, t);
    } else {
        uint8_t *blk = page_at(pa, t, idx);
        size_t page = (size_t)1 << pa->page_shift;
        /* under the lock: once on its list the block may be handed out and written */
        if ((pa->flags & STRATA_PAGES_DECOMMIT) && o > 0) sx_os_decommit(blk + page, (page << o) - page);
        t->heads[idx] = (uint8_t)(SX_HEAD_FREE | o);
        list_push(pa, o, (sx_pages_free_block *)blk, vg);
    }
    sx_unlock(&pa->lock);
}

static sx_noinline void pages_free_vg(strata_pages *pa, void *p, unsigned order, const char *fn) {
    pages_free(pa, p, order, fn, true);
}

void sx_pages_free(strata_pages *pa, void *p, unsigned order, const char *fn) {
    if (sx_unlikely(sx_vg_memcheck)) pages_free_vg(pa, p, order, fn);
    else pages_free(pa, p, order, fn, false);
}

/* ---- the public interface ---- */

sx_public strata_pages *strata_pages_create(unsigned max_order, unsigned flags) {
    sx_process_init();
    unsigned shift = (unsigned)__builtin_ctzl(sx_os_page);
    if (max_order > STRATA_PAGES_MAX_ORDER || shift + max_order >= SX_ADDR_BITS - 8 ||
        (flags & ~(STRATA_PAGES_KEEP | STRATA_PAGES_DECOMMIT))) {
        errno = EINVAL;
        return NULL;
    }
    strata_pages *pa = sx_explicit_alloc(sizeof *pa, 64);
    if (!pa) return NULL;
    memset(pa, 0, sizeof *pa);
    pages_init(pa, max_order, flags);
    return pa;
}

sx_public void *strata_pages_alloc(strata_pages *pages, unsigned order) {
    return sx_pages_alloc(checked(pages, "strata_pages_alloc"), order);
}

sx_public void strata_pages_free(strata_pages *pages, void *p, unsigned order) {
    if (p == NULL) return;
    sx_pages_free(checked(pages, "strata_pages_free"), p, order, "strata_pages_free");
}

sx_public size_t strata_pages_trim(strata_pages *pages) {
    strata_pages *pa = checked(pages, "strata_pages_trim");
    size_t bytes = 0;
    sx_lock(&pa->lock);
    while (pa->nfree[pa->max_order]) {
        sx_pages_free_block *b = pa->free[pa->max_order];
        list_remove(pa, pa->max_order, b, sx_vg_memcheck);
        top_release(pa, sx_pagemap_get((uintptr_t)b));
        bytes += top_size(pa);
    }
    sx_unlock(&pa->lock);
    return bytes;
}

sx_public void strata_pages_destroy(strata_pages *pages) {
    if (!pages) sx_fatal("strata_pages_destroy(): the process-wide page allocator cannot be destroyed");
    strata_pages *pa = checked(pages, "strata_pages_destroy");
    if (pa == &sx_slab_pages || pa == &default_pages)
        sx_fatal("strata_pages_destroy(): %p is strata's own page allocator", (void *)pa);
    sx_lock(&pa->lock);
    if (pa->in_use_pages) {
        for (sx_pages_top *t = pa->tops; t; t = t->next)
            for (size_t i = 0; i < (size_t)1 << pa->max_order; i++)
                if (t->heads[i] & SX_HEAD_USED)
                    sx_fatal("strata_pages_destroy(): %zu pages still allocated (a block of order "
                             "%u at %p)", pa->in_use_pages, t->heads[i] & SX_HEAD_ORDER,
                             (void *)page_at(pa, t, i));
    }
    /* nothing allocated: every top-level block is one free block of the top order */
    while (pa->tops) {
        sx_pages_top *t = pa->tops;
        list_remove(pa, pa->max_order, (sx_pages_free_block *)t->base, sx_vg_memcheck);
        top_release(pa, t);
    }
    pa->magic = 0;
    sx_unlock(&pa->lock);
    sx_registry_pages_remove(pa);
    pthread_mutex_destroy(&pa->lock);
    sx_explicit_free(pa);
}

sx_public void strata_pages_get_stats(strata_pages *pages, struct strata_pages_stats *out) {
    strata_pages *pa = checked(pages, "strata_pages_get_stats");
    memset(out, 0, sizeof *out);
    sx_lock(&pa->lock);
    out->page_size = (size_t)1 << pa->page_shift;
    out->max_order = pa->max_order;
    out->top_blocks = pa->ntops;
    out->mapped_bytes = pa->ntops * top_size(pa);
    out->in_use_bytes = pa->in_use_pages << pa->page_shift;
    out->free_bytes = out->mapped_bytes - out->in_use_bytes;
    for (unsigned o = 0; o <= pa->max_order; o++) out->free_blocks[o] = pa->nfree[o];
    out->allocs = pa->allocs;
    out->frees = pa->frees;
    out->splits = pa->splits;
    out->merges = pa->merges;
    out->maps = pa->maps;
    out->unmaps = pa->unmaps;
    sx_unlock(&pa->lock);
}
