/*
 * segment.c — where segments come from and where they go.
 *
 * A heap that needs memory takes a whole segment: first from the cache of empty segments, then
 * from the brk heap (the [heap] region, grown with the program break while it can be moved
 * contiguously, as glibc's main arena does), then from mmap. An empty segment goes back: while the
 * retained budget allows, it is cached as it is, pages resident, to be taken first; beyond that,
 * the one at the top of the brk heap lowers the break (ptmalloc's "top chunk" trimming), others
 * are decommitted with madvise and cached, and mmap'd ones beyond the cache's size are unmapped.
 *
 * All of this runs under one lock; it happens once per 4 MiB, never per malloc.
 */
#include "region.h"

sx_lock_t sx_region_lock = SX_LOCK_INIT;
sx_segment *sx_all_segments;

static sx_segment *cache_first, *cache_last; /* dirty ones first; doubly linked */
static unsigned cache_mmap_count;
static size_t cache_dirty;                   /* resident bytes of cached segments */
/* Segments owned by heaps. sx_count has the same number for statistics, but decisions read only
 * private memory: the counters are shared with the strata command, and a forked child's counts
 * may carry a few of its parent's (share.c). */
static _Atomic size_t held_segments;

static size_t committed(const sx_segment *seg) {
    uintptr_t from = (uintptr_t)seg + SX_SLICE_SIZE;
    uintptr_t to = atomic_load_explicit(&seg->commit_end, memory_order_relaxed);
    return to > from ? to - from : 0;
}

/* Thread heaps made so far (heaps are never freed: live ones, and orphaned ones a new thread takes). */
static _Atomic size_t heaps_made;
void sx_segcache_heap_made(void) { atomic_fetch_add_explicit(&heaps_made, 1, memory_order_relaxed); }

/* max(16 MiB, 1/8 of what heaps hold, 2 MiB per thread heap): threads that end and start take
 * their segments back from the cache with their pages still there, instead of faulting in fresh
 * ones; a lone thread that frees most of its memory keeps little. */
size_t sx_retain_budget(void) {
    size_t held = atomic_load_explicit(&held_segments, memory_order_relaxed) * SX_SEG_SIZE;
    size_t budget = held / SX_RETAIN_FRACTION;
    size_t per_heap = atomic_load_explicit(&heaps_made, memory_order_relaxed) * SX_RETAIN_PER_HEAP;
    if (budget < per_heap) budget = per_heap;
    return budget > SX_RETAIN_MIN ? budget : SX_RETAIN_MIN;
}

/* mmap'd segments the cache may hold (the rest are unmapped): SX_SEGCACHE_MAX, or one per heap. */
static unsigned mmap_cache_max(void) {
    size_t heaps = atomic_load_explicit(&heaps_made, memory_order_relaxed);
    return heaps > SX_SEGCACHE_MAX ? (unsigned)heaps : SX_SEGCACHE_MAX;
}

/* Reset a segment's header to "only the header slice is in use". */
static void header_reset(sx_segment *seg) {
    atomic_store_explicit(&seg->heap, NULL, memory_order_relaxed);
    seg->kind = SX_SEG_NORMAL;
    seg->cached = 0;
    seg->punched = 0;
    seg->used_slices = 1;
    seg->reserved_slices = 0;
    seg->size = SX_SEG_SIZE;
    seg->next = seg->prev = NULL;
    sx_span_mark(seg, 0, 1, SX_SPAN_HEADER);
    /* The descriptor past the last slice answers for an address exactly at the segment's end. */
    sx_span_mark(seg, SX_SLICES, 1, SX_SPAN_HEADER);
}

void sx_segcache_push(sx_segment *seg, bool dirty) {
    seg->cached = 1;
    seg->dirty = dirty;
    if (dirty) SX_QUEUE_PUSH_FRONT(cache_first, cache_last, seg, next, prev); /* taken first: its pages are ready */
    else SX_QUEUE_PUSH_BACK(cache_first, cache_last, seg, next, prev);
    if (dirty) cache_dirty += committed(seg);
    if (seg->source == SX_SRC_MMAP) cache_mmap_count++;
    atomic_fetch_add_explicit(&sx_count->cached_segments, 1, memory_order_relaxed);
}

