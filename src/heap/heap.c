/*
 * heap.c — a thread's heap: which page serves each size class, and what happens when a page runs
 * out of blocks or has all of them back.
 *
 * Each size class has a queue of pages; the first page of the queue is the one malloc uses, and
 * the direct table points every size up to 1 KiB straight at it. When that page runs dry, the slow
 * path swaps in its local free list, or extends it, or moves it to the heap's "full" queue and
 * tries the next page, or carves a new page from a free span. A full page comes back to its
 * class's queue on its first free; a page whose blocks are all back returns its span to the heap,
 * except the last page of a class (see keep_page).
 */
#include <string.h>

#include "heap.h"

sx_heap sx_heap_empty = {.direct = {[0 ... SX_DIRECT_SLOTS - 1] = &sx_page_empty}};

sx_heap *sx_heap_new(void) {
    sx_heap *h = sx_meta_heap();
    if (!h) return NULL;
    for (unsigned d = 0; d < SX_DIRECT_SLOTS; d++) h->direct[d] = &sx_page_empty;
    h->direct_epoch = atomic_load_explicit(&sx_direct_epoch, memory_order_acquire);
    sx_stash_init(h);
    sx_lock(&sx_orphan_lock);
    h->id = (uint32_t)atomic_fetch_add(&sx_count->heaps, 1);
    sx_segcache_heap_made();
    h->all_next = sx_all_heaps;
    sx_all_heaps = h;
    sx_unlock(&sx_orphan_lock);
    return h;
}

/* ---- page queues ---- */

static void queue_push_back(sx_page_queue *q, sx_page *pg) {
    SX_QUEUE_PUSH_BACK(q->first, q->last, pg, next, prev);
}

static void queue_push_front(sx_page_queue *q, sx_page *pg) {
    SX_QUEUE_PUSH_FRONT(q->first, q->last, pg, next, prev);
}

static void queue_remove(sx_page_queue *q, sx_page *pg) {
    SX_QUEUE_REMOVE(q->first, q->last, pg, next, prev);
    pg->next = pg->prev = NULL;
}

/* Point the direct-table slots of a class (up to 1 KiB) at pg: those the fast path may serve
 * (sx_direct_slots); the others keep the empty page, which sends malloc to the slow path. */
void sx_heap_direct_point(sx_heap *h, unsigned bin, sx_page *pg) {
    unsigned lo = sx_bin_direct_lo(bin), hi = sx_bin_direct_hi(bin);
    unsigned top = (unsigned)atomic_load_explicit(&sx_direct_slots, memory_order_relaxed);
    for (unsigned d = lo; d <= hi; d++) h->direct[d] = d < top ? pg : &sx_page_empty;
}

/* The slots the fast path may serve have changed (a threshold set below 1 KiB): point them all
 * again. The heap's own thread does this at once, others at their next slow path. */
void sx_heap_direct_refresh(sx_heap *h) {
    h->direct_epoch = atomic_load_explicit(&sx_direct_epoch, memory_order_acquire);
    for (unsigned bin = 0; bin <= sx_bin_of(SX_DIRECT_MAX); bin++)
        sx_heap_direct_point(h, bin, h->bins[bin].first ? h->bins[bin].first : &sx_page_empty);
}

/* Point the direct-table slots of a class at the first page of its queue. */
void sx_heap_direct_update(sx_heap *h, unsigned bin) {
    if (bin > sx_bin_of(SX_DIRECT_MAX)) return;
    sx_page *pg = h->bins[bin].first ? h->bins[bin].first : &sx_page_empty;
    if (h->direct[sx_bin_direct_hi(bin)] != pg) sx_heap_direct_point(h, bin, pg);
}

static void page_retire(sx_heap *h, sx_page *pg, bool keep_last);

/* A kept page is its class's only page; when another joins the queue, it is an ordinary page again,
 * and goes if it is empty. */
static void unkeep(sx_heap *h, sx_page *pg) {
    pg->flags &= (uint8_t)~SX_PAGE_KEPT;
    sx_page_set_trigger(pg, 0);
    if (pg->used == 0) page_retire(h, pg, true);
}

