/*
 * heap.h — the heap layer: size classes' pages (page.c), per-thread heaps (heap.c), frees of other
 * threads' blocks (remote.c), thread start, exit and fork, and orphan heaps (thread.c), memory for
 * heaps and their counters (meta.c) and the statistics file (share.c). Below it: region, os,
 * support.
 */
#ifndef STRATA_HEAP_H
#define STRATA_HEAP_H

#include "../region/region.h"
#include "../sizeclass.h"

#pragma GCC visibility push(hidden)

/* ---- free-list links (hardening) ----
 * A free block's first word links it to the next. The pop that takes a block checks that the
 * link stays in the block's segment (lists of one page do), so a linear overflow from the block
 * before, or a write after free, that aims it elsewhere aborts there (sx_block_pop) instead of
 * handing the program memory an attacker chose; the lists that cross segments (blocks other
 * threads freed, on their way home) are checked out of line. In libstrata-secure.so
 * (STRATA_HARDEN=2) the link is also stored xor the block's address and a secret, so that even
 * within a segment an overwrite decodes to an address nobody chose. */
static inline sx_block *sx_block_next(const sx_block *b) {
#if STRATA_HARDEN >= 2
    return (sx_block *)(b->link ^ (uintptr_t)b ^ sx_list_key);
#else
    return (sx_block *)b->link;
#endif
}
static inline void sx_block_link(sx_block *b, const sx_block *next) {
#if STRATA_HARDEN >= 2
    b->link = (uintptr_t)next ^ (uintptr_t)b ^ sx_list_key;
#else
    b->link = (uintptr_t)next;
#endif
}
/* A block handed out is no longer freed: its free key goes (the double-free check). */
static inline void sx_block_unfree(sx_block *b) {
#if STRATA_HARDEN
    b->key = 0;
#else
    (void)b;
#endif
}
sx_block *sx_block_next_far(const sx_page *pg, const sx_block *b, sx_block *next); /* page.c */
/* Does the link from b to next leave b's segment (to be checked out of line)? The end of a list
 * (NULL) does too: one call per list costs less than a test on every pop. */
static inline bool sx_block_far(const sx_block *b, const sx_block *next) {
#if STRATA_HARDEN
    return ((uintptr_t)next ^ (uintptr_t)b) >> SX_SEG_SHIFT;
#else
    (void)b, (void)next;
    return false;
#endif
}
/* b's successor on the list of page pg (a page of blocks, or a list of other heaps' blocks). */
static inline sx_block *sx_block_pop(const sx_page *pg, const sx_block *b) {
    sx_block *next = sx_block_next(b);
    if (sx_unlikely(sx_block_far(b, next))) next = sx_block_next_far(pg, b, next);
    return next;
}

/* ---- the pad (hardening) ----
 * Blocks of the classes past the direct table's (above 1 KiB) end in SX_PAD bytes the program is
 * not given: a request takes the class that holds it and the pad, and malloc_usable_size is the
 * class size less the pad. malloc writes a canary there (the block's address xor a secret, twice,
 * its edge bytes marked: sx_canary) and free checks it (core.h): a write past the block's end,
 * or before the start of the block after it, by 1 byte or more, changes it. 16 bytes cost under
 * 1.4% of those classes, nothing to their alignment (the block starts where it did); the classes
 * up to 1 KiB, where they would cost up to half a block, have no pad. The unchecked build
 * (STRATA_HARDEN=0) has none. */
