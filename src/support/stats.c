/*
 * stats.c — what the allocator holds, from its own metadata.
 *
 * The fast paths count each call once, in the calling thread's heap (no atomics); the sums over
 * all heaps give mallocs and frees per size class. Counters of system calls and of memory held
 * are updated where memory is obtained or returned (rare); bytes in use are found by walking the
 * slice descriptors of every live segment. The walk reads other threads' pages without stopping
 * them, so a report taken while threads run is approximate, and exact when they are quiet.
 *
 * With stats=1 every malloc takes the slow path, which counts the bytes requested and notes each
 * class's peak of live blocks whenever a page runs out (so a peak is exact to within a page).
 *
 * The report itself is printed by report.c, which `strata stats PID` shares.
 */
#include <string.h>
#include <unistd.h>

#include "../heap/sizeclass.h"
#include "strata.h"

#define RD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)          /* plain fields of live pages */
#define RA(x) atomic_load_explicit(&(x), memory_order_relaxed) /* atomic counters */

static void walk_segment(sx_snapshot *s, const sx_segment *seg) {
    uintptr_t ce = atomic_load_explicit(&seg->commit_end, memory_order_relaxed);
    s->segment_bytes += ce - (uintptr_t)seg;
    const sx_page *last_free = NULL;
    for (size_t i = 1; i < SX_SLICES;) {
        const sx_page *pg = &seg->slices[i];
        uint8_t kind = RD(pg->kind);
        size_t n = RD(pg->slice_count);
        if (n == 0 || i + n > SX_SLICES) n = 1; /* caught mid-update */
        last_free = NULL;
        if (kind == SX_SPAN_PAGE) {
            unsigned bin = RD(pg->bin);
            size_t used = (uint16_t)(RD(pg->used) + RD(pg->trigger)), bsize = RD(pg->block_size);
            if (bin < SX_BINS) {
                s->bin_pages[bin]++;
                s->bin_used[bin] += used;
                s->bin_capacity[bin] += RD(pg->reserved);
            }
            s->in_use += used * bsize;
            s->blocks += used;
        } else if (kind == SX_SPAN_LARGE) {
            s->large_count++;
            s->large_bytes += RD(pg->block_size);
            s->in_use += RD(pg->block_size);
            s->blocks++;
        } else if (kind == SX_SPAN_FREE) {
            uintptr_t from = (uintptr_t)seg + i * SX_SLICE_SIZE, to = from + n * SX_SLICE_SIZE;
            if (to > ce) to = ce;
            s->free_spans++;
            if (to > from) s->free_span_bytes += to - from;
            last_free = pg;
        }
        i += n;
    }
    if (last_free && seg->source == SX_SRC_BRK && sx_brk_is_top(seg)) {
        uintptr_t from = (uintptr_t)RD(last_free->start);
        if (ce > from) s->top_free = ce - from;
    }
}

/* ---- calls per class ---- */

static sx_heap *first_heap(void) {
    sx_lock(&sx_pool_lock);
    sx_heap *h = sx_all_heaps; /* heaps are never freed, and linked in before they are used */
    sx_unlock(&sx_pool_lock);
    return h;
}

void sx_stats_sample(unsigned bin) {
    uint64_t a = 0, f = RA(sx_count->stray_free[bin]);
    for (const sx_heap *h = first_heap(); h; h = h->all_next) {
        const sx_heap_counts *c = sx_counts_of_const(h);
        a += sx_heap_class_allocs(c, bin);
        f += RD(c->n_free[bin]);
    }
    uint64_t live = a > f ? a - f : 0;
    _Atomic uint64_t *peak = &sx_count->class_peak[bin];
    uint64_t old = atomic_load_explicit(peak, memory_order_relaxed);
    while (live > old && !atomic_compare_exchange_weak_explicit(peak, &old, live,
                                                                 memory_order_relaxed,
                                                                 memory_order_relaxed)) {
    }
}

void sx_snapshot_take(sx_snapshot *s) {
    memset(s, 0, sizeof *s);
    s->pid = (int)getpid();
    sx_fmt(s->version, sizeof s->version, "%s", STRATA_VERSION_STRING);
    s->walked = true;
    s->stats_option = sx_opt.stats;
    for (const sx_heap *h = first_heap(); h; h = h->all_next)
        sx_snapshot_add_heap(s, sx_counts_of_const(h), false);
    sx_snapshot_add_counters(s, sx_count);
    s->resident = sx_resident_bytes("/proc/self/statm", sx_os_page);
    sx_lock(&sx_region_lock);
    for (const sx_segment *seg = sx_all_segments; seg; seg = seg->all_next) {
        if (seg->kind == SX_SEG_HUGE) {
            size_t usable = (uintptr_t)seg + seg->size - (uintptr_t)seg->slices[0].start;
            s->in_use += usable;
            s->huge_in_use += usable;
            s->blocks++;
        } else {
            walk_segment(s, seg);
        }
    }
    sx_unlock(&sx_region_lock);
    s->bin_pages[SX_BIN_LARGE] = s->large_count;
}

void sx_stats_snapshot(struct strata_stats *out) {
    sx_process_init();
    sx_snapshot s;
    sx_snapshot_take(&s);
    memset(out, 0, sizeof *out);
    out->heap_bytes = s.brk_bytes;
    out->mapped_bytes = s.mapped_bytes;
    out->huge_bytes = s.huge_bytes;
    out->huge_count = s.huge_count;
    out->in_use_bytes = s.in_use;
    size_t held = s.segment_bytes + s.huge_bytes;
    out->free_bytes = held > s.in_use ? held - s.in_use : 0;
    out->segments = s.segments;
    out->cached_segments = s.cached_segments;
    out->heaps = s.heaps;
    out->mmap_threshold = atomic_load(&sx_mmap_threshold);
    out->trim_threshold = atomic_load(&sx_trim_threshold);
    out->brk_calls = s.brk_calls;
    out->mmap_calls = s.mmap_calls;
    out->munmap_calls = s.munmap_calls;
    out->mremap_calls = s.mremap_calls;
    out->madvise_calls = s.madvise_calls;
}

void sx_stats_print(int fd, const char *title) {
    sx_snapshot s;
    sx_snapshot_take(&s);
    sx_report_print(fd, &s, title);
}
