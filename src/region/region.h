/*
 * region.h — the region layer: segments (4 MiB, aligned) and where they come from (mmap, or the
 * program break: brkheap.c), the segment map (segmap.c), the cache of empty segments
 * (segment.c), spans of slices inside a heap's segments (span.c), huge blocks with a mapping of
 * their own and the cache of freed ones (huge.c, hugecache.c), and the sampled guard's pool of
 * guarded slots (sampled.c). Below it: os, support.
 */
#ifndef STRATA_REGION_H
#define STRATA_REGION_H

#include "../os/os.h"

#pragma GCC visibility push(hidden)

/* ---- sampled.c: the sampled guard (guard_sample=N), off unless asked for ---- */
extern int sx_sampled_every; /* N; 0: off */
extern uintptr_t sx_sampled_lo, sx_sampled_hi; /* the pool's pages */
extern sx_lock_t sx_sampled_lock;
void sx_sampled_init(void);
int64_t sx_sampled_gap(uint64_t *rng, uintptr_t salt); /* blocks to the next sample: random, mean N */
/* NULL: no slot, too big, or the time budget spent (guard_sample_cost) */
void *sx_sampled_alloc(size_t size, size_t align, bool zero);
static inline bool sx_sampled_owns(const void *p) {
    uintptr_t hi = __atomic_load_n(&sx_sampled_hi, __ATOMIC_ACQUIRE); /* 0 until the pool is whole */
    return (uintptr_t)p < hi && (uintptr_t)p >= sx_sampled_lo;
}
size_t sx_sampled_size(const void *p, const char *fn);
void sx_sampled_free(void *p, const char *fn);

/* ---- segmap.c: which 4 MiB chunks are segment bases ---- */
extern _Atomic uint64_t sx_segmap[SX_SEGMAP_BITS / 64];
void sx_segmap_set(const sx_segment *seg);
void sx_segmap_clear(const sx_segment *seg);
static inline bool sx_segmap_contains(const void *seg) {
    return sx_bitmap_test(sx_segmap, SX_SEGMAP_BITS, (uintptr_t)seg >> SX_SEG_SHIFT);
}
/* The segment of a block. A block is never at offset 0 of its segment (the header is there), but
 * a huge block with an alignment of 4 MiB or more sits exactly one segment after its header. */
static inline sx_segment *sx_segment_of(const void *p) {
    return (sx_segment *)(((uintptr_t)p - 1) & ~(uintptr_t)SX_SEG_MASK);
}
/* The segment whose header holds descriptor d. */
static inline sx_segment *sx_segment_of_desc(const sx_page *d) {
    return (sx_segment *)((uintptr_t)d & ~(uintptr_t)SX_SEG_MASK);
}
/* Slice descriptors record how far back the first slice of their span is, in bytes (one
 * subtraction on free's path). */
static inline void sx_slice_set_back(sx_page *s, size_t slices) {
    s->slice_back = (uint16_t)(slices * sizeof(sx_page));
}
static inline sx_page *sx_slice_first(sx_page *s) {
    return (sx_page *)((uintptr_t)s - s->slice_back);
}
static inline sx_page *sx_page_of(sx_segment *seg, const void *p) {
    /* the slice's index times the descriptor size, in one shift and one mask */
    _Static_assert(sizeof(sx_page) == 1u << SX_PAGE_SHIFT, "SX_PAGE_SHIFT");
    uintptr_t off = (((uintptr_t)p - (uintptr_t)seg) >> (SX_SLICE_SHIFT - SX_PAGE_SHIFT)) &
                    ~(uintptr_t)(sizeof(sx_page) - 1);
    return sx_slice_first((sx_page *)((uintptr_t)seg->slices + off));
}
/* The descriptor of a span that is one block: a large block (SX_SPAN_LARGE, bin SX_BIN_LARGE,
 * block_size its size) or a huge one (SX_SPAN_HUGE, bin log2 of its alignment, block_size 0: its
 * mapping's size says). One block, in use: the block-start test reduces to offset == 0. */