static void to_full(sx_heap *h, sx_page *pg) {
    queue_remove(&h->bins[pg->bin], pg);
    pg->flags = (uint8_t)((pg->flags & ~SX_PAGE_KEPT) | SX_PAGE_FULL);
    sx_page_set_trigger(pg, (uint16_t)(sx_page_used(pg) - 1)); /* the next free brings it back */
    queue_push_back(&h->full, pg);
}

static void from_full(sx_heap *h, sx_page *pg) {
    SX_ASSERT(pg->flags & SX_PAGE_FULL);
    queue_remove(&h->full, pg);
    pg->flags &= (uint8_t)~SX_PAGE_FULL;
    sx_page_set_trigger(pg, 0);
    sx_page_queue *q = &h->bins[pg->bin];
    queue_push_back(q, pg);
    if (q->first == pg) sx_heap_direct_update(h, pg->bin);
    else if (q->first->flags & SX_PAGE_KEPT) unkeep(h, q->first);
}

/* Is this page all that keeps its segment in use? */
static bool page_holds_segment(const sx_page *pg) {
    const sx_segment *seg = sx_segment_of_desc(pg);
    return seg->used_slices == 1 + seg->reserved_slices + pg->slice_count;
}

/* Could a page of n slices be cut from a free span in another segment than seg? seg has at most
 * two free spans around the page, so looking at three entries of each list is enough. */
static bool room_elsewhere(const sx_heap *h, const sx_segment *seg, size_t n) {
    uint64_t m = h->span_mask & (~(uint64_t)0 << n);
    while (m) {
        unsigned len = (unsigned)__builtin_ctzll(m);
        m &= m - 1;
        int k = 0;
        for (const sx_page *s = h->spans[len]; s && k < 3; s = s->next, k++)
            if (sx_segment_of_desc(s) != seg) return true;
    }
    return false;
}

/* The last page of a class is kept when its blocks are all free, so that a loop of malloc and
 * free does not make and unmake a page. But a page alone in its segment would pin the segment
 * (and, at the top of the brk heap, the break): that one goes, if the next page can be cut from
 * another segment without taking a new one — otherwise it stays, and a loop costs nothing. */
static bool keep_page(const sx_heap *h, const sx_page *pg) {
    const sx_page_queue *q = &h->bins[pg->bin];
    if (!h->retain || q->first != pg || pg->next != NULL || sx_under_pressure()) return false;
    return !page_holds_segment(pg) || !room_elsewhere(h, sx_segment_of_desc(pg), pg->slice_count);
}

static void page_retire(sx_heap *h, sx_page *pg, bool keep_last) {
    sx_page_queue *q = &h->bins[pg->bin];
    sx_heap_lock(h); /* keep_page reads the span bins, which a reclaiming thread may change */
    if (keep_last && keep_page(h, pg)) {
        sx_heap_unlock(h);
        /* until another page joins its class (unkeep), its frees need no slow path */
        pg->flags |= SX_PAGE_KEPT;
        sx_page_set_trigger(pg, SX_TRIGGER_KEPT);
        return;
    }
    bool was_first = q->first == pg;
    queue_remove(q, pg);
    if (was_first) sx_heap_direct_update(h, pg->bin);
    sx_counts_of(h)->pages[pg->bin]--;
    if (pg->flags & SX_PAGE_GUARDED) /* the span may become anything: its guard goes */
        sx_heap_hook.guard(pg, false);
    sx_span_free_locked(h, sx_segment_of_desc(pg), sx_slice_index(pg), pg->slice_count);
    sx_heap_unlock(h);
}

void sx_page_free_slow(sx_heap *h, sx_page *pg) {
    if (pg->kind == SX_SPAN_LARGE) {
        if (pg->used == 0) {
            if (sx_unlikely(pg->flags & SX_PAGE_PROFILED)) sx_profile_forget(pg->start);
            sx_counts_of(h)->pages[SX_BIN_LARGE]--;
            sx_span_free(h, sx_segment_of_desc(pg), sx_slice_index(pg), pg->slice_count);
        }
        return;
    }
    if (pg->flags & SX_PAGE_FULL) from_full(h, pg);
    if (pg->used == 0) page_retire(h, pg, true);
}

