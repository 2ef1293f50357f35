/*
 * alloc.c — allocation as the entry points see it: secure mode or the core (core/alloc.c), the
 * requested bytes of stats=1, the slow path of the malloc fast path, and realloc.
 */
#include <string.h>

#include "api.h"

void *sx_alloc(size_t size, size_t align, bool zero) {
    sx_process_init(); /* the options first: secure mode changes what every block looks like */
    if (sx_unlikely(sx_secure_on)) return sx_secure_alloc(size, align, zero);
    if (sx_unlikely(sx_opt.stats)) sx_count_requested(sx_tls_heap, size);
    return sx_core_alloc(size, align, zero);
}

/* Past the direct table (sizes above 1 KiB) a size class still has a page in use: pop from it
 * without going through the general path. */
sx_noinline void *sx_malloc_slow(size_t size) {
    sx_process_init(); /* the options first: secure mode changes what every block looks like */
    if (sx_unlikely(sx_secure_on)) return sx_secure_alloc(size, 0, false);
    sx_heap *h = sx_tls_heap;
    if (sx_unlikely(sx_opt.stats)) sx_count_requested(h, size);
    if (sx_unlikely(sx_load_relaxed(&sx_limit_due))) sx_limit_check();
    void *s = sx_sample_take(h, size, 0, false);
    if (sx_unlikely(s != NULL)) return s;
    if (sx_likely(size <= SX_MEDIUM_MAX - SX_PAD &&
                  size < atomic_load_explicit(&sx_mmap_threshold, memory_order_relaxed))) {
        unsigned bin = sx_bin_for(size);
        /* Above 1 KiB, no direct table: pop the class's current page here. Up to 1 KiB, the fast
         * path found the direct table's page empty, which sx_heap_alloc_bin sets right. */
        if (size > SX_DIRECT_MAX) {
            void *p = sx_bin_pop(h, bin, NULL);
            if (sx_likely(p != NULL)) return p;
        }
        if (h != &sx_heap_empty) {
            void *p = sx_heap_alloc_bin(h, bin);
            if (sx_unlikely(h->profile_due)) p = sx_profile_swap(h, p, size, 0, false);
            return sx_likely(p != NULL) ? p : sx_core_retry(size, 0, false);
        }
    }
    return sx_core_alloc(size, 0, false);
}

int sx_memalign(void **out, size_t align, size_t size) {
    int saved = errno;
    void *p = align <= 16 ? sx_malloc_inline(size) : sx_alloc(size, align, false);
    errno = saved;
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

size_t sx_usable_size(void *p) {
    if (sx_unlikely(sx_secure_on)) return sx_secure_usable(p);
    if (!p) return 0;
    sx_segment *seg;
    sx_page *pg = sx_block_checked(p, "malloc_usable_size", &seg);
    if (!pg) return sx_foreign_usable_size(p);
    return sx_block_size(seg, pg, p);
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
    sx_page *pg = sx_block_checked(p, fn, &seg);
    if (!pg) return sx_foreign_realloc(p, size);
    if (size > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    size_t usable = sx_block_size(seg, pg, p);
    size_t threshold = atomic_load_explicit(&sx_mmap_threshold, memory_order_relaxed);
    switch (pg->kind) {
    case SX_SPAN_PAGE:
        if (size <= usable && size >= usable / 2) return p;
        break;
    case SX_SPAN_LARGE:
        /* A block that shrinks into the size classes moves there; otherwise stay put if the
         * block's span (and the free span after it) allow. */
        if (size > SX_MEDIUM_MAX && size < threshold && sx_large_resize(seg, pg, size)) return p;
        if (size <= usable && size > SX_MEDIUM_MAX) return p;
        break;
    case SX_SPAN_HUGE:
        if (size > SX_MEDIUM_MAX) {
            void *q = sx_huge_realloc(seg, p, size);
            if (q && sx_unlikely(sx_segment_of(q)->profiled)) sx_profile_moved(p, q, size);
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