static inline void sx_page_init_block(sx_page *pg, uint8_t kind, uint8_t bin, uint8_t *start, size_t bsize) {
    pg->free = pg->local_free = NULL;
    pg->used = pg->reserved = 1;
    __atomic_store_n(&pg->capacity, 1, __ATOMIC_RELAXED); /* see types.h */
    pg->start = start;
    pg->block_size = pg->usable = (uint32_t)bsize;
    pg->inv = 1;
    pg->shift = 0;
    pg->flags = 0;
    pg->trigger = 0;
    pg->kind = kind;
    pg->bin = bin;
}
static inline size_t sx_slice_index(const sx_page *d) {
    return (size_t)(d - sx_segment_of_desc(d)->slices);
}
static inline uint8_t *sx_slice_addr(sx_segment *seg, size_t idx) {
    return (uint8_t *)seg + idx * SX_SLICE_SIZE;
}

/* ---- segment.c: segments, the segment list and the segment cache ---- */
extern sx_lock_t sx_region_lock;
extern sx_segment *sx_all_segments;
/* brk_ok false: a fresh mapping, never a brk segment (nor one from the cache) */
sx_segment *sx_segment_acquire(bool brk_ok);
void sx_segment_release(sx_segment *seg);
/* Make memory up to `end` of a brk segment usable; false if the break cannot move there. */
bool sx_segment_commit(sx_segment *seg, uintptr_t end);
void sx_segment_list_add(sx_segment *seg);    /* region lock held */
void sx_segment_list_remove(sx_segment *seg); /* region lock held */
size_t sx_segcache_purge(void);           /* release cached segments; returns bytes */
void sx_segcache_unlink(sx_segment *seg);            /* region lock held */
void sx_segcache_push(sx_segment *seg, bool dirty);  /* region lock held */
size_t sx_retain_budget(void); /* freed memory kept resident for reuse (segment.c) */
void sx_segcache_heap_made(void); /* a thread heap was made: the budget grows by a segment */

/* ---- brkheap.c: the [heap] region grown and shrunk with the program break ---- */
sx_segment *sx_brk_segment_new(size_t commit);       /* region lock held */
bool sx_brk_commit(sx_segment *seg, uintptr_t end);  /* region lock held */
bool sx_brk_release(sx_segment *seg);                /* region lock held */
/* The break lowered through the cached (empty) segments at the top; bytes. Region lock held. */
size_t sx_brk_release_cached(void);
/* A cached segment below the top: give back its address space but for its header's first page;
 * map it again in place before use (false: someone else has mapped there). Region lock held. */
bool sx_brk_punch(sx_segment *seg);
bool sx_brk_unpunch(sx_segment *seg);
/* Lower the break to keep `pad` bytes above free_from, the start of the top segment's free tail. */
bool sx_brk_trim(sx_segment *seg, uintptr_t free_from, size_t pad);
bool sx_brk_is_top(const sx_segment *seg);

/* ---- span.c: the heap's span lock (sx_heap.span_lock): a spin lock, uncontended but for a reclaimer ---- */
void sx_heap_lock_wait(struct sx_heap *h);
static inline void sx_heap_lock(struct sx_heap *h) {
    if (sx_unlikely(atomic_exchange_explicit(&h->span_lock, 1, memory_order_acquire)))
        sx_heap_lock_wait(h);
}
static inline bool sx_heap_trylock(struct sx_heap *h) {
    return !atomic_load_explicit(&h->span_lock, memory_order_relaxed) &&
           !atomic_exchange_explicit(&h->span_lock, 1, memory_order_acquire);
}
static inline void sx_heap_unlock(struct sx_heap *h) {
    atomic_store_explicit(&h->span_lock, 0, memory_order_release);
}

