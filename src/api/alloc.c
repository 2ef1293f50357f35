/*
 * alloc.c — the slow path of allocation: which of the three kinds of block a request gets.
 *
 *   size class   up to 128 KiB and below the mmap threshold: a block in a page of its class
 *   large        up to a segment's 63 slices and below the threshold: a span of slices of its own
 *   huge         the rest: a mapping of its own (region/huge.c)
 *
 * Aligned requests use the same three: a class whose size is a multiple of the alignment has
 * naturally aligned blocks (pages start on 64 KiB boundaries), a large block is placed at an
 * aligned offset in a span with room for it, a huge block at an aligned offset in its mapping.
 */
#include <string.h>

#include "../heap/sizeclass.h"
#include "alloc.h"

/* A class whose blocks are all aligned to `align` (<= 64 KiB) and at least `size` long. */
static int aligned_bin(size_t size, size_t align) {
    size_t c = sx_align_up(size > align ? size : align, align);
    while (c <= SX_MEDIUM_MAX) {
        unsigned bin = sx_bin_of(c);
        size_t cs = sx_bin_size(bin);
        if ((cs & (align - 1)) == 0) return (int)bin;
        c = sx_align_up(cs + 1, align);
    }
    return -1;
}

void *sx_heap_alloc(sx_heap *h, size_t size, size_t align, bool zero) {
    if (size > PTRDIFF_MAX) return NULL;
    size_t threshold = atomic_load_explicit(&sx_mmap_threshold, memory_order_relaxed);
    void *p = NULL;
    if (size < threshold) {
        if (align <= 16 && size <= SX_MEDIUM_MAX) {
            p = sx_heap_alloc_small(h, size);
            goto done;
        }
        if (align > 16 && align <= SX_SLICE_SIZE) {
            int bin = aligned_bin(size, align);
            if (bin >= 0) {
                p = sx_heap_alloc_bin(h, (unsigned)bin);
                goto done;
            }
        }
        /* worst-case room for the block, its alignment and its free key */
        size_t lead = align > SX_SLICE_SIZE ? align - SX_SLICE_SIZE : 0;
        size_t room = size < sizeof(sx_block) ? sizeof(sx_block) : size;
        if (room <= SX_LARGE_MAX && lead <= SX_LARGE_MAX - room) {
            p = sx_heap_alloc_large(h, size, align);
            goto done;
        }
    }
    return sx_huge_alloc(size, align, zero);
done:
    if (p && zero) memset(p, 0, size);
    return p;
}

static void *alloc_once(size_t size, size_t align, bool zero) {
    sx_heap *h = sx_tls_heap;
    if (sx_unlikely(h == &sx_heap_empty)) {
        h = sx_thread_heap_slow();
        if (!h) return sx_alloc_exiting(size, align, zero);
    }
    return sx_heap_alloc(h, size, align, zero);
}

/* The kernel refused memory: give back everything strata keeps and does not use (api/reclaim.c)
 * and try once more. NULL with ENOMEM if that does not help either. */
static sx_noinline void *alloc_retry(size_t size, size_t align, bool zero) {
    void *p = size <= PTRDIFF_MAX && sx_reclaim(0) ? alloc_once(size, align, zero) : NULL;
    if (!p) errno = ENOMEM;
    return p;
}

static void *alloc_any(size_t size, size_t align, bool zero) {
    if (sx_unlikely(sx_load_relaxed(&sx_limit_due))) sx_limit_check();
    void *p = alloc_once(size, align, zero);
    return sx_likely(p != NULL) ? p : alloc_retry(size, align, zero);
}

void *sx_alloc(size_t size, size_t align, bool zero) {
    sx_process_init(); /* the options first: secure mode changes what every block looks like */
    if (sx_unlikely(sx_secure_on)) return sx_secure_alloc(size, align, zero);
    if (sx_unlikely(sx_opt.stats)) sx_count_requested(sx_tls_heap, size);
    return alloc_any(size, align, zero);
}

void *sx_alloc_core(size_t size, size_t align, bool zero) { return alloc_any(size, align, zero); }

/* The fast path's pop when the link leaves the block's segment: the list's end, or a list of
 * other heaps' blocks, checked out of line (sx_block_next_far aborts on a rewritten link). */
sx_noinline void *sx_malloc_far(sx_heap *h, size_t slot, sx_page *pg, sx_block *b, sx_block *next) {
    pg->free = sx_block_next_far(pg, b, next);
    pg->used++;
    sx_counts_of(h)->n_direct[slot]++;
    sx_block_unfree(b);
    return b;
}

/* Past the direct table (sizes above 1 KiB) a size class still has a page in use: pop from it
 * without going through the general path. */