#if STRATA_HARDEN
#define SX_PAD 16
#else
#define SX_PAD 0
#endif
#define SX_PAD_BIN 32u /* the first padded class: the one after 1 KiB (SX_DIRECT_MAX) */
_Static_assert(SX_STASH_BINS <= SX_PAD_BIN, "stashed blocks are never padded");
static inline size_t sx_bin_pad(unsigned bin) { return bin >= SX_PAD_BIN ? SX_PAD : 0; }
/* The class of a request of `size` bytes, the pad included. */
static inline unsigned sx_bin_for(size_t size) {
    return sx_bin_of(size > SX_DIRECT_MAX ? size + SX_PAD : size);
}
static inline uintptr_t sx_pad_word(const void *b) { return sx_canary(b, 0x6a09e667f3bcc909ull); }
/* Write the canary of block b of class bin (a no-op for classes without a pad, and in secure
 * mode, whose blocks come to it zeroed and which keeps its own canary at their end). */
static inline void sx_pad_arm(void *b, unsigned bin) {
#if STRATA_HARDEN
    if (bin >= SX_PAD_BIN && !sx_opt.secure) {
        uintptr_t *w = (uintptr_t *)((uint8_t *)b + sx_bin_size(bin) - SX_PAD);
        w[0] = w[1] = sx_pad_word(b);
    }
#else
    (void)b, (void)bin;
#endif
}
/* Is the canary of block b of a padded page whole? */
static inline bool sx_pad_intact(const sx_page *pg, const void *b) {
    const uintptr_t *w = (const uintptr_t *)((const uint8_t *)b + pg->block_size - SX_PAD);
    uintptr_t c = sx_pad_word(b);
    return ((w[0] ^ c) | (w[1] ^ c)) == 0;
}
/* What a block of page pg (a page of blocks or a large block) holds for the program. */
static inline size_t sx_page_usable(const sx_page *pg) { return pg->usable; }
/* ---- meta.c: memory for thread heaps and their counters; never freed ---- */
extern sx_lock_t sx_meta_lock;
sx_heap *sx_meta_heap(void); /* a zeroed heap with its counters above it; NULL if none */
size_t sx_meta_region_heaps(void); /* heaps per region */

void sx_stats_sample(unsigned bin); /* stats=1: note the class's live blocks if a new peak */

/* ---- share.c: the statistics file (format: support/statfile.h) ---- */
/* Map the file's bytes of region k over `at` (SX_HEAP_REGION of them), making the file with
 * region 0; false if there is no file (then the memory there stays private). meta lock held. */
bool sx_share_map(void *at, unsigned region);
void sx_share_heap_made(bool in_file); /* meta lock held */
void sx_share_fork_child(void);        /* the child's own file, a copy of its parent's */
/* The heap profile's part of the file, `bytes` long, mapped anywhere; NULL if there is no file. */
void *sx_share_profile_map(size_t bytes);

/* ---- profile.c: the heap profile (format: support/statfile.h) ----
 * Sampled blocks of the size classes are served by the profile heap, which no thread owns (it is
 * used under sx_profile_lock), so that any free of one takes the remote path, where it leaves the
 * profile; a sampled large block stays in its heap, its page flagged (SX_PAGE_PROFILED). */
extern size_t sx_profile_rate; /* mean bytes between samples; 0: off */
/* Set once, by the first sample (release: the heap is whole). Who uses it to allocate has seen the
 * profile made (`made`, acquire); a free compares a block's owner with it (relaxed: a block of the
 * profile heap came to the freeing thread after it was set); reclaim loads it with acquire. */
extern _Atomic(sx_heap *) sx_profile_heap;
extern sx_lock_t sx_profile_lock;
void sx_profile_init(void);
/* The heap's count passed the next point of the sampling: h->profile_due (and the next gap). */
void sx_profile_cross(sx_heap *h);
/* For a due sample: the caller's stack; false if no sample can be taken now. Then
 * sx_profile_record, always: it records block p (size bytes asked, standing for `objects`
 * blocks; NULL: none after all), and what the sample took counts against h's profile_cost (h
 * NULL: against nothing). */
bool sx_profile_unwind(void **frames, int *depth);
void sx_profile_record(sx_heap *h, void *p, size_t size, double objects, const void *const *frames,
                       int depth, uint32_t flags);