/* Take a segment out of the cache (region lock held). */
void sx_segcache_unlink(sx_segment *seg) {
    SX_QUEUE_REMOVE(cache_first, cache_last, seg, next, prev);
    seg->next = seg->prev = NULL;
    seg->cached = 0;
    if (seg->dirty) cache_dirty -= committed(seg);
    seg->dirty = 0;
    if (seg->source == SX_SRC_MMAP) cache_mmap_count--;
    atomic_fetch_sub_explicit(&sx_count->cached_segments, 1, memory_order_relaxed);
}

static sx_segment *map_segment(void) {
    sx_segment *seg = sx_os_map_aligned(SX_SEG_SIZE, SX_SEG_SIZE, 0);
    if (!seg) return NULL;
    if (((uintptr_t)seg >> SX_ADDR_BITS) != 0) { /* beyond the segment map: not usable */
        sx_os_unmap(seg, SX_SEG_SIZE);
        return NULL;
    }
    seg->source = SX_SRC_MMAP;
    seg->brk_floor = 0;
    seg->brk_prev = NULL;
    if (sx_opt.huge_pages != SX_HUGE_OFF) sx_os_advise_huge(seg, SX_SEG_SIZE);
    atomic_store_explicit(&seg->commit_end, (uintptr_t)seg + SX_SEG_SIZE, memory_order_relaxed);
    atomic_fetch_add_explicit(&sx_count->mapped_bytes, SX_SEG_SIZE, memory_order_relaxed);
    if (sx_opt.verbose >= 2) sx_message("mmap segment %p", (void *)seg);
    return seg;
}

void sx_segment_list_add(sx_segment *seg) {
    SX_LIST_PUSH(sx_all_segments, seg, all_next, all_prev);
}

void sx_segment_list_remove(sx_segment *seg) {
    SX_LIST_REMOVE(sx_all_segments, seg, all_next, all_prev);
    seg->all_next = seg->all_prev = NULL;
}

sx_segment *sx_segment_acquire(bool brk_ok) {
    sx_lock(&sx_region_lock);
    sx_segment *seg = brk_ok ? cache_first : NULL;
    while (seg) { /* punched ones come last; one whose hole someone else took is lost for good */
        sx_segcache_unlink(seg);
        if (sx_brk_unpunch(seg)) break;
        seg = cache_first;
    }
    if (!seg) {
        if (sx_opt.brk && brk_ok) seg = sx_brk_segment_new(2 * SX_SLICE_SIZE);
        if (!seg) seg = map_segment();
    }
    if (!seg) { /* out of address space: cached huge mappings may be in the way */
        sx_unlock(&sx_region_lock);
        if (!sx_hugecache_purge()) return NULL;
        sx_lock(&sx_region_lock);
        seg = map_segment();
    }
    if (seg) {
        header_reset(seg);
        sx_segmap_set(seg);
        sx_segment_list_add(seg);
        sx_limit_take(SX_SEG_SIZE);
        atomic_fetch_add_explicit(&held_segments, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&sx_count->segments, 1, memory_order_relaxed);
    }
    sx_unlock(&sx_region_lock);
    return seg;
}

/* Give back the pages of cached segments while they exceed the budget (the budget shrinks as
 * the program's memory does). */
static void enforce_budget(void) {
    size_t budget = sx_retain_budget();
    for (sx_segment *seg = cache_first, *next; seg && cache_dirty > budget; seg = next) {
        next = seg->next;
        if (!seg->dirty) break; /* the dirty ones come first */
        size_t n = committed(seg);
        sx_segcache_unlink(seg);
        if (n) sx_os_decommit((uint8_t *)seg + SX_SLICE_SIZE, n);
        sx_segcache_push(seg, false);
    }
}