/* ---- giving memory back ---- */

/* Give back every page with no block in use, and every segment left empty. A heap nobody runs
 * keeps no page: one that was kept (its frees skip the slow path) is an ordinary page again, so
 * that it goes back when its last block is freed. */
void sx_heap_release_pages(sx_heap *h) {
    for (unsigned bin = 0; bin < SX_BINS; bin++) {
        for (sx_page *pg = h->bins[bin].first, *next; pg; pg = next) {
            next = pg->next;
            if (sx_page_used(pg) == 0) page_retire(h, pg, false);
            else if ((pg->flags & SX_PAGE_KEPT) && !h->retain) unkeep(h, pg);
        }
    }
    sx_span_release_empty(h);
}

size_t sx_heap_give_back(sx_heap *h, size_t pad) {
    sx_stash_flush(h);
    sx_outbox_flush(h);
    sx_remote_collect(h);
    sx_heap_release_pages(h);
    sx_span_trim_top(h, pad);
    return sx_span_purge(h);
}

/* Another thread reclaiming memory asked this heap's owner to give back what it keeps. */
static sx_noinline void trim_asked(sx_heap *h) {
    atomic_store_explicit(&h->trim_asked, false, memory_order_relaxed);
    sx_heap_give_back(h, 0);
}

/* A free span of n slices; the heap takes another segment when it has none that long, after the
 * orphan heaps have had a chance to give back the segments they emptied. */
static sx_page *span_get(sx_heap *h, size_t n) {
    if (n < 1 || n > SX_SPAN_MAX) return NULL;
    for (;;) {
        sx_page *s = sx_span_alloc(h, n);
        if (s) return s;
        sx_orphans_collect(2);
        if (!sx_span_add_segment(h)) return NULL;
    }
}

/* ---- allocation ---- */

/* The first page of a class that has a free block, making one if none has. Pages found full move
 * to the full queue, so each is looked at once per time it fills: no repeated scanning. */
static sx_noinline sx_page *page_for_bin(sx_heap *h, unsigned bin) {
    sx_page_queue *q = &h->bins[bin];
    sx_page *pg = q->first;
    while (pg) {
        sx_page *next = pg->next;
        if (pg->free) break;
        if (pg->local_free) {
            pg->free = pg->local_free;
            pg->local_free = NULL;
            break;
        }
        if (pg->capacity < pg->reserved) {
            sx_page_extend(pg);
            break;
        }
        to_full(h, pg);
        pg = next;
    }
    SX_ASSERT(!pg || (pg->kind == SX_SPAN_PAGE && pg->bin == bin && !(pg->flags & SX_PAGE_FULL)));
    if (!pg) {
        size_t slices = sx_bin_slices(bin);
        /* a guard page (secure mode) takes at most a quarter of the span, whatever the page size */
        if (sx_unlikely(sx_heap_hook.guard != NULL) && slices * SX_SLICE_SIZE < 4 * sx_os_page)
            slices = 4 * sx_os_page / SX_SLICE_SIZE;
        pg = span_get(h, slices);
        if (!pg) return NULL;
        sx_page_init(h, pg, bin, slices);
        sx_page_extend(pg);
        queue_push_front(q, pg);
    }
    sx_heap_direct_update(h, bin);
    return pg;
}

/* What waits for a heap's slow path: blocks other threads sent it, blocks it owes them, a request
 * to give memory back, statistics. */
static sx_noinline void chores(sx_heap *h, unsigned bin) {
    if (sx_unlikely(sx_load_relaxed(&h->trim_asked))) trim_asked(h);
    if (h->direct_epoch != sx_load_relaxed(&sx_direct_epoch)) sx_heap_direct_refresh(h);
    if (sx_load_relaxed(&h->remote_in)) sx_remote_collect(h);
    if (h->out_pending) sx_outbox_flush(h);
    if (sx_unlikely(sx_opt.stats)) sx_stats_sample(bin);
}