sx_noinline void *sx_malloc_slow(size_t size) {
    sx_process_init(); /* the options first: secure mode changes what every block looks like */
    if (sx_unlikely(sx_secure_on)) return sx_secure_alloc(size, 0, false);
    sx_heap *h = sx_tls_heap;
    if (sx_unlikely(sx_opt.stats)) sx_count_requested(h, size);
    if (sx_unlikely(sx_load_relaxed(&sx_limit_due))) sx_limit_check();
    if (sx_likely(size <= SX_MEDIUM_MAX &&
                  size < atomic_load_explicit(&sx_mmap_threshold, memory_order_relaxed))) {
        unsigned bin = sx_bin_of(size);
        /* Above 1 KiB, no direct table: pop the class's current page here. Up to 1 KiB, the fast
         * path found the direct table's page empty, which sx_heap_alloc_bin sets right. */
        if (size > SX_DIRECT_MAX) {
            void *p = sx_bin_pop(h, bin, NULL);
            if (sx_likely(p != NULL)) return p;
        }
        if (h != &sx_heap_empty) {
            void *p = sx_heap_alloc_bin(h, bin);
            return sx_likely(p != NULL) ? p : alloc_retry(size, 0, false);
        }
    }
    return alloc_any(size, 0, false);
}

int sx_memalign(void **out, size_t align, size_t size) {
    int saved = errno;
    void *p = align <= 16 ? sx_malloc_inline(size) : sx_alloc(size, align, false);
    errno = saved;
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

/* ---- block sizes and realloc ---- */

/* The page of a pointer that realloc or malloc_usable_size was given; NULL if it is foreign. Aborts
 * on pointers into strata's memory that are not live blocks. */
static sx_page *checked_page(void *p, const char *fn, sx_segment **segp) {
    sx_segment *seg = sx_segment_of(p);
    if (!sx_segmap_contains(seg)) return NULL;
    sx_page *pg = sx_page_of(seg, p);
    if (!sx_block_valid(pg, p)) {
        if (sx_is_foreign(seg, pg, p)) return NULL;
        sx_free_invalid(p, fn, seg, pg);
    }
    if (((sx_block *)p)->key == (sx_secret ^ (uintptr_t)p))
        sx_fatal("%s(): invalid pointer %p (the block was already freed)", fn, p);
    *segp = seg;
    return pg;
}

static size_t block_usable(sx_segment *seg, sx_page *pg, const void *p) {
    if (pg->kind == SX_SPAN_HUGE) return sx_huge_usable(seg, p);
    return pg->block_size;
}

size_t sx_block_usable(void *p, const char *fn, sx_page **pgp) {
    sx_segment *seg;
    sx_page *pg = *pgp = checked_page(p, fn, &seg);
    return pg ? block_usable(seg, pg, p) : 0;
}

size_t sx_usable_size(void *p) {
    if (sx_unlikely(sx_secure_on)) return sx_secure_usable(p);
    if (!p) return 0;
    sx_segment *seg;
    sx_page *pg = checked_page(p, "malloc_usable_size", &seg);
    if (!pg) return sx_foreign_usable_size(p);
    return block_usable(seg, pg, p);
}

/* Resize a large block in place; only the owning thread may touch its spans. */
static bool large_resize(sx_segment *seg, sx_page *pg, size_t size) {
    sx_heap *h = sx_tls_heap;
    if (atomic_load_explicit(&seg->heap, memory_order_relaxed) != h) return false;
    uint8_t *base = sx_slice_addr(seg, sx_slice_index(pg));
    size_t need = (size_t)(pg->start - base) + size;
    if (need > SX_LARGE_MAX) return false;
    size_t n = (need + SX_SLICE_SIZE - 1) >> SX_SLICE_SHIFT;
    if (n > pg->slice_count) {
        if (!sx_span_grow(h, pg, n)) return false;
    } else if (n < pg->slice_count) {
        sx_span_shrink(h, pg, n);
    }
    pg->block_size = (uint32_t)(base + pg->slice_count * SX_SLICE_SIZE - pg->start);
    return true;
}

static void *realloc_move(void *p, size_t usable, size_t size) {
    void *q = sx_malloc_inline(size);
    if (!q) return NULL;
    memcpy(q, p, usable < size ? usable : size);
    sx_free_inline(p);
    return q;
}

void *sx_realloc(void *p, size_t size, const char *fn) {
    if (sx_unlikely(sx_secure_on)) return sx_secure_realloc(p, size, fn);
    if (!p) return sx_malloc_inline(size);
    if (size == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
        sx_free_inline(p);
        return NULL;
    }
    sx_segment *seg;
    sx_page *pg = checked_page(p, fn, &seg);
    if (!pg) return sx_foreign_realloc(p, size);
    if (size > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    size_t usable = block_usable(seg, pg, p);
    size_t threshold = atomic_load_explicit(&sx_mmap_threshold, memory_order_relaxed);
    switch (pg->kind) {
    case SX_SPAN_PAGE:
        if (size <= usable && size >= usable / 2) return p;
        break;
    case SX_SPAN_LARGE:
        /* A block that shrinks into the size classes moves there; otherwise stay put if the
         * block's span (and the free span after it) allow. */
        if (size > SX_MEDIUM_MAX && size < threshold && large_resize(seg, pg, size)) return p;
        if (size <= usable && size > SX_MEDIUM_MAX) return p;
        break;
    case SX_SPAN_HUGE:
        if (size > SX_MEDIUM_MAX) {
            void *q = sx_huge_realloc(seg, p, size);
            if (q) return q;
        }
        break;
    }
    int saved = errno;
    void *q = realloc_move(p, usable, size);
    if (!q && size <= usable) { /* shrinking never fails */
        errno = saved;
        return p;
    }
    return q;
}
