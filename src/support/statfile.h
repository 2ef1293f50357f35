/*
 * statfile.h — the statistics file's format: the process's counters (sx_counters), the report's
 * numbers (sx_snapshot) and the header of the memfd that `strata stats PID` reads (heap/share.c
 * writes it, tools/stats.c reads it). Plain numbers, no pointers. Part of the support layer.
 */
#ifndef STRATA_STATFILE_H
#define STRATA_STATFILE_H

#include "../base.h"

#pragma GCC visibility push(hidden)

#define SX_HEAP_STRIDE ((sizeof(sx_heap) + 63) & ~(size_t)63) /* heaps of a region */

/* Counters of memory held and system calls, kept where they happen (rare paths); also the calls
 * of threads without a heap, the per-class peaks and a copy of the thresholds. Plain numbers, no
 * pointers: they live in the process's shared statistics file once it has one (share.c), where
 * `strata stats PID` reads them. */
typedef struct sx_counters {
    _Atomic size_t brk_bytes;        /* committed bytes below the break that strata holds */
    _Atomic size_t mapped_bytes;     /* bytes of mmap'd normal segments */
    _Atomic size_t huge_bytes, huge_count;
    _Atomic size_t huge_max_bytes, huge_max_count;
    _Atomic size_t huge_cached_bytes; /* freed huge mappings kept for reuse */
    _Atomic size_t segments;         /* normal segments owned by heaps */
    _Atomic size_t cached_segments;
    _Atomic size_t heaps;
    _Atomic size_t brk_calls, mmap_calls, munmap_calls, mremap_calls, madvise_calls;
    _Atomic size_t purged_bytes;
    _Atomic size_t huge_allocs, huge_frees; /* calls that made or freed a huge block */
    _Atomic uint64_t stray_free[SX_BINS + 1]; /* frees by threads without a heap (exiting ones) */
    _Atomic uint64_t stray_requested;
    _Atomic uint64_t class_peak[SX_BINS + 1]; /* stats=1: most live blocks seen per class */
    /* the thresholds as they are now (the variables in huge.c are what strata uses) */
    _Atomic size_t mmap_threshold, trim_threshold, top_pad, threshold_fixed;
} sx_counters;

/* What the statistics report shows, as plain numbers: taken inside the process (stats.c, which
 * also walks every segment) or read from outside by `strata stats PID` (tools/stats.c, which
 * cannot walk: `walked` is false and the report prints "-" for what only the walk knows). */
typedef struct sx_snapshot {
    int pid;
    char version[16];
    bool walked;           /* the fields marked "walk" below are known */
    bool stats_option;     /* stats=1: bytes requested were counted */
    size_t hidden_heaps;   /* heaps whose calls are not counted (outside the shared file) */
    /* counters */
    size_t brk_bytes, mapped_bytes, huge_bytes, huge_count, huge_max_bytes, huge_max_count;
    size_t huge_cached_bytes, segments, cached_segments, heaps;
    size_t brk_calls, mmap_calls, munmap_calls, mremap_calls, madvise_calls;
    size_t purged_bytes, huge_allocs, huge_frees;
    size_t mmap_threshold, trim_threshold, top_pad;
    bool threshold_fixed;
    /* walk */
    size_t segment_bytes;   /* committed bytes of live normal segments */
    size_t in_use, blocks;  /* bytes and blocks handed out, huge ones included */
    size_t huge_in_use;
    size_t large_count, large_bytes;
    size_t free_spans, free_span_bytes;
    size_t top_free;        /* committed free bytes at the top of the brk heap */
    size_t bin_used[SX_BINS], bin_capacity[SX_BINS];
    /* pages per class, [SX_BIN_LARGE]: large blocks' spans (walk inside, counted outside) */
    size_t bin_pages[SX_BINS + 1];
    /* calls summed over every heap; [SX_BIN_LARGE]: large blocks */
    uint64_t allocs[SX_BINS + 1], frees[SX_BINS + 1], peak[SX_BINS + 1];
    uint64_t requested;    /* bytes asked for, with stats=1 */
    size_t resident;       /* the process's resident set, from /proc/PID/statm */
} sx_snapshot;
/* The statistics file `strata stats PID` reads (heap/share.c):
 * A memfd named "strata" (the command finds it among /proc/PID/fd) holding the counters of the
 * heaps of region k (meta.c) at k * SX_HEAP_REGION: those of heap j at SX_SHARE_HEADER + j *
 * SX_HEAP_STRIDE from there. The header, with sx_count, fills the bytes before region 0's heaps. */
#define SX_SHARE_MAGIC 0x5453415441525453ULL /* "STRATAST" in memory */
#define SX_SHARE_VERSION 1u
#define SX_SHARE_NAME "strata"
#define SX_SHARE_HEADER ((size_t)2048)
typedef struct sx_share_header {
    uint64_t magic;
    uint32_t version;     /* SX_SHARE_VERSION; the sizes below must match as well */
    uint32_t header_size, counters_size, heap_counts_size, bins, direct_slots;
    uint32_t heaps_at;     /* SX_SHARE_HEADER */
    uint32_t heap_stride;  /* SX_HEAP_STRIDE */
    uint32_t region_heaps; /* heaps per region */
    uint64_t region_bytes; /* SX_HEAP_REGION */
    int32_t pid;          /* getpid() of the process that writes it */
    char library[16];     /* STRATA_VERSION_STRING */
    uint8_t stats_option;
    _Atomic uint32_t heaps;        /* heaps made, in order: region i / region_heaps */
    _Atomic uint32_t hidden_heaps; /* of them, ones whose counters are not in the file */
    sx_counters count;    /* sx_count, in place */
} sx_share_header;
_Static_assert(sizeof(sx_share_header) <= SX_SHARE_HEADER, "the header fits before the heaps");

#pragma GCC visibility pop

#endif
