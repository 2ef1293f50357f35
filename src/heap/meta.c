/*
 * meta.c — memory for thread heaps, which cannot come from malloc.
 *
 * Heaps are made in regions of 2 * SX_HEAP_REGION bytes: heap after heap in the lower half and,
 * exactly SX_HEAP_REGION above each, its counters (sx_heap_counts). The fast paths reach the
 * counters at a constant offset from the heap they already hold, so counting a call costs what a
 * field of the heap would. The upper half is mapped from the process's statistics file (share.c)
 * where there is one, so `strata stats PID` reads the counters as they are written; the heaps
 * themselves stay private, and nothing the allocator decides depends on memory that another
 * process can see or write (a forked child, until it has its own file, counts into its parent's:
 * statistics, nothing more). The first SX_SHARE_HEADER bytes of each half are not used for heaps:
 * in region 0 the file's header is there.
 *
 * Nothing is freed: heaps are reused by new threads rather than destroyed (other threads may still
 * send them blocks).
 */
#include "heap.h"

#define REGION_HEAPS ((SX_HEAP_REGION - SX_SHARE_HEADER) / SX_HEAP_STRIDE)
_Static_assert(sizeof(sx_heap_counts) <= SX_HEAP_STRIDE, "a heap's counters fit its stride");
_Static_assert(REGION_HEAPS >= 16, "a region holds a fair number of heaps");

sx_lock_t sx_meta_lock = SX_LOCK_INIT;
static uint8_t *region;      /* the region heaps are made in now */
static unsigned regions;     /* regions made so far */
static size_t region_heaps;  /* heaps made in it */
static bool region_in_file;  /* its counters are in the statistics file */

size_t sx_meta_region_heaps(void) { return REGION_HEAPS; }

sx_heap *sx_meta_heap(void) {
    sx_lock(&sx_meta_lock);
    if (!region || region_heaps == REGION_HEAPS) {
        uint8_t *r = sx_os_map(2 * SX_HEAP_REGION); /* untouched pages cost nothing */
        if (!r) {
            sx_unlock(&sx_meta_lock);
            return NULL;
        }
        region_in_file = sx_share_map(r + SX_HEAP_REGION, regions);
        /* split from the file's mapping, the heaps' half is too small for a transparent huge
         * page; whole, it may get one (2 MiB resident for a few heaps) */
        if (!region_in_file) sx_os_advise_nohuge(r, 2 * SX_HEAP_REGION);
        region = r;
        regions++;
        region_heaps = 0;
    }
    sx_heap *h = (sx_heap *)(region + SX_SHARE_HEADER + region_heaps++ * SX_HEAP_STRIDE);
    sx_share_heap_made(region_in_file);
    sx_unlock(&sx_meta_lock);
    return h;
}

/* stats=1: a page of class bin ran out; note the class's live blocks if they are a new peak. */
void sx_stats_sample(unsigned bin) {
    uint64_t a = 0, f = atomic_load_explicit(&sx_count->stray_free[bin], memory_order_relaxed);
    for (const sx_heap *h = sx_heaps_first(); h; h = h->all_next) {
        const sx_heap_counts *c = sx_counts_of_const(h);
        a += sx_heap_class_allocs(c, bin);
        f += __atomic_load_n(&c->n_free[bin], __ATOMIC_RELAXED);
    }
    uint64_t live = a > f ? a - f : 0;
    _Atomic uint64_t *peak = &sx_count->class_peak[bin];
    uint64_t old = atomic_load_explicit(peak, memory_order_relaxed);
    while (live > old && !atomic_compare_exchange_weak_explicit(peak, &old, live,
                                                                 memory_order_relaxed,
                                                                 memory_order_relaxed)) {
    }
}