/* Free spans of a heap's segments; each call takes the heap's span lock. */
sx_page *sx_span_alloc(struct sx_heap *h, size_t n); /* NULL: no free span that long */
void sx_span_free(struct sx_heap *h, sx_segment *seg, size_t idx, size_t n);
void sx_span_free_locked(struct sx_heap *h, sx_segment *seg, size_t idx, size_t n); /* lock held */
void sx_span_mark(sx_segment *seg, size_t idx, size_t n, uint8_t kind);
bool sx_span_grow(struct sx_heap *h, sx_page *pg, size_t n);
void sx_span_shrink(struct sx_heap *h, sx_page *pg, size_t n);
/* Give the heap one more segment, its slices a free span; false if there is none to have. */
bool sx_span_add_segment(struct sx_heap *h);
void sx_span_release_empty(struct sx_heap *h); /* its empty segments go back */
size_t sx_span_purge(struct sx_heap *h); /* decommit free spans not yet decommitted; bytes */
void sx_span_trim_top(struct sx_heap *h, size_t pad);
/* Give back the empty segments of another thread's heap and decommit its free spans, if its span
 * lock is free (never waits); bytes given back. */
size_t sx_span_reclaim_other(struct sx_heap *h);

/* ---- huge.c: blocks with a mapping of their own ---- */
extern _Atomic size_t sx_mmap_threshold;
extern _Atomic size_t sx_mmap_threshold_low; /* the lowest it has been: no huge block is smaller */
extern _Atomic size_t sx_trim_threshold;
extern _Atomic size_t sx_top_pad;
extern _Atomic bool sx_threshold_fixed;
extern _Atomic size_t sx_direct_slots;  /* direct-table slots that may point at pages */
extern _Atomic unsigned sx_direct_epoch; /* changes with sx_direct_slots */
void sx_thresholds_init(void);
void sx_threshold_set_mmap(size_t v);
void sx_thresholds_share(void); /* after any change: copy them into sx_count */
void *sx_huge_alloc(size_t size, size_t align, bool zero);
void sx_huge_free(sx_segment *seg);
/* Aborts if the bytes right below huge block p (its segment's last, unused descriptor) were
 * written: an underflow. fn names the call. */
void sx_huge_check_below(const void *p, const char *fn);
void *sx_huge_realloc(sx_segment *seg, void *p, size_t size);
size_t sx_huge_usable(sx_segment *seg, const void *p);
/* Was p a huge block that has been freed (and not since mapped by someone else)? */
bool sx_huge_freed(const void *p);

/* What a layer above may ask of huge blocks and the thresholds (secure mode does,
 * secure/secure.c): set once at start-up, before the thresholds and before any block exists; all
 * zero otherwise. */
typedef struct sx_huge_hooks {
    bool slow_path;                    /* every malloc takes the slow path: no direct-table page */
    bool fixed_threshold;              /* the mmap threshold never rises: blocks from it up always
                                          get a mapping of their own (with its guard) */
    size_t guard;                      /* bytes of inaccessible guard after each huge block */
    void *(*reuse)(size_t total);      /* a mapping of `total` bytes held back earlier, or NULL */
    void (*hold)(void *map, size_t size, size_t from); /* keep a freed block's mapping instead of
                                                          unmapping it (from: offset of the block) */
    size_t (*purge)(void);             /* unmap every mapping held; bytes (sx_reclaim) */
    size_t thp_from;                   /* new mappings this big or bigger are advised for
                                          transparent huge pages whatever huge_pages says (0: none) */
} sx_huge_hooks;
extern sx_huge_hooks sx_huge_hook;

/* ---- hugecache.c: freed huge mappings kept for reuse ---- */
bool sx_hugecache_put(sx_segment *seg);        /* false: not kept, the caller unmaps it */
sx_segment *sx_hugecache_take(size_t total);   /* a mapping of exactly `total` bytes, or NULL */
size_t sx_hugecache_purge(void);               /* unmap them all; returns bytes */
bool sx_hugecache_holds(const sx_segment *seg);
/* Unmap a huge mapping; if the kernel refuses, decommit it and unmap it at the next purge. */
void sx_huge_unmap(sx_segment *seg, size_t size);

#pragma GCC visibility pop

#endif
