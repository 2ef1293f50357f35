/*
 * config.h — the geometry of strata's memory, in one place.
 *
 * Memory comes from the OS in segments: 4 MiB regions aligned to 4 MiB, so that the segment of any
 * pointer is found by masking its address. A segment is cut into 64 slices of 64 KiB; slice 0 holds
 * the segment header (the slice descriptors), the other 63 are handed out in runs ("spans") that
 * become pages of one block size, or one large block. Blocks too big for a segment, or at least as
 * big as the mmap threshold, get a mapping of their own ("huge" blocks).
 */
#ifndef STRATA_CONFIG_H
#define STRATA_CONFIG_H

#include <stddef.h>

#define SX_SEG_SHIFT 22
#define SX_SEG_SIZE ((size_t)1 << SX_SEG_SHIFT)
#define SX_SEG_MASK (SX_SEG_SIZE - 1)

#define SX_SLICE_SHIFT 16
#define SX_SLICE_SIZE ((size_t)1 << SX_SLICE_SHIFT)
#define SX_SLICES ((unsigned)(SX_SEG_SIZE / SX_SLICE_SIZE)) /* 64 */
#define SX_SPAN_MAX (SX_SLICES - 1)                         /* longest span: all but the header */

/* User space addresses on x86-64 and arm64 (without 5-level paging hints) fit in 47 bits. */
#define SX_ADDR_BITS 47
#define SX_SEGMAP_BITS ((size_t)1 << (SX_ADDR_BITS - SX_SEG_SHIFT))

/* Size classes: 16-byte steps up to 128 bytes, then 8 classes per doubling (waste under 12.5%). */
#define SX_BINS 88                           /* classes 16 B .. 128 KiB */
#define SX_SMALL_MAX ((size_t)8 << 10)       /* classes up to here live in 1-slice pages */
#define SX_MEDIUM_MAX ((size_t)128 << 10)    /* classes up to here live in 8-slice pages */
#define SX_MEDIUM_SLICES 8
#define SX_BIN_LARGE SX_BINS                 /* counters of large blocks sit after the classes */
#define SX_DIRECT_MAX 1024                   /* sizes served by the direct page table */
#define SX_DIRECT_SLOTS (SX_DIRECT_MAX / 16 + 1)
#define SX_LARGE_MAX (SX_SPAN_MAX * SX_SLICE_SIZE)

/* A page's free list is extended lazily, at most this many bytes of new blocks at a time, so a
 * program that uses a few blocks of a class touches only the memory it uses. */
#define SX_EXTEND_BYTES 4096

/* glibc's defaults for the mmap threshold and its dynamic ceiling, the trim threshold and top pad. */
#define SX_MMAP_THRESHOLD_DEFAULT ((size_t)128 << 10)
#define SX_PROFILE_RATE_DEFAULT ((size_t)512 << 10) /* the heap profile: bytes between samples */
#define SX_MMAP_THRESHOLD_MAX ((size_t)32 << 20)
#define SX_TRIM_THRESHOLD_DEFAULT ((size_t)128 << 10)
#define SX_TOP_PAD_DEFAULT ((size_t)128 << 10)

/* Freed huge mappings kept for reuse (hugecache.c): at most this many, this many bytes, this long
 * unused. */
#define SX_HUGECACHE_MAX 8
#define SX_HUGECACHE_BYTES ((size_t)128 << 20)
#define SX_HUGECACHE_AGE_MS 1000

/* Addresses of freed huge blocks remembered, so that a second free of one is a double free. */
#define SX_HUGE_FREED 64

/* Empty segments kept for reuse before mmap'd ones are unmapped (SX_SEGCACHE_MAX), of which some
 * keep their pages (dirty): up to max(SX_RETAIN_MIN, 1/SX_RETAIN_FRACTION of the memory held,
 * SX_RETAIN_PER_HEAP per thread heap), so that a program whose working set breathes, or whose threads come
 * and go, does not fault its memory back in every time. */
#define SX_SEGCACHE_MAX 16
#ifndef SX_RETAIN_MIN
#define SX_RETAIN_MIN ((size_t)16 << 20)
#endif
#define SX_RETAIN_FRACTION 8
#ifndef SX_RETAIN_PER_HEAP
#define SX_RETAIN_PER_HEAP ((size_t)2 << 20)
#endif

/* Thread heaps are made in regions of twice this size: the heaps in the lower half, each heap's
 * counters this far above it, in memory shared with `strata stats PID` (heap/meta.c). */
#define SX_HEAP_REGION ((size_t)1 << 20)

/* Cross-thread frees are batched per destination heap before one atomic push. */
#define SX_OUT_SLOTS 8
#define SX_OUT_BATCH 64
#ifndef SX_STASH_KEEP
#define SX_STASH_KEEP 1                    /* keep other heaps' small blocks for reuse */
#endif
#define SX_STASH_BINS 32                   /* classes up to 1 KiB keep other heaps' blocks */
#define SX_STASH_BYTES ((size_t)2 << 10)   /* at most this much per class (4 to 64 blocks) */
/* Blocks smaller than a cache line share it with their page's other blocks, which the owner hands
 * out: stashed and reused here, they would put two threads' writes on one line (false sharing). */
#define SX_STASH_MIN 64

/* Secure mode: freed blocks wait in a per-heap quarantine of this many before they can be reused. */
#define SX_QUARANTINE 64

/* The cheap checks of the default build (STRATA_HARDEN=1): free-list links checked when popped
 * (one that leaves its block's segment aborts), the free key that catches a double free, the
 * block-start test on free. STRATA_HARDEN=2 (libstrata-secure.so) also stores the links encoded
 * with a secret, so an overwrite cannot aim them anywhere. STRATA_HARDEN=0 compiles the checks
 * out, only to measure what they cost (make bench-harden); that build must never ship. */
#ifndef STRATA_HARDEN
#define STRATA_HARDEN 1
#endif

#endif