void sx_segment_release(sx_segment *seg) {
    sx_lock(&sx_region_lock);
    sx_segment_list_remove(seg);
    sx_segmap_clear(seg);
    atomic_store_explicit(&seg->heap, NULL, memory_order_relaxed);
    atomic_fetch_sub_explicit(&held_segments, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&sx_count->segments, 1, memory_order_relaxed);
    /* near the memory limit nothing is kept resident */
    bool keep = !atomic_load_explicit(&sx_threshold_fixed, memory_order_relaxed) && !sx_under_pressure();
    if (keep && cache_dirty + committed(seg) <= sx_retain_budget() &&
        (seg->source == SX_SRC_BRK || cache_mmap_count < mmap_cache_max())) {
        sx_segcache_push(seg, true); /* kept as it is, for the next taker */
    } else if (seg->source == SX_SRC_BRK && sx_brk_release(seg)) {
        /* the break went down: the segment no longer exists */
    } else if (seg->source == SX_SRC_MMAP && cache_mmap_count >= mmap_cache_max() &&
               sx_os_unmap(seg, SX_SEG_SIZE)) {
        atomic_fetch_sub_explicit(&sx_count->mapped_bytes, SX_SEG_SIZE, memory_order_relaxed);
    } else { /* (also when munmap failed: the map count was full) */
        size_t n = committed(seg);
        if (n) sx_os_decommit((uint8_t *)seg + SX_SLICE_SIZE, n);
        sx_segcache_push(seg, false);
    }
    enforce_budget();
    sx_unlock(&sx_region_lock);
}

bool sx_segment_commit(sx_segment *seg, uintptr_t end) {
    if (atomic_load_explicit(&seg->commit_end, memory_order_acquire) >= end) return true;
    if (seg->source != SX_SRC_BRK) return false;
    sx_lock(&sx_region_lock);
    bool ok = sx_brk_commit(seg, end);
    sx_unlock(&sx_region_lock);
    return ok;
}

size_t sx_segcache_purge(void) {
    sx_lock(&sx_region_lock);
    size_t released = sx_brk_release_cached(); /* empty segments at the top of [heap] */
    sx_segment *unmap = NULL; /* the mmap'd ones, taken out first: one that cannot go comes back */
    for (sx_segment *seg = cache_first, *next; seg; seg = next) {
        next = seg->next;
        if (seg->source == SX_SRC_MMAP) {
            bool dirty = seg->dirty;
            sx_segcache_unlink(seg);
            seg->dirty = dirty;
            seg->next = unmap;
            unmap = seg;
        } else if (!seg->punched) { /* a brk segment below one in use: keep its header */
            size_t n = committed(seg);
            if (seg->dirty) cache_dirty -= n;
            seg->dirty = 0;
            if (sx_brk_punch(seg)) released += SX_SEG_SIZE;
            else sx_os_decommit((uint8_t *)seg + SX_SLICE_SIZE, n), released += n;
        }
    }
    /* With the map count full, unmapping a segment from the middle of merged mappings fails
     * (it would split them) until its neighbours have gone: pass again while that helps. */
    for (bool progress = true; unmap && progress;) {
        progress = false;
        sx_segment *left = NULL;
        for (sx_segment *seg = unmap, *next; seg; seg = next) {
            next = seg->next;
            if (sx_os_unmap(seg, SX_SEG_SIZE)) {
                atomic_fetch_sub_explicit(&sx_count->mapped_bytes, SX_SEG_SIZE, memory_order_relaxed);
                released += SX_SEG_SIZE;
                progress = true;
            } else {
                seg->next = left;
                left = seg;
            }
        }
        unmap = left;
    }
    for (sx_segment *seg = unmap, *next; seg; seg = next) { /* kept, without their pages */
        next = seg->next;
        size_t n = seg->dirty ? committed(seg) : 0;
        if (n) sx_os_decommit((uint8_t *)seg + SX_SLICE_SIZE, n);
        released += n;
        sx_segcache_push(seg, false);
    }
    sx_unlock(&sx_region_lock);
    return released;
}
