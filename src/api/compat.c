/*
 * compat.c — glibc's tuning and introspection calls: mallopt, mallinfo2, malloc_trim and
 * malloc_info (malloc_stats prints stats.c's report).
 *
 * mallopt honours M_MMAP_THRESHOLD, M_TRIM_THRESHOLD and M_TOP_PAD as glibc does (setting any of
 * them, or M_MMAP_MAX, stops the thresholds from adapting) and accepts glibc's other parameters:
 * strata has no arenas (a heap per thread instead) or fast bins to size and does not cap its
 * mappings, so M_ARENA_MAX, M_ARENA_TEST, M_MXFAST, M_MMAP_MAX, M_PERTURB and M_CHECK_ACTION are
 * taken and have no further effect. Like glibc, an unknown parameter is not an error.
 */
#include <string.h>

#include "api.h"
#include "compat.h"
#include "strata.h"

int sx_mallopt(int param, int value) {
    sx_process_init();
    size_t v = (size_t)(long)value; /* glibc stores the int in an unsigned long: -1 is "never" */
    switch (param) {
    case M_MMAP_THRESHOLD:
        if (value < 0 || v > SX_MMAP_THRESHOLD_MAX) return 0;
        sx_threshold_set_mmap(v);
        if (sx_tls_heap != &sx_heap_empty) sx_heap_direct_refresh(sx_tls_heap); /* others: later */
        break;
    case M_TRIM_THRESHOLD: atomic_store(&sx_trim_threshold, v); break;
    case M_TOP_PAD: atomic_store(&sx_top_pad, value < 0 ? 0 : v); break;
    case M_MMAP_MAX: /* strata does not limit its mappings; like glibc, this fixes the thresholds */
        break;
    case M_MXFAST:
        return value >= 0 && v <= 80 * sizeof(size_t) / 4;
    default:
        return 1;
    }
    atomic_store(&sx_threshold_fixed, true);
    sx_thresholds_share();
    return 1;
}

struct mallinfo2 sx_mallinfo2(void) {
    sx_process_init();
    sx_snapshot s;
    sx_snapshot_take(&s);
    size_t seg_in_use = s.in_use - s.huge_in_use;
    struct mallinfo2 m;
    memset(&m, 0, sizeof m);
    m.arena = s.segment_bytes;  /* memory held outside own-mapping blocks: [heap] and segments */
    m.ordblks = s.free_spans;   /* free runs of memory */
    m.hblks = s.huge_count;
    m.hblkhd = s.huge_bytes;
    m.uordblks = seg_in_use;
    m.fordblks = s.segment_bytes > seg_in_use ? s.segment_bytes - seg_in_use : 0;
    m.keepcost = s.top_free;
    return m;
}

int sx_malloc_trim(size_t pad) {
    sx_process_init();
    size_t before = atomic_load(&sx_count->purged_bytes) + atomic_load(&sx_count->brk_calls) +
                    atomic_load(&sx_count->munmap_calls);
    sx_reclaim(pad);
    size_t after = atomic_load(&sx_count->purged_bytes) + atomic_load(&sx_count->brk_calls) +
                   atomic_load(&sx_count->munmap_calls);
    return after != before;
}

static void put(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(FILE *f, const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    sx_vfmt(line, sizeof line, fmt, ap);
    va_end(ap);
    fputs(line, f);
}

int sx_malloc_info(int options, FILE *f) {
    if (options != 0) {
        errno = EINVAL;
        return -1;
    }
    sx_process_init();
    sx_snapshot s;
    sx_snapshot_take(&s);
    put(f, "<malloc version=\"strata-%s\">\n<heap nr=\"0\">\n<sizes>\n", STRATA_VERSION_STRING);
    for (unsigned bin = 0; bin < SX_BINS; bin++) {
        if (!s.bin_pages[bin]) continue;
        size_t from = bin ? sx_bin_size(bin - 1) + 1 : 1, to = sx_bin_size(bin);
        put(f, "<size from=\"%zu\" to=\"%zu\" pages=\"%zu\" inuse=\"%zu\" free=\"%zu\"/>\n", from,
            to, s.bin_pages[bin], s.bin_used[bin], s.bin_capacity[bin] - s.bin_used[bin]);
    }
    put(f, "</sizes>\n");
    put(f, "<total type=\"inuse\" count=\"%zu\" size=\"%zu\"/>\n", s.blocks, s.in_use);
    put(f, "<total type=\"large\" count=\"%zu\" size=\"%zu\"/>\n", s.large_count, s.large_bytes);
    put(f, "<total type=\"free\" count=\"%zu\" size=\"%zu\"/>\n", s.free_spans, s.free_span_bytes);
    put(f, "<system type=\"brk\" size=\"%zu\"/>\n", s.brk_bytes);
    put(f, "<system type=\"segments\" size=\"%zu\"/>\n", s.mapped_bytes);
    put(f, "</heap>\n");
    put(f, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", s.huge_count, s.huge_bytes);
    put(f, "<system type=\"current\" size=\"%zu\"/>\n", s.segment_bytes + s.huge_bytes);
    put(f, "<system type=\"max\" size=\"%zu\"/>\n", s.segment_bytes + s.huge_max_bytes);
    put(f, "</malloc>\n");
    return 0;
}
