/*
 * types.h — the data structures of strata, and the glossary: one word for one concept, used the
 * same way in code, comments, tests and documents.
 *
 *   segment     4 MiB of address space aligned to 4 MiB, from mmap or the program break; its
 *               header is an array of slice descriptors. Owned by one heap, or by one huge block.
 *   slice       64 KiB of a segment; the unit of spans.
 *   descriptor  sx_page: what a slice, or a run of them, is used for (its `kind`, below).
 *   span        a run of slices of one segment: free (in its heap's span bins), or a page, or a
 *               large block.
 *   page        a span cut into blocks of one size class; two free lists (free, local_free).
 *   block       what malloc hands out. A free one holds its link and its free key.
 *   pad         the last 16 bytes of a block of a class above 1 KiB, not the program's (past
 *               malloc_usable_size): malloc writes its canary there and free checks it.
 *   canary      a value made from a block's address and a secret, where the program never writes:
 *               in the pad (default mode), below a huge block, in every block's tail word
 *               (secure mode). Its edge bytes are never NUL, text or 0xff (sx_canary).
 *   size class  the block sizes a page may have ("bin" in code, as ptmalloc calls its lists).
 *   large block one block that is a whole span (up to 63 slices).
 *   huge block  one block with a mapping of its own (at or above the mmap threshold).
 *   heap        a thread's allocator state: its segments, pages, spans. Only its thread changes them.
 *   direct table the heap's array from (size+15)/16 to a page, read by malloc's fast path.
 *   kept page   a class's only page, kept by its heap when empty, so that a loop of malloc and free
 *               never gives it back and takes it again.
 *   remote free a free of a block of another heap: batched in the freeing heap's outbox, one slot
 *               per destination, and pushed to the owner's remote_in list in one atomic exchange.
 *   stash       a heap's lists, one per small class, of other heaps' blocks its thread freed: they
 *               are handed out again before anything goes home.
 *   orphan heap the heap of an exited thread, waiting to be adopted by a new thread; anyone who
 *               frees into it takes in what arrives there (collecting it).
 *   abandoned   a heap a fork child inherits from a thread that does not exist in the child.
 *   foreign     a pointer strata never made (glibc's, a stack or global address): foreign_free=.
 *   cache       the segment cache (empty segments kept for reuse), the huge cache (freed huge
 *               mappings), or an object cache (strata_cache, explicit/cache.c): always qualified.
 *   pool        strata_pool alone (explicit/pool.c): a region of memory freed all at once.
 *   quarantine  freed blocks held back from reuse so that a use after free touches nothing
 *               anybody else has: secure mode's per heap, guard mode's (diag/guard.c) inaccessible.
 *   shadow      diag: the word per 16 bytes of the core's address space that holds a tracked block's
 *               size and stack (diag/track.c), found by address with no lock.
 *   sampled guard guard_sample=N: a random one allocation in N served from a fixed pool of slots
 *               between inaccessible pages, in the release library (region/sampled.c).
 *   heap profile profile_rate: one allocation in about that many bytes, with its call stack, kept
 *               while live, in the statistics file for `strata profile PID` (heap/profile.c).
 *   profile heap the heap, owned by no thread, that serves the heap profile's sampled blocks, so
 *               that their frees are remote frees and are seen.
 *   reclaim     give back everything strata holds and does not use (core/reclaim.c).
 *   give back   return memory to the kernel (decommit or unmap); "purge" for caches.
 *   segment list every live normal segment, for statistics (region/segment.c).
 *   hook        a function pointer a lower layer calls and a higher one sets (sx_heap_hook,
 *               sx_huge_hook): the only way down-layer code reaches secure mode.
 *   client request valgrind's way for a program to tell memcheck what its memory is (a block,
 *               freed, inaccessible, undefined): a few instructions a real CPU runs as a no-op
 *               (support/vgrind.h). The explicit allocators describe their blocks with them.
 */
#ifndef STRATA_TYPES_H
#define STRATA_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