void sx_profile_free(sx_page *pg, sx_block *b); /* a block of the profile heap is freed */
void sx_profile_forget(const void *p);         /* a recorded large or huge block is freed */
void sx_profile_moved(const void *from, const void *to, size_t size); /* resized or moved */
void sx_profile_fork_prepare(void); /* the tables' lock, innermost: fork takes it last */
void sx_profile_fork_done(void);
void sx_profile_dump(void); /* profile_dump=PATH, at exit */

/* ---- hooks: what a layer above (secure mode, secure/secure.c) asks of pages and heaps ----
 * Set once at start-up, before any heap exists; all NULL/false otherwise. */
typedef struct sx_heap_hooks {
    /* Build the free list of a page's next n blocks from `first` (and raise its capacity). */
    void (*extend)(sx_page *pg, uint8_t *first, uint32_t n);
    /* A guard page at the end of a page's span (on) or gone again (off); on: false if none. */
    bool (*guard)(const sx_page *pg, bool on);
    /* What the layer above holds of a heap's blocks goes back to it (thread exit, malloc_trim,
     * reclaim: secure mode's quarantine). */
    void (*release)(sx_heap *h);
    /* Freed blocks' bytes past their link and key are the layer above's: no run heads there. */
    bool whole_blocks;
} sx_heap_hooks;
extern sx_heap_hooks sx_heap_hook;

/* ---- page.c, heap.c ---- */
/* The direct pop's out-of-line step, when the link leaves the block's segment (page.c). */
__attribute__((returns_nonnull)) void *sx_direct_pop_far(sx_heap *h, size_t slot, sx_page *pg, sx_block *b,
                                                         sx_block *next);
extern sx_page sx_page_empty;
extern sx_heap sx_heap_empty;
void sx_page_init(sx_heap *h, sx_page *pg, unsigned bin, size_t slices);
void sx_page_extend(sx_page *pg);
void sx_page_set_block_size(sx_page *pg, size_t bsize);
sx_heap *sx_heap_new(void);
void *sx_heap_alloc_small(sx_heap *h, size_t size);
void *sx_heap_alloc_bin(sx_heap *h, unsigned bin);
void *sx_heap_alloc_large(sx_heap *h, size_t size, size_t align);
void sx_page_free_slow(sx_heap *h, sx_page *pg);
/* sx_page_free_block when the last block freed in the page links out of its segment: the end of
 * the list, or a link something overwrote (aborts then). */
void sx_page_free_far(sx_heap *h, sx_page *pg, sx_block *b);
void sx_heap_release_pages(sx_heap *h);
/* Everything the heap keeps but does not use: other heaps' blocks it holds go home, blocks sent
 * to it are taken in, empty pages and segments go back, the brk top is trimmed to pad, free spans
 * are decommitted. The heap's owner (or whoever holds an orphan heap) calls it; bytes decommitted. */
size_t sx_heap_give_back(sx_heap *h, size_t pad);
void sx_heap_direct_point(sx_heap *h, unsigned bin, sx_page *pg); /* direct slots of bin */
void sx_heap_direct_update(sx_heap *h, unsigned bin); /* back to the class's first page */
void sx_heap_direct_refresh(sx_heap *h); /* every slot again: sx_direct_slots changed */

/* A heap's counters, SX_HEAP_REGION above it (meta.c). The empty heap of threads without one has
 * none: nothing counts in it (threads without a heap count in sx_count). */
static inline sx_heap_counts *sx_counts_of(sx_heap *h) {
    SX_ASSERT(h != &sx_heap_empty);
    return (sx_heap_counts *)((uintptr_t)h + SX_HEAP_REGION);
}
static inline const sx_heap_counts *sx_counts_of_const(const sx_heap *h) {
    return (const sx_heap_counts *)((uintptr_t)h + SX_HEAP_REGION);
}

