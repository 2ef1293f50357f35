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

#include "api.h"
#include "strata.h"

#define load_field(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)          /* plain fields of live pages */
#define load_counter(x) atomic_load_explicit(&(x), memory_order_relaxed) /* atomic counters */

static void walk_segment(sx_snapshot *s, const sx_segment *seg) {
    uintptr_t ce = atomic_load_explicit(&seg->commit_end, memory_order_relaxed);
    s->segment_bytes += ce - (uintptr_t)seg;
    const sx_page *last_free = NULL;
    for (size_t i = 1; i < SX_SLICES;) {
        const sx_page *pg = &seg->slices[i];
        uint8_t kind = load_field(pg->kind);
        size_t n = load_field(pg->slice_count);
        if (n == 0 || i + n > SX_SLICES) n = 1; /* caught mid-update */
        last_free = NULL;
        if (kind == SX_SPAN_PAGE) {
            unsigned bin = load_field(pg->bin);
            size_t used = (uint16_t)(load_field(pg->used) + load_field(pg->trigger)), bsize = load_field(pg->block_size);
            if (bin < SX_BINS) {
                s->bin_pages[bin]++;
                s->bin_used[bin] += used;
                s->bin_capacity[bin] += load_field(pg->reserved);
            }
            s->in_use += used * bsize;
            s->blocks += used;
        } else if (kind == SX_SPAN_LARGE) {
            s->large_count++;
            s->large_bytes += load_field(pg->block_size);
            s->in_use += load_field(pg->block_size);
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
        uintptr_t from = (uintptr_t)load_field(last_free->start);
        if (ce > from) s->top_free = ce - from;
    }
}

/* ---- calls per class ---- */

void sx_snapshot_take(sx_snapshot *s) {
    memset(s, 0, sizeof *s);
    s->pid = (int)getpid();
    sx_fmt(s->version, sizeof s->version, "%s", STRATA_VERSION_STRING);
    s->walked = true;
    s->stats_option = sx_opt.stats;
    for (const sx_heap *h = sx_heaps_first(); h; h = h->all_next)
        sx_snapshot_add_heap(s, sx_counts_of_const(h), false);
    sx_snapshot_add_counters(s, sx_count);
    s->resident = sx_resident_bytes("/proc/self/statm", sx_os_kernel_page);
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
