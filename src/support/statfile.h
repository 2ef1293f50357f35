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
#define SX_SHARE_VERSION 2u
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
    /* The heap profile (below), once the first sample made it: its offset in the file (0: none
     * yet) and size. Written once, before `profile_at`. */
    uint64_t profile_bytes;
    _Atomic uint64_t profile_at;
} sx_share_header;
_Static_assert(sizeof(sx_share_header) <= SX_SHARE_HEADER, "the header fits before the heaps");

/* ---- the heap profile (heap/profile.c writes it, tools/profile.c reads it) ----
 * One allocation in about every profile_rate bytes allocated is sampled, with its call stack. The
 * profile is a part of the statistics file (at header.profile_at, profile_bytes long), of
 * three parts at the offsets its header gives: the header, the stacks (SX_PROFILE_STACKS entries,
 * filled from the first; an entry is used when its depth is not 0; never removed) and the live
 * samples (SX_PROFILE_LIVE entries; an entry is used when its addr is not 0). The writer's hash
 * indexes follow, which readers need not look at. Writers hold a lock and make `generation` odd
 * while they write: a reader copies the whole part and takes the copy when the generation was even
 * and the same before and after. Only the entries written are resident, so the part costs a
 * process memory in proportion to its stacks and live samples.
 *
 * A sample stands for `objects` blocks (an estimate: the bytes the sampler counted between two
 * samples, over the block size), each of `size` bytes requested: inuse_space is objects * size.
 * Huge blocks (a mapping of their own) are all recorded, each with objects = 1. */
#define SX_PROFILE_MAGIC 0x464f525041525453ULL /* "STRAPROF" in memory */
#define SX_PROFILE_VERSION 1u
#define SX_PROFILE_DEPTH 32
#define SX_PROFILE_STACKS 4096u /* a power of two */
#define SX_PROFILE_LIVE 16384u  /* a power of two */
typedef struct sx_profile_stack {
    uint64_t hash;                /* of the frames */
    uint32_t depth;               /* 0: an empty entry */
    uint32_t flags;
    double alloc_objects, alloc_space; /* estimated blocks and bytes allocated here since start */
    uint64_t pc[SX_PROFILE_DEPTH];     /* return addresses, innermost first */
} sx_profile_stack;
typedef struct sx_profile_live {
    uint64_t addr;    /* the block; 0: an empty entry */
    uint64_t size;    /* bytes requested */
    double objects;   /* blocks the sample stands for */
    uint32_t stack;   /* index in the stacks */
    uint32_t flags;   /* SX_PROFILE_HUGE */
} sx_profile_live;
#define SX_PROFILE_HUGE 1u
typedef struct sx_profile_header {
    uint64_t magic;
    uint32_t version;                 /* SX_PROFILE_VERSION; the sizes below must match too */
    uint32_t header_size, stack_size, live_size, depth;
    uint32_t max_stacks, max_live;    /* SX_PROFILE_STACKS, SX_PROFILE_LIVE */
    int32_t pid;
    _Atomic uint64_t generation;      /* odd while a writer writes */
    uint64_t rate;                    /* profile_rate: mean bytes between samples */
    uint64_t stacks_at, live_at;      /* offsets from the header's start */
    uint64_t samples;                 /* samples taken since start (huge blocks included) */
    uint64_t dropped;                 /* of them, not recorded: a table was full */
    uint32_t nstacks, nlive;          /* entries in use */
    uint64_t start_ns, now_ns;        /* CLOCK_MONOTONIC at start and at the last write */
} sx_profile_header;
#define SX_PROFILE_HEADER ((size_t)256)
_Static_assert(sizeof(sx_profile_header) <= SX_PROFILE_HEADER, "the profile header fits");
#define SX_PROFILE_BYTES                                                                           \
    (SX_PROFILE_HEADER + SX_PROFILE_STACKS * sizeof(sx_profile_stack) +                           \
     SX_PROFILE_LIVE * sizeof(sx_profile_live) + 2 * (SX_PROFILE_STACKS + SX_PROFILE_LIVE) * sizeof(uint16_t))

#pragma GCC visibility pop

#endif