typedef struct sx_block {
    uintptr_t link; /* the next block, encoded (sx_block_next, sx_block_link) */
    uintptr_t key;
} sx_block;

/* What a span of slices is used for (sx_page.kind). */
enum {
    SX_SPAN_FREE = 0,  /* free: in its heap's span bins */
    SX_SPAN_HEADER,    /* slice 0 of a segment */
    SX_SPAN_PAGE,      /* blocks of one size class, in a page queue */
    SX_SPAN_LARGE,     /* one block that is a whole span */
    SX_SPAN_HUGE,      /* one block with a mapping of its own */
    SX_SPAN_RESERVED,  /* beyond a program break that can no longer grow: never handed out */
    SX_SPAN_STASH,     /* not a slice: a heap's stash of other heaps' blocks (remote.c) */
};

/* sx_page.flags */
#define SX_PAGE_FULL 0x1u /* in the heap's full queue: no free block at last look */
#define SX_PAGE_KEPT 0x2u /* its class's only page, kept when empty: frees skip the slow path */
#define SX_PAGE_GUARDED 0x4u /* secure mode: the span's last OS page is a guard (secure/secure.c) */
#define SX_PAGE_PROFILED 0x8u /* a large block in the heap profile (heap/profile.c) */
#define SX_SPAN_CLEAN 0x8u   /* a free span whose memory went back to the kernel (decommitted) */
/* sx_page.trigger of a kept page: its `used` is the count + 0x4000, never 0 nor below it. */
#define SX_TRIGGER_KEPT 0xC000u

/*
 * A descriptor: one per slice of a segment, plus the stash lists of a heap. The first slice of a
 * span describes the whole span; every slice records how far back that first one is (slice_back).
 * What its fields mean depends on `kind`; each kind has one constructor:
 *
 *   kind           made by                   free/local_free    used, trigger        start, block_size, capacity, reserved
 *   SX_SPAN_FREE   sx_span_mark (span.c)     -                  -                    span start, 0, 0, 0
 *   SX_SPAN_HEADER sx_span_mark              -                  -                    slice start, 0, 0, 0
 *   SX_SPAN_RESERVED sx_span_mark            -                  -                    slice start, 0, 0, 0
 *   SX_SPAN_PAGE   sx_page_init (page.c)     its free lists     blocks out, less     block 0, class size, blocks made so
 *                                                               the trigger          far, blocks that fit
 *   SX_SPAN_LARGE  sx_page_init_block        -                  1 while live         the block, its size, 1, 1
 *                  (region.h; heap.c)
 *   SX_SPAN_HUGE   sx_page_init_block        -                  1 while live         the block, 0 (the mapping's
 *                  (huge.c, slice 0 of the block's own segment)                          size says), 1, 1
 *   SX_SPAN_STASH  sx_stash_init (remote.c)  the stash's blocks blocks in the stash  -, class size, -, the most it holds
 *
 * flags: SX_PAGE_FULL, SX_PAGE_KEPT, SX_PAGE_GUARDED (pages); SX_SPAN_CLEAN (free spans).
 * bin: the size class (pages, stashes), SX_BIN_LARGE (large blocks), log2 of the alignment (huge).
 */
