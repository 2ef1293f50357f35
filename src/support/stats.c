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
 */
#include <fcntl.h>
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

/* ---- calls per class ---- */

static _Atomic uint64_t class_peak[SX_BINS + 1];

static sx_heap *first_heap(void) {
    sx_lock(&sx_pool_lock);
    sx_heap *h = sx_all_heaps; /* heaps are never freed, and linked in before they are used */
    sx_unlock(&sx_pool_lock);
    return h;
}

static uint64_t heap_allocs(const sx_heap *h, unsigned bin) {
    uint64_t n = RD(h->n_alloc[bin]);
    if (bin <= sx_bin_of(SX_DIRECT_MAX))
        for (unsigned d = sx_bin_direct_lo(bin), hi = sx_bin_direct_hi(bin); d <= hi; d++)
            n += RD(h->n_direct[d]);
    return n;
}

static void class_calls(unsigned bin, uint64_t *allocs, uint64_t *frees) {
    uint64_t a = 0, f = 0;
    for (const sx_heap *h = first_heap(); h; h = h->all_next) {
        a += heap_allocs(h, bin);
        f += RD(h->n_free[bin]);
    }
    f += RD(sx_heap_empty.n_free[bin]); /* the shared heap of threads without one */
    *allocs = a;
    *frees = f;
}

static uint64_t live_of(uint64_t allocs, uint64_t frees) { return allocs > frees ? allocs - frees : 0; }

void sx_stats_sample(unsigned bin) {
    uint64_t a, f;
    class_calls(bin, &a, &f);
    uint64_t live = live_of(a, f), old = atomic_load_explicit(&class_peak[bin], memory_order_relaxed);
    while (live > old && !atomic_compare_exchange_weak_explicit(&class_peak[bin], &old, live,
                                                                 memory_order_relaxed,
                                                                 memory_order_relaxed)) {
    }
}

static size_t resident_bytes(void) {
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char *p = buf;
    while (*p && *p != ' ') p++; /* skip the size field */
    size_t pages = 0;
    while (*p == ' ') p++;
    while (*p >= '0' && *p <= '9') pages = pages * 10 + (size_t)(*p++ - '0');
    return pages * sx_os_page;
}

void sx_snapshot_take(sx_snapshot *s) {
    memset(s, 0, sizeof *s);
    for (unsigned bin = 0; bin <= SX_BIN_LARGE; bin++) {
        class_calls(bin, &s->allocs[bin], &s->frees[bin]);
        uint64_t live = live_of(s->allocs[bin], s->frees[bin]);
        uint64_t peak = atomic_load_explicit(&class_peak[bin], memory_order_relaxed);
        s->peak[bin] = live > peak ? live : peak;
    }
    for (const sx_heap *h = first_heap(); h; h = h->all_next) s->requested += RD(h->requested);
    s->requested += RD(sx_heap_empty.requested);
    s->resident = resident_bytes();
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

/* Reserved address space, committed and resident memory, purging, fragmentation. */
static void print_memory(int fd, const sx_snapshot *s) {
    char a[32], b[32], c[32], d[32], e[32];
    size_t reserved = s->brk_bytes + s->mapped_bytes + s->huge_bytes +
                      RA(sx_count.huge_cached_bytes);
    size_t committed = s->segment_bytes + s->huge_bytes;
    uint64_t mallocs = 0, frees = 0, bytes = 0;
    for (unsigned bin = 0; bin < SX_BINS; bin++) {
        mallocs += s->allocs[bin];
        frees += s->frees[bin];
        bytes += s->allocs[bin] * sx_bin_size(bin);
    }
    mallocs += s->allocs[SX_BIN_LARGE] + RA(sx_count.huge_allocs);
    frees += s->frees[SX_BIN_LARGE] + RA(sx_count.huge_frees);
    sx_printf(fd, "  calls          %zu mallocs, %zu frees (large %zu/%zu, huge %zu/%zu)\n",
              (size_t)mallocs, (size_t)frees, (size_t)s->allocs[SX_BIN_LARGE],
              (size_t)s->frees[SX_BIN_LARGE], RA(sx_count.huge_allocs), RA(sx_count.huge_frees));
    if (sx_opt.stats)
        sx_printf(fd, "  bytes          requested %s; allocated in size classes %s\n",
                  sx_fmt_bytes(a, sizeof a, (size_t)s->requested),
                  sx_fmt_bytes(b, sizeof b, (size_t)bytes));
    else
        sx_printf(fd, "  bytes          allocated in size classes %s (requested: with stats=1)\n",
                  sx_fmt_bytes(b, sizeof b, (size_t)bytes));
    size_t tenths = s->in_use ? (size_t)(10 * (double)s->resident / (double)s->in_use + 0.5) : 0;
    sx_printf(fd, "  memory         reserved %s, committed %s, resident %s (whole process); "
                  "purged %s; resident/in use %zu.%zu\n",
              sx_fmt_bytes(a, sizeof a, reserved), sx_fmt_bytes(b, sizeof b, committed),
              sx_fmt_bytes(c, sizeof c, s->resident),
              sx_fmt_bytes(d, sizeof d, RA(sx_count.purged_bytes)), tenths / 10, tenths % 10);
    (void)e;
}

/* One line per class that saw a call: mallocs, frees, live blocks and bytes, peak, pages. */
static void print_classes(int fd, const sx_snapshot *s) {
    sx_printf(fd, "  %10s %12s %12s %10s %12s %10s %6s\n", "class", "mallocs", "frees", "live",
              "live bytes", "peak", "pages");
    char a[32];
    for (unsigned bin = 0; bin <= SX_BIN_LARGE; bin++) {
        if (!s->allocs[bin] && !s->frees[bin]) continue;
        uint64_t live = live_of(s->allocs[bin], s->frees[bin]);
        char name[16];
        if (bin == SX_BIN_LARGE) sx_fmt(name, sizeof name, "large");
        else sx_fmt(name, sizeof name, "%zu", sx_bin_size(bin));
        size_t live_bytes = bin == SX_BIN_LARGE ? s->large_bytes : (size_t)live * sx_bin_size(bin);
        sx_printf(fd, "  %10s %12zu %12zu %10zu %12s %10zu %6zu\n", name, (size_t)s->allocs[bin],
                  (size_t)s->frees[bin], (size_t)live, sx_fmt_bytes(a, sizeof a, live_bytes),
                  (size_t)s->peak[bin], bin == SX_BIN_LARGE ? s->large_count : s->bin_pages[bin]);
    }
    char b[32];
    sx_printf(fd, "  %10s %12zu %12zu %10zu %12s\n", "huge", RA(sx_count.huge_allocs),
              RA(sx_count.huge_frees), s->huge_count, sx_fmt_bytes(b, sizeof b, s->huge_in_use));
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
    print_memory(fd, &s);
    print_classes(fd, &s);
}
