/*
 * report.c — the heap statistics report, one printer for malloc_stats(), STRATA_OPTIONS=stats=1
 * and `strata stats PID`.
 *
 * It prints a snapshot of plain numbers. Inside the process, stats.c fills one from the heaps, the
 * counters and a walk over every segment. The strata command fills one from the process's shared
 * statistics file (share.c): the same heaps and counters, read from outside, but no walk, since it
 * cannot follow pointers into another process. What only the walk knows (bytes in use, committed
 * memory, free spans, the exact size of large and huge blocks) is then printed as "-"; pages per
 * class come from the heaps' own page counts instead. The strata command compiles this file and
 * fmt.c with the library's headers, so both read the same structures.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../sizeclass.h"
#include "support.h"

#define load_field(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)          /* plain fields of live heaps */
#define load_counter(x) atomic_load_explicit(&(x), memory_order_relaxed) /* atomic counters */

/* Mallocs of a class in one heap: the slow path counts by class, the fast path by direct slot. */
uint64_t sx_heap_class_allocs(const sx_heap_counts *c, unsigned bin) {
    uint64_t n = load_field(c->n_alloc[bin]);
    if (bin <= sx_bin_of(SX_DIRECT_MAX))
        for (unsigned d = sx_bin_direct_lo(bin), hi = sx_bin_direct_hi(bin); d <= hi; d++)
            n += load_field(c->n_direct[d]);
    return n;
}

void sx_snapshot_add_heap(sx_snapshot *s, const sx_heap_counts *c, bool pages) {
    for (unsigned bin = 0; bin <= SX_BIN_LARGE; bin++) {
        s->allocs[bin] += sx_heap_class_allocs(c, bin);
        s->frees[bin] += load_field(c->n_free[bin]);
        if (pages) s->bin_pages[bin] += load_field(c->pages[bin]);
    }
    s->requested += load_field(c->requested);
}

static uint64_t live_of(uint64_t allocs, uint64_t frees) { return allocs > frees ? allocs - frees : 0; }

void sx_snapshot_add_counters(sx_snapshot *s, sx_counters *c) {
    for (unsigned bin = 0; bin <= SX_BIN_LARGE; bin++) {
        s->frees[bin] += load_counter(c->stray_free[bin]);
        uint64_t live = live_of(s->allocs[bin], s->frees[bin]), peak = load_counter(c->class_peak[bin]);
        s->peak[bin] = live > peak ? live : peak;
    }
    s->requested += load_counter(c->stray_requested);
    s->brk_bytes = load_counter(c->brk_bytes);
    s->mapped_bytes = load_counter(c->mapped_bytes);
    s->huge_bytes = load_counter(c->huge_bytes);
    s->huge_count = load_counter(c->huge_count);
    s->huge_max_bytes = load_counter(c->huge_max_bytes);
    s->huge_max_count = load_counter(c->huge_max_count);
    s->huge_cached_bytes = load_counter(c->huge_cached_bytes);
    s->segments = load_counter(c->segments);
    s->cached_segments = load_counter(c->cached_segments);
    s->heaps = load_counter(c->heaps);
    s->brk_calls = load_counter(c->brk_calls);
    s->mmap_calls = load_counter(c->mmap_calls);
    s->munmap_calls = load_counter(c->munmap_calls);
    s->mremap_calls = load_counter(c->mremap_calls);
    s->madvise_calls = load_counter(c->madvise_calls);
    s->purged_bytes = load_counter(c->purged_bytes);
    s->huge_allocs = load_counter(c->huge_allocs);
    s->huge_frees = load_counter(c->huge_frees);
    s->mmap_threshold = load_counter(c->mmap_threshold);
    s->trim_threshold = load_counter(c->trim_threshold);
    s->top_pad = load_counter(c->top_pad);
    s->threshold_fixed = load_counter(c->threshold_fixed) != 0;
}

/* The resident set of a process, from its statm (the second field, in pages). */
size_t sx_resident_bytes(const char *statm_path, size_t page) {
    int fd = open(statm_path, O_RDONLY | O_CLOEXEC);
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
    return pages * page;
}

/* A byte count, or "-" when it is not known. */
static const char *bytes(char *buf, size_t cap, bool known, size_t n) {
    if (!known) return "-";
    return sx_fmt_bytes(buf, cap, n);
}

