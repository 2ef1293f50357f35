/*
 * types.h — the data structures of strata, and what owns each of them.
 *
 *   segment  4 MiB aligned region; header = array of slice descriptors (sx_page). Owned by one heap
 *            (thread); only the owner changes its spans and pages. Huge blocks have a segment of
 *            their own with no owner.
 *   page     a span of slices holding blocks of one size class (or one large block). Its descriptor
 *            is the descriptor of its first slice; every slice of a span records how far back the
 *            first one is, so any address finds its page in O(1).
 *   heap     per-thread allocator state: the direct page table used by the malloc fast path, page
 *            queues per size class, free spans by length, the queue of blocks other threads freed.
 *            Its statistics (sx_heap_counts) are apart, at a fixed distance, in shared memory.
 *   block    a free block; its first word links the free list (encoded: sx_block_next), its
 *            second holds the free key (secret ^ address) that identifies a block as already freed.
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
    SX_SPAN_FOREIGN,   /* not a slice: a heap's list of other heaps' blocks it freed (remote.c) */
};

/* sx_page.flags */
#define SX_PAGE_FULL 0x1u /* in the heap's full queue: no free block at last look */
#define SX_PAGE_KEPT 0x2u /* its class's only page, kept when empty: frees skip the slow path */
#define SX_PAGE_GUARDED 0x4u /* secure mode: the span's last OS page is a guard (api/secure.c) */
#define SX_SPAN_CLEAN 0x8u   /* a free span whose memory went back to the kernel (decommitted) */
/* sx_page.trigger of a kept page: its `used` is the count + 0x4000, never 0 nor below it. */
#define SX_TRIGGER_KEPT 0xC000u

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
    uint16_t capacity;       /* blocks made available so far (the page is extended lazily) */
    uint16_t reserved;       /* blocks that fit in the page (at most 4096) */
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
    uint16_t used_slices;           /* slices not in free spans, header and reserved ones included */
    uint16_t reserved_slices;
    size_t size;                    /* bytes mapped from the segment's base */
    _Atomic uintptr_t commit_end;   /* end of usable memory (below base+size only at the brk top) */
    struct sx_segment *next, *prev;         /* owner heap's segments, or the cache */
    struct sx_segment *all_next, *all_prev; /* registry of live segments, for statistics */
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

enum { SX_HEAP_LIVE = 0, SX_HEAP_POOLED, SX_HEAP_CLAIMED, SX_HEAP_ORPHAN };

/* What a heap counts, for statistics: the calls its thread made and the pages it holds. It sits
 * SX_HEAP_REGION bytes above its heap (sx_counts_of), in memory shared with `strata stats PID`
 * (support/meta.c), so counting costs the fast paths no more than a field of the heap would. Frees
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
    sx_page foreign[SX_FOREIGN_BINS]; /* other heaps' blocks this thread freed, kept for reuse */
    unsigned foreign_exits;           /* sx_thread_exits when the lists were last emptied */
    uint32_t out_pending;             /* bit i: out[i] holds blocks */
    unsigned direct_epoch;            /* sx_direct_epoch when the direct table was last pointed */
    uint32_t id;
    uint64_t rng;                     /* secure mode: xorshift state */
    unsigned nquarantined;            /* secure mode: blocks in quarantine[] */
    void *quarantine[SX_QUARANTINE];  /* secure mode: freed blocks waiting (api/secure.c) */
    bool retain;                      /* keep a spare page per class and a last segment: a thread
                                         runs this heap (pooled heaps give everything back) */
    _Atomic bool trim_asked;          /* another thread reclaiming memory asks the owner to give
                                         back its kept pages and kept lists (api/reclaim.c) */
    /* Held while the heap's spans and segments change (region/span.c): by the owner, and by
     * another thread that gives back this heap's free spans and empty segments (api/reclaim.c).
     * The fast paths never take it: they touch pages, never spans. */
    _Atomic uint32_t span_lock;
    _Atomic int state;
    struct sx_heap *all_next;         /* every heap ever made; heaps are never freed */
    struct sx_heap *pool_next, *pool_prev; /* heaps of exited threads waiting for a new owner */
    /* Written by other threads: keep it off the owner's cache lines. */
    _Alignas(64) _Atomic(sx_block *) remote_in;
    char pad_[64 - sizeof(void *)];
} sx_heap;

#endif
