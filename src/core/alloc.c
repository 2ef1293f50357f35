/*
 * alloc.c — the core of allocation, under secure mode and the entry points: which of the three
 * kinds of block a request gets, the retry when the kernel refuses memory, and what a pointer
 * given back is (its page, its size).
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

#include "core.h"

/* A class whose blocks are all aligned to `align` (<= 64 KiB) and at least `size` long. */
int sx_aligned_bin(size_t size, size_t align) {
    size_t c = sx_align_up(size > align ? size : align, align);
    while (c <= SX_MEDIUM_MAX) {
        unsigned bin = sx_bin_of(c);
        size_t cs = sx_bin_size(bin);
        if ((cs & (align - 1)) == 0 && cs - sx_bin_pad(bin) >= size) return (int)bin;
        c = sx_align_up(cs + 1, align);
    }
    return -1;
}

static void profile_huge(void *p, size_t size);

void *sx_heap_alloc(sx_heap *h, size_t size, size_t align, bool zero) {
    if (size > PTRDIFF_MAX) return NULL;
    void *s = sx_sample_take(h, size, align, zero);
    if (sx_unlikely(s != NULL)) return s;
    size_t threshold = atomic_load_explicit(&sx_mmap_threshold, memory_order_relaxed);
    void *p = NULL;
    if (size < threshold) {
        if (align <= 16 && size <= SX_MEDIUM_MAX - SX_PAD) {
            p = sx_heap_alloc_small(h, size);
            goto done;
        }
        if (align > 16 && align <= SX_SLICE_SIZE) {
            int bin = sx_aligned_bin(size, align);
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
    p = sx_huge_alloc(size, align, zero);
    if (p && sx_profile_rate) profile_huge(p, size);
    return p;
done:
    if (p && zero) memset(p, 0, size);
    if (sx_unlikely(h->profile_due)) p = sx_profile_swap(h, p, size, align, zero);
    return p;
}

/* The request in hand is a sample of the heap profile (heap/profile.c): the refill that made
 * block p available passed points of the sampling that stand for h->profile_due bytes of blocks
 * of p's size. A block of a size class is served by the profile heap instead, recorded with its
 * stack, and p goes back; a large block is recorded where it is, its page flagged. */
sx_noinline void *sx_profile_swap(sx_heap *h, void *p, size_t size, size_t align, bool zero) {
    uint64_t due = h->profile_due;
    h->profile_due = 0;
    void *frames[SX_PROFILE_DEPTH];
    int depth;
    if (!p || !sx_profile_unwind(frames, &depth)) return p;
    sx_page *pg = sx_page_of(sx_segment_of(p), p);
    double objects = (double)due / (double)pg->block_size;
    void *q = p;
    if (pg->kind == SX_SPAN_LARGE) {
        pg->flags |= SX_PAGE_PROFILED;
    } else {
        sx_lock(&sx_profile_lock);
        q = sx_heap_alloc(atomic_load_explicit(&sx_profile_heap, memory_order_relaxed), size, align, zero);
        sx_unlock(&sx_profile_lock);
    }
    sx_profile_record(h, q, size, objects, (const void *const *)frames, depth, 0);
    if (!q) return p;
    if (q != p) sx_free_core(p);
    return q;
}

/* Huge blocks are all in the profile, each as itself. */
static sx_noinline void profile_huge(void *p, size_t size) {
    void *frames[SX_PROFILE_DEPTH];
    int depth;
    if (!sx_profile_unwind(frames, &depth)) return;
    sx_segment_of(p)->profiled = 1;
    sx_profile_record(NULL, p, size, 1, (const void *const *)frames, depth, SX_PROFILE_HUGE);
}

/* A thread that has exited borrows an orphan heap for the call. */
void *sx_alloc_exiting(size_t size, size_t align, bool zero) {
    sx_heap *h = sx_orphan_borrow();
    if (!h) return NULL;
    void *p = sx_heap_alloc(h, size, align, zero);
    sx_orphan_return(h);
    return p;
}

static void *alloc_once(size_t size, size_t align, bool zero) {
    sx_heap *h = sx_tls_heap;
    if (sx_unlikely(h == &sx_heap_empty)) {
        h = sx_thread_heap_slow(); /* the process is set up: the api did that first */
        if (!h) return sx_alloc_exiting(size, align, zero);
    }
    return sx_heap_alloc(h, size, align, zero);
}

/* The kernel refused memory: give back everything strata keeps and does not use (reclaim.c)
 * and try once more. NULL with ENOMEM if that does not help either. */
sx_noinline void *sx_core_retry(size_t size, size_t align, bool zero) {
    void *p = size <= PTRDIFF_MAX && sx_reclaim(0) ? alloc_once(size, align, zero) : NULL;
    if (!p) errno = ENOMEM;
    return p;
}

void *sx_core_alloc(size_t size, size_t align, bool zero) {
    if (sx_unlikely(sx_load_relaxed(&sx_limit_due))) sx_limit_check();
    void *p = alloc_once(size, align, zero);
    return sx_likely(p != NULL) ? p : sx_core_retry(size, align, zero);
}

/* ---- blocks given back: their page and size ---- */

/* The page of a pointer that realloc or malloc_usable_size was given; NULL if it is foreign. Aborts
 * on pointers into strata's memory that are not live blocks. */
sx_page *sx_block_checked(void *p, const char *fn, sx_segment **segp) {
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

size_t sx_block_size(sx_segment *seg, sx_page *pg, const void *p) {
    if (pg->kind == SX_SPAN_HUGE) return sx_huge_usable(seg, p);
    return sx_page_usable(pg);
}

size_t sx_block_usable(void *p, const char *fn, sx_page **pgp) {
    sx_segment *seg;
    sx_page *pg = *pgp = sx_block_checked(p, fn, &seg);
    return pg ? sx_block_size(seg, pg, p) : 0;
}

static bool large_resize(sx_heap *h, sx_segment *seg, sx_page *pg, size_t size);

/* Resize a large block in place; only the owning thread may touch its spans. A block in the heap
 * profile keeps its record, with the new size. */
bool sx_large_resize(sx_segment *seg, sx_page *pg, size_t size) {
    sx_heap *h = sx_tls_heap;
    if (atomic_load_explicit(&seg->heap, memory_order_relaxed) != h || !large_resize(h, seg, pg, size))
        return false;
    if (sx_unlikely(pg->flags & SX_PAGE_PROFILED)) sx_profile_moved(pg->start, pg->start, size);
    return true;
}

static bool large_resize(sx_heap *h, sx_segment *seg, sx_page *pg, size_t size) {
    uint8_t *base = sx_slice_addr(seg, sx_slice_index(pg));
    size_t need = (size_t)(pg->start - base) + size;
    if (need > SX_LARGE_MAX) return false;
    size_t n = (need + SX_SLICE_SIZE - 1) >> SX_SLICE_SHIFT;
    if (n > pg->slice_count) {
        if (!sx_span_grow(h, pg, n)) return false;
    } else if (n < pg->slice_count) {
        sx_span_shrink(h, pg, n);
    }
    pg->block_size = pg->usable = (uint32_t)(base + pg->slice_count * SX_SLICE_SIZE - pg->start);
    return true;
}