typedef struct sx_page {
    /* Written by the owner on every malloc and free of the page's blocks. */
    sx_block *free;          /* blocks malloc hands out */
    sx_block *local_free;    /* blocks the owner freed since; become `free` when it runs dry */
    uint16_t used;           /* blocks handed out and not returned to this page, less `trigger`
                                (mod 2^16): the free that brings it to 0 takes the slow path */
    uint16_t trigger;        /* 0; or one below the blocks handed out while the page sits in the
                                full queue (its next free comes back); or SX_TRIGGER_KEPT
                                (sx_page_used gives the count itself; sx_page_set_trigger) */
    uint8_t flags;
    /* Read by every free, other threads' too; written only when the page changes (made, extended,
     * retired). A line apart, so that a thread freeing the page's blocks while the owner hands
     * out more does not take the owner's line at every block. */
    _Alignas(64) uint8_t *start; /* address of block 0 */
    uint32_t inv;            /* inverse of the odd part of block_size mod 2^32 (block-start test) */
    uint32_t block_size;     /* 0 for spans that hold no blocks */
    uint32_t usable;         /* what a block holds for the program: block_size less the pad (the
                                classes above 1 KiB, heap.h), 0 where block_size is */
    uint16_t capacity;       /* blocks made available so far (the page is extended lazily). The
                                owner stores it and every free loads it (sx_block_valid), both
                                relaxed atomics: a thread freeing a block got it, through the
                                program's own synchronization, after the owner made it available,
                                so it reads a capacity that covers it (a later one is bigger:
                                capacity only grows while the page has blocks out); no reader
                                reads anything on the strength of it, so no release/acquire. */
    uint16_t reserved;       /* blocks that fit in the page (at most 16384: 4 slices of 16 B,
                                a guarded page where OS pages are 64 KiB) */
    uint8_t shift;           /* log2 of the power-of-two part of block_size */
    uint8_t kind;
    uint8_t bin;
    uint8_t slice_count;     /* span length, in the first slice of a span */
    uint16_t slice_back;     /* in every slice: bytes back to the descriptor of the first slice of
                                its span (sx_slice_first; set by sx_slice_set_back) */
    struct sx_page *next, *prev; /* page queue, or span bin */
} sx_page;
_Static_assert(sizeof(sx_page) == 128, "a slice descriptor is two cache lines");
#define SX_PAGE_SHIFT 7 /* log2(sizeof(sx_page)) */

/* Where a segment's memory came from. */
enum { SX_SRC_MMAP = 0, SX_SRC_BRK = 1 };
enum { SX_SEG_NORMAL = 0, SX_SEG_HUGE = 1 };

struct sx_heap;

typedef struct sx_segment {
    _Atomic(struct sx_heap *) heap; /* owner, NULL for huge blocks and cached segments */
    uint8_t kind;
    uint8_t source;
    uint8_t cached;                 /* normal: in the segment cache; huge: reusable when freed */
    uint8_t dirty;                  /* cached with its pages still resident */
    uint8_t punched;                /* brk, cached: all but its first page unmapped (brkheap.c) */
    uint8_t profiled;               /* huge: its block is in the heap profile (heap/profile.c) */
    uint16_t used_slices;           /* slices not in free spans, header and reserved ones included */
    uint16_t reserved_slices;
    size_t size;                    /* bytes mapped from the segment's base */
    _Atomic uintptr_t commit_end;   /* end of usable memory (below base+size only at the brk top) */
    struct sx_segment *next, *prev;         /* owner heap's segments, or the cache */
    struct sx_segment *all_next, *all_prev; /* the segment list: every live one, for statistics */
    uintptr_t brk_floor;            /* brk segments: the break before this segment was made */
    struct sx_segment *brk_prev;    /* brk segments: the one right below, if contiguous */
    _Alignas(64) sx_page slices[SX_SLICES + 1]; /* +1: a block exactly at the segment end */
} sx_segment;

typedef struct sx_page_queue {
    sx_page *first, *last;
} sx_page_queue;

/* Blocks of other heaps freed by this thread, waiting to be sent to their owner in one push: a
 * chain of runs, each of blocks of one page, newest first (heap/remote.c). */
typedef struct sx_out_slot {
    struct sx_heap *dest;
    sx_block *head;          /* the newest block: the head of the open run */
    sx_block *tail;          /* the oldest block of the chain */
    sx_block *run_tail;      /* the oldest block of the open run */
    const struct sx_page *run_page;
    uint32_t run;            /* blocks in the open run */
    uint32_t count;          /* blocks in the chain */
} sx_out_slot;

enum { SX_HEAP_LIVE = 0, SX_HEAP_ORPHAN, SX_HEAP_CLAIMED, SX_HEAP_ABANDONED };

