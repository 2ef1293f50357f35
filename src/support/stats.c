/*
 * stats.c — what the allocator holds, from its own metadata.
 *
 * Nothing is counted on the malloc or free fast paths. Counters of system calls and of memory held
 * are updated where memory is obtained or returned (rare); bytes in use are found by walking the
 * slice descriptors of every live segment. The walk reads other threads' pages without stopping
 * them, so a report taken while threads run is approximate, and exact when they are quiet.
 */
#include <string.h>
#include <unistd.h>

#include "../heap/sizeclass.h"
#include "strata.h"

sx_counters sx_count;

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
            size_t used = RD(pg->used), bsize = RD(pg->block_size);
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

void sx_snapshot_take(sx_snapshot *s) {
    memset(s, 0, sizeof *s);
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
    s->brk_bytes = atomic_load(&sx_count.brk_bytes);
    s->mapped_bytes = atomic_load(&sx_count.mapped_bytes);
    s->huge_bytes = atomic_load(&sx_count.huge_bytes);
    s->huge_count = atomic_load(&sx_count.huge_count);
    s->huge_max_bytes = atomic_load(&sx_count.huge_max_bytes);
    s->huge_max_count = atomic_load(&sx_count.huge_max_count);
    s->segments = atomic_load(&sx_count.segments);
    s->cached_segments = atomic_load(&sx_count.cached_segments);
    s->heaps = atomic_load(&sx_count.heaps);
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
    out->brk_calls = RA(sx_count.brk_calls);
    out->mmap_calls = RA(sx_count.mmap_calls);
    out->munmap_calls = RA(sx_count.munmap_calls);
    out->mremap_calls = RA(sx_count.mremap_calls);
    out->madvise_calls = RA(sx_count.madvise_calls);
}

void sx_stats_print(int fd, const char *title) {
    sx_snapshot s;
    sx_snapshot_take(&s);
    char a[32], b[32], c[32], d[32], e[32];
    size_t held = s.segment_bytes + s.huge_bytes;
    if (!title) {
        sx_printf(fd,
                  "strata: exit of pid %d: %s in use in %zu blocks; %s held ([heap] %s, mmap "
                  "segments %s, %zu huge blocks %s); %zu thread heaps; system calls: brk %zu, "
                  "mmap %zu, munmap %zu\n",
                  (int)getpid(), sx_fmt_bytes(a, sizeof a, s.in_use), s.blocks,
                  sx_fmt_bytes(b, sizeof b, held), sx_fmt_bytes(c, sizeof c, s.brk_bytes),
                  sx_fmt_bytes(d, sizeof d, s.mapped_bytes), s.huge_count,
                  sx_fmt_bytes(e, sizeof e, s.huge_bytes), s.heaps, RA(sx_count.brk_calls),
                  RA(sx_count.mmap_calls), RA(sx_count.munmap_calls));
        return;
    }
    sx_printf(fd, "strata %s heap statistics (pid %d, %s)\n", STRATA_VERSION_STRING,
              (int)getpid(), title);
    sx_printf(fd, "  in use         %s in %zu blocks (%zu large, %zu huge)\n",
              sx_fmt_bytes(a, sizeof a, s.in_use), s.blocks, s.large_count, s.huge_count);
    sx_printf(fd, "  held           %s: [heap] %s, mmap segments %s, huge blocks %s\n",
              sx_fmt_bytes(a, sizeof a, held), sx_fmt_bytes(b, sizeof b, s.brk_bytes),
              sx_fmt_bytes(c, sizeof c, s.mapped_bytes), sx_fmt_bytes(d, sizeof d, s.huge_bytes));
    sx_printf(fd, "  free spans     %s in %zu spans; top of [heap] releasable %s\n",
              sx_fmt_bytes(a, sizeof a, s.free_span_bytes), s.free_spans,
              sx_fmt_bytes(b, sizeof b, s.top_free));
    sx_printf(fd, "  segments       %zu in use, %zu cached; %zu thread heaps\n", s.segments,
              s.cached_segments, s.heaps);
    sx_printf(fd, "  thresholds     mmap %zu (%s), trim %zu, top pad %zu\n",
              RA(sx_mmap_threshold), RA(sx_threshold_fixed) ? "fixed" : "adapts",
              RA(sx_trim_threshold), RA(sx_top_pad));
    sx_printf(fd, "  max huge       %zu blocks, %s\n", s.huge_max_count,
              sx_fmt_bytes(a, sizeof a, s.huge_max_bytes));
    sx_printf(fd, "  system calls   brk %zu, mmap %zu, munmap %zu, mremap %zu, madvise %zu\n",
              RA(sx_count.brk_calls), RA(sx_count.mmap_calls), RA(sx_count.munmap_calls),
              RA(sx_count.mremap_calls), RA(sx_count.madvise_calls));
}