/* Reserved address space, committed and resident memory, purging, fragmentation. */
static void print_memory(int fd, const sx_snapshot *s) {
    char a[32], b[32], c[32], d[32], e[32];
    size_t reserved = s->brk_bytes + s->mapped_bytes + s->huge_bytes + s->huge_cached_bytes;
    size_t committed = s->segment_bytes + s->huge_bytes;
    uint64_t mallocs = 0, frees = 0, allocated = 0;
    for (unsigned bin = 0; bin < SX_BINS; bin++) {
        mallocs += s->allocs[bin];
        frees += s->frees[bin];
        allocated += s->allocs[bin] * sx_bin_size(bin);
    }
    mallocs += s->allocs[SX_BIN_LARGE] + s->huge_allocs;
    frees += s->frees[SX_BIN_LARGE] + s->huge_frees;
    sx_printf(fd, "  calls          %zu mallocs, %zu frees (large %zu/%zu, huge %zu/%zu)\n",
              (size_t)mallocs, (size_t)frees, (size_t)s->allocs[SX_BIN_LARGE],
              (size_t)s->frees[SX_BIN_LARGE], s->huge_allocs, s->huge_frees);
    if (s->stats_option)
        sx_printf(fd, "  bytes          requested %s; allocated in size classes %s\n",
                  sx_fmt_bytes(a, sizeof a, (size_t)s->requested),
                  sx_fmt_bytes(b, sizeof b, (size_t)allocated));
    else
        sx_printf(fd, "  bytes          allocated in size classes %s (requested: with stats=1)\n",
                  sx_fmt_bytes(b, sizeof b, (size_t)allocated));
    size_t tenths = s->in_use ? (size_t)(10 * (double)s->resident / (double)s->in_use + 0.5) : 0;
    if (s->walked) sx_fmt(e, sizeof e, "%zu.%zu", tenths / 10, tenths % 10);
    sx_printf(fd, "  memory         reserved %s, committed %s, resident %s (whole process); "
                  "purged %s; resident/in use %s\n",
              sx_fmt_bytes(a, sizeof a, reserved), bytes(b, sizeof b, s->walked, committed),
              sx_fmt_bytes(c, sizeof c, s->resident), sx_fmt_bytes(d, sizeof d, s->purged_bytes),
              s->walked ? e : "-");
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
        /* a large block's size is its own: only the walk adds them up */
        const char *live_bytes = bin == SX_BIN_LARGE
                                     ? bytes(a, sizeof a, s->walked, s->large_bytes)
                                     : sx_fmt_bytes(a, sizeof a, (size_t)live * sx_bin_size(bin));
        sx_printf(fd, "  %10s %12zu %12zu %10zu %12s %10zu %6zu\n", name, (size_t)s->allocs[bin],
                  (size_t)s->frees[bin], (size_t)live, live_bytes, (size_t)s->peak[bin],
                  s->bin_pages[bin]);
    }
    sx_printf(fd, "  %10s %12zu %12zu %10zu %12s\n", "huge", s->huge_allocs, s->huge_frees,
              s->huge_count, bytes(a, sizeof a, s->walked, s->huge_in_use));
}

void sx_report_print(int fd, const sx_snapshot *s, const char *title) {
    char a[32], b[32], c[32], d[32], e[32];
    size_t held = s->segment_bytes + s->huge_bytes;
    if (!title) {
        sx_printf(fd,
                  "strata: exit of pid %d: %s in use in %zu blocks; %s held ([heap] %s, mmap "
                  "segments %s, %zu huge blocks %s); %zu thread heaps; system calls: brk %zu, "
                  "mmap %zu, munmap %zu\n",
                  s->pid, sx_fmt_bytes(a, sizeof a, s->in_use), s->blocks,
                  sx_fmt_bytes(b, sizeof b, held), sx_fmt_bytes(c, sizeof c, s->brk_bytes),
                  sx_fmt_bytes(d, sizeof d, s->mapped_bytes), s->huge_count,
                  sx_fmt_bytes(e, sizeof e, s->huge_bytes), s->heaps, s->brk_calls, s->mmap_calls,
                  s->munmap_calls);
        return;
    }
    sx_printf(fd, "strata %s heap statistics (pid %d, %s)\n", s->version, s->pid, title);
    if (s->walked)
        sx_printf(fd, "  in use         %s in %zu blocks (%zu large, %zu huge)\n",
                  sx_fmt_bytes(a, sizeof a, s->in_use), s->blocks, s->large_count, s->huge_count);
    else
        sx_printf(fd, "  in use         - (known inside the process only: malloc_stats(), stats=1)\n");
    sx_printf(fd, "  held           %s: [heap] %s, mmap segments %s, huge blocks %s\n",
              bytes(a, sizeof a, s->walked, held), sx_fmt_bytes(b, sizeof b, s->brk_bytes),
              sx_fmt_bytes(c, sizeof c, s->mapped_bytes), sx_fmt_bytes(d, sizeof d, s->huge_bytes));
    if (s->walked)
        sx_printf(fd, "  free spans     %s in %zu spans; top of [heap] releasable %s\n",
                  sx_fmt_bytes(a, sizeof a, s->free_span_bytes), s->free_spans,
                  sx_fmt_bytes(b, sizeof b, s->top_free));
    else
        sx_printf(fd, "  free spans     -\n");
    sx_printf(fd, "  segments       %zu in use, %zu cached; %zu thread heaps\n", s->segments,
              s->cached_segments, s->heaps);
    if (s->hidden_heaps)
        sx_printf(fd, "  not counted    the calls of %zu thread heaps (beyond the shared file)\n",
                  s->hidden_heaps);
    sx_printf(fd, "  thresholds     mmap %zu (%s), trim %zu, top pad %zu\n", s->mmap_threshold,
              s->threshold_fixed ? "fixed" : "adapts", s->trim_threshold, s->top_pad);
    sx_printf(fd, "  max huge       %zu blocks, %s\n", s->huge_max_count,
              sx_fmt_bytes(a, sizeof a, s->huge_max_bytes));
    sx_printf(fd, "  system calls   brk %zu, mmap %zu, munmap %zu, mremap %zu, madvise %zu\n",
              s->brk_calls, s->mmap_calls, s->munmap_calls, s->mremap_calls, s->madvise_calls);
    print_memory(fd, s);
    print_classes(fd, s);
}