/* Bytes requested (stats=1): a thread without a heap counts them in sx_count instead. */
static inline void sx_count_requested(sx_heap *h, size_t size) {
    if (h == &sx_heap_empty)
        atomic_fetch_add_explicit(&sx_count->stray_requested, size, memory_order_relaxed);
    else sx_counts_of(h)->requested += size;
}

/* The blocks a page has handed out and not had back (its `used` is kept less its trigger, so that
 * free's test is one decrement). */
static inline uint16_t sx_page_used(const sx_page *pg) { return (uint16_t)(pg->used + pg->trigger); }
static inline void sx_page_set_trigger(sx_page *pg, uint16_t trigger) {
    pg->used = (uint16_t)(pg->used + pg->trigger - trigger);
    pg->trigger = trigger;
}

/* Link a block onto its page's local free list; the page is empty, or was full, when its count
 * comes down to 0. */
static inline void sx_page_push_block(sx_heap *h, sx_page *pg, sx_block *b) {
    sx_block_link(b, pg->local_free);
    pg->local_free = b;
    if (sx_unlikely(--pg->used == 0)) sx_page_free_slow(h, pg); /* empty, or was full */
}

/* Put a block back on its page; the owner heap does this, for its own frees and for frees that
 * other threads sent it. */
static inline void sx_page_free_block(sx_heap *h, sx_page *pg, sx_block *b) {
    SX_ASSERT(sx_page_used(pg) > 0 && pg->used != 0 && (pg->kind == SX_SPAN_PAGE || pg->kind == SX_SPAN_LARGE));
#if STRATA_HARDEN
    /* The block freed before this one in the page is the one most likely written after its free
     * (the program's stale pointer to it is the newest): its link is checked now, not only when
     * malloc pops it, which may be never. Out of line as a tail call: free stays a leaf. */
    sx_block *last = pg->local_free;
    if (sx_unlikely(last && sx_block_far(last, sx_block_next(last)))) {
        sx_page_free_far(h, pg, b);
        return;
    }
#endif
    sx_page_push_block(h, pg, b);
}

/* Put n blocks, linked from head to tail, back on their page at once (other threads' frees). */
static inline void sx_page_free_run(sx_heap *h, sx_page *pg, sx_block *head, sx_block *tail, uint32_t n) {
    SX_ASSERT(n >= 1 && sx_page_used(pg) >= n && (pg->kind == SX_SPAN_PAGE || pg->kind == SX_SPAN_LARGE));
    sx_block_link(tail, pg->local_free);
    pg->local_free = head;
    pg->used = (uint16_t)(pg->used - n);
    /* as `--used == 0` does for one (a kept page's never comes down to 0) */
    if (sx_unlikely((int16_t)pg->used <= 0)) sx_page_free_slow(h, pg);
}

/* ---- remote.c: frees of blocks that belong to another thread's heap ---- */
void sx_free_remote(sx_segment *seg, sx_page *pg, sx_block *b);
void sx_remote_collect(sx_heap *h);
void sx_outbox_flush(sx_heap *h);
extern _Atomic unsigned sx_thread_exits; /* heaps orphaned so far: kept blocks may be theirs */
void sx_stash_init(sx_heap *h);
void sx_stash_flush(sx_heap *h); /* send the other heaps' blocks it keeps to their owners */

/* A block from a stash that has one (its `used`: the blocks it holds). */
static inline void *sx_stash_pop(sx_page *f) {
    sx_block *b = f->free;
    f->free = sx_block_pop(f, b);
    f->used--;
    sx_block_unfree(b);
    return b;
}