/* What a heap counts, for statistics: the calls its thread made and the pages it holds. It sits
 * SX_HEAP_REGION bytes above its heap (sx_counts_of), in memory shared with `strata stats PID`
 * (heap/meta.c), so counting costs the fast paths no more than a field of the heap would. Frees
 * count where they happen, so one class's frees and mallocs may be in different heaps. */
typedef struct sx_heap_counts {
    uint64_t n_direct[SX_DIRECT_SLOTS]; /* fast-path mallocs, by direct-table slot */
    uint64_t n_alloc[SX_BINS + 1];      /* other mallocs, by class; [SX_BIN_LARGE]: large */
    uint64_t n_free[SX_BINS + 1];
    uint64_t requested;                 /* bytes asked for, counted only with stats=1 */
    uint32_t pages[SX_BINS + 1];        /* pages per class now; [SX_BIN_LARGE]: large blocks */
} sx_heap_counts;

typedef struct sx_heap {
    sx_page *direct[SX_DIRECT_SLOTS]; /* (size+15)/16 -> page with free blocks, for size <= 1 KiB */
    sx_page_queue bins[SX_BINS];      /* pages per size class; the first is the one in use */
    sx_page_queue full;               /* pages found without free blocks */
    sx_page *spans[SX_SLICES];        /* free spans by exact length (index 0 unused) */
    uint64_t span_mask;               /* bit n set: spans[n] is not empty */
    sx_segment *segments;             /* normal segments this heap owns */
    unsigned nsegments;
    sx_out_slot out[SX_OUT_SLOTS];
    sx_page stash[SX_STASH_BINS]; /* other heaps' blocks this thread freed, kept for reuse */
    unsigned stash_exits;           /* sx_thread_exits when the stashes were last emptied */
    uint32_t out_pending;             /* bit i: out[i] holds blocks */
    unsigned direct_epoch;            /* sx_direct_epoch when the direct table was last pointed */
    uint32_t id;
    uint64_t rng;                     /* secure mode: xorshift state */
    int64_t sample_left;              /* guard_sample: blocks made available until the next sampled
                                         one; below zero, the next slow path samples (core.h) */
    uint64_t sample_rng;
    int64_t profile_left;             /* the heap profile: bytes made available until the next sample */
    uint64_t profile_due;             /* bytes the points the last refill passed stand for: the
                                         request in hand is a sample (0: none) */
    uint64_t profile_rng;             /* 0: no gap drawn yet */
    uint64_t profile_step;            /* mean gap now: profile_rate, or more past profile_cost */
    uint64_t profile_spent, profile_since; /* ns spent sampling since profile_since */
    unsigned nquarantined;            /* secure mode: blocks in quarantine[] */
    void *quarantine[SX_QUARANTINE];  /* secure mode: freed blocks waiting (secure/secure.c) */
    bool retain;                      /* keep a spare page per class and a last segment: a thread
                                         runs this heap (orphan heaps give everything back) */
    bool mmap_only;                   /* segments of its own mappings, never of the brk heap: the
                                         profile heap's (heap/profile.c) stay out of its layout */
    _Atomic bool trim_asked;          /* another thread reclaiming memory asks the owner to give
                                         back its kept pages and stashes (core/reclaim.c) */
    /* Held while the heap's spans and segments change (region/span.c): by the owner, and by
     * another thread that gives back this heap's free spans and empty segments (core/reclaim.c).
     * The fast paths never take it: they touch pages, never spans. */
    _Atomic uint32_t span_lock;
    _Atomic int state;
    struct sx_heap *all_next;         /* every heap ever made; heaps are never freed */
    struct sx_heap *orphan_next, *orphan_prev; /* heaps of exited threads waiting for a new owner */
    /* Written by other threads: keep it off the owner's cache lines. */
    _Alignas(64) _Atomic(sx_block *) remote_in;
    char pad_[64 - sizeof(void *)];
} sx_heap;

#endif