/* guard_sample: the blocks a refill makes available count towards the next sampled one. */
static sx_noinline void sample_count(sx_heap *h, const sx_page *pg) {
    h->sample_left -= pg->capacity > pg->used ? (int64_t)(pg->capacity - pg->used) : 1;
}

/* The samplers' counts at a refill of page pg: the sampled guard's blocks, the profile's bytes. */
static inline void refill_count(sx_heap *h, const sx_page *pg) {
    if (sx_unlikely(sx_sampled_every)) sample_count(h, pg);
    if (sx_profile_rate) {
        uint16_t used = sx_page_used(pg);
        sx_profile_add(h, (size_t)(pg->capacity > used ? pg->capacity - used : 1) * pg->block_size);
    }
}

static void *alloc_bin(sx_heap *h, unsigned bin);

void *sx_heap_alloc_bin(sx_heap *h, unsigned bin) {
    void *b = alloc_bin(h, bin);
    if (b) sx_pad_arm(b, bin);
    return b;
}

static void *alloc_bin(sx_heap *h, unsigned bin) {
    SX_ASSERT(h != &sx_heap_empty && atomic_load(&h->state) != SX_HEAP_ORPHAN);
    if (bin < SX_STASH_BINS && h->stash[bin].free) {
        if (sx_unlikely(sx_sampled_every)) h->sample_left--;
        if (sx_profile_rate) sx_profile_add(h, h->stash[bin].block_size);
        sx_counts_of(h)->n_alloc[bin]++;
        return sx_stash_pop(&h->stash[bin]);
    }
    if (sx_unlikely(sx_load_relaxed(&h->remote_in) || h->out_pending | sx_opt.stats | sx_load_relaxed(&h->trim_asked) ||
                    h->direct_epoch != sx_load_relaxed(&sx_direct_epoch)))
        chores(h, bin);
    /* Most often the class's current page has run dry and its own frees wait on its local list. */
    sx_page *pg = h->bins[bin].first;
    if (sx_likely(pg && pg->local_free && !pg->free)) {
        pg->free = pg->local_free;
        pg->local_free = NULL;
        refill_count(h, pg);
    } else if (!pg || !pg->free) {
        pg = page_for_bin(h, bin);
        if (!pg) return NULL;
        refill_count(h, pg);
    }
    sx_counts_of(h)->n_alloc[bin]++;
    sx_block *b = pg->free;
    pg->free = sx_block_pop(pg, b);
    pg->used++;
    sx_block_unfree(b);
    return b;
}

void *sx_heap_alloc_small(sx_heap *h, size_t size) { return sx_heap_alloc_bin(h, sx_bin_for(size)); }

void *sx_heap_alloc_large(sx_heap *h, size_t size, size_t align) {
    if (sx_unlikely(sx_load_relaxed(&h->trim_asked))) trim_asked(h);
    if (sx_load_relaxed(&h->remote_in)) sx_remote_collect(h);
    size_t lead = align > SX_SLICE_SIZE ? align - SX_SLICE_SIZE : 0;
    if (size < sizeof(sx_block)) size = sizeof(sx_block); /* room for the free key */
    size_t n = (size + lead + SX_SLICE_SIZE - 1) >> SX_SLICE_SHIFT;
    SX_ASSERT(n >= 1 && n <= SX_SPAN_MAX);
    sx_page *pg = span_get(h, n);
    if (!pg) return NULL;
    sx_segment *seg = sx_segment_of_desc(pg);
    uint8_t *base = sx_slice_addr(seg, sx_slice_index(pg));
    uint8_t *start = align > SX_SLICE_SIZE ? (uint8_t *)sx_align_up((uintptr_t)base, align) : base;
    sx_page_init_block(pg, SX_SPAN_LARGE, SX_BIN_LARGE, start, (size_t)(base + n * SX_SLICE_SIZE - start));
    if (sx_profile_rate) sx_profile_add(h, pg->block_size);
    sx_counts_of(h)->n_alloc[SX_BIN_LARGE]++;
    sx_counts_of(h)->pages[SX_BIN_LARGE]++;
    if (sx_unlikely(sx_opt.stats)) sx_stats_sample(SX_BIN_LARGE);
    ((sx_block *)start)->key = 0;
    return start;
}