/* ---- thread.c: thread heaps, thread exit, fork ---- */
extern __thread sx_heap *sx_tls_heap __attribute__((tls_model("initial-exec")));
extern sx_lock_t sx_orphan_lock;
extern sx_lock_t sx_reclaim_lock; /* one thread reclaims at a time (sx_reclaim); fork takes it */
extern sx_heap *sx_all_heaps;
/* The thread's heap, made on first use; NULL if exiting. The process is initialised. */
sx_heap *sx_thread_heap_slow(void);
/* A thread that has exited, or is exiting, borrows an orphan heap for one call and returns it. */
sx_heap *sx_orphan_borrow(void); /* NULL: none, and no memory for one */
void sx_orphan_return(sx_heap *h);
void sx_thread_key_init(void);
void sx_fork_init(void);
void sx_announce(void);  /* verbose=1: say so when strata first serves the process */
bool sx_announced(void);
sx_heap *sx_heaps_first(void);         /* the newest heap; all_next leads to the others */
void sx_orphans_collect(size_t max);       /* collect up to max orphan heaps */
void sx_orphan_collect(sx_heap *h);  /* collect h now, if it is orphaned */
size_t sx_orphans_give_back(void);         /* sx_heap_give_back on every orphan heap; bytes */

#pragma GCC visibility pop

/* Bytes that a refill, a stash or a large block made available count towards the next sample of
 * the heap profile (slow paths only; the caller checks that sx_profile_rate is not 0). */
static inline void sx_profile_add(sx_heap *h, size_t bytes) {
    h->profile_left -= (int64_t)bytes;
    if (sx_unlikely(h->profile_left < 0)) sx_profile_cross(h);
}

/* ---- the pops and the checked free of the fast paths ---- */

/* A block from the page the direct table has for slot (size/16); NULL if that page has none. */
static inline void *sx_direct_pop(sx_heap *h, size_t slot) {
    sx_page *pg = h->direct[slot];
    sx_block *b = pg->free;
    if (sx_unlikely(b == NULL)) return NULL;
    sx_block *next = sx_block_next(b);
    /* the check out of line, as a tail call: malloc stays a leaf function */
    if (sx_unlikely(sx_block_far(b, next))) return sx_direct_pop_far(h, slot, pg, b, next);
    pg->free = next;
    pg->used++;
    sx_counts_of(h)->n_direct[slot]++;
    sx_block_unfree(b);
    return b;
}

/* A block from the current page of class bin (sizes past the direct table); NULL if it has none
 * free. The page goes to *pgp when pgp is given. */
static inline void *sx_bin_pop(sx_heap *h, unsigned bin, sx_page **pgp) {
    sx_page *pg = h->bins[bin].first; /* the empty heap has none */
    sx_block *b = pg ? pg->free : NULL;
    if (sx_unlikely(b == NULL)) return NULL;
    pg->free = sx_block_pop(pg, b);
    pg->used++;
    sx_counts_of(h)->n_alloc[bin]++;
    sx_block_unfree(b);
    sx_pad_arm(b, bin);
    if (pgp) *pgp = pg;
    return b;
}

/* Is p the start of a block of page pg that has been made available? (see page.c) */
static inline bool sx_block_valid(const sx_page *pg, const void *p) {
    /* 32 bits suffice: p and start lie in the same 4 MiB, and a negative offset wraps to a value
     * far above any capacity */
    uint32_t x = (uint32_t)((uintptr_t)p - (uintptr_t)pg->start) * pg->inv;
    uint32_t q = (x >> pg->shift) | (x << ((32 - pg->shift) & 31));
    return q < __atomic_load_n(&pg->capacity, __ATOMIC_RELAXED);
}

/* The last step of free, for a block already checked: its page's local list if the thread owns
 * the page, else the owner's (remote.c). */
static inline __attribute__((always_inline)) void sx_free_block(sx_segment *seg, sx_page *pg, sx_block *b) {
    sx_heap *h = sx_tls_heap;
    if (sx_likely(atomic_load_explicit(&seg->heap, memory_order_relaxed) == h)) {
        sx_counts_of(h)->n_free[pg->bin]++;
        sx_page_free_block(h, pg, b);
    } else
        sx_free_remote(seg, pg, b);
}

#endif
