/*
 * span.c — spans: runs of slices inside a heap's segments, split and coalesced.
 *
 * Free spans sit in the heap's span bins, one list per exact length (1..63 slices) with a bit mask
 * of the non-empty lists, so "a span of at least n slices" is one bit scan: no search. Taking a
 * span splits off the rest as a new free span; giving one back merges it with free neighbours on
 * both sides (the slice before it records how far back its own span starts). This is the medium
 * block allocator: pages of small blocks, large blocks and their in-place realloc all come from
 * here. Only the owning heap's thread changes its spans, holding the heap's span lock, which
 * another thread takes (without waiting) only to give back the heap's free memory when the
 * process is short of it (sx_span_reclaim_other). A free span remembers when its memory has been
 * given back (SX_SPAN_CLEAN), so that giving back again costs nothing.
 */
#include <sched.h>

#include "region.h"

void sx_heap_lock_wait(sx_heap *h) {
    do {
        while (atomic_load_explicit(&h->span_lock, memory_order_relaxed)) sched_yield();
    } while (atomic_exchange_explicit(&h->span_lock, 1, memory_order_acquire));
}

void sx_span_mark(sx_segment *seg, size_t idx, size_t n, uint8_t kind) {
    for (size_t i = 0; i < n; i++) sx_slice_set_back(&seg->slices[idx + i], i);
    sx_page *s = &seg->slices[idx];
    s->free = s->local_free = NULL;
    s->used = s->capacity = s->reserved = 0;
    s->block_size = s->usable = 0;
    s->start = sx_slice_addr(seg, idx);
    s->inv = 1;
    s->shift = 0;
    s->flags = 0;
    s->trigger = 0;
    s->kind = kind;
    s->bin = 0;
    s->slice_count = (uint8_t)n;
    s->next = s->prev = NULL;
}

static void bin_insert(sx_heap *h, sx_page *s) {
    unsigned n = s->slice_count;
    SX_ASSERT(s->kind == SX_SPAN_FREE && n >= 1 && n <= SX_SPAN_MAX && s->slice_back == 0);
    SX_LIST_PUSH(h->spans[n], s, next, prev);
    h->span_mask |= (uint64_t)1 << n;
}

static void bin_remove(sx_heap *h, sx_page *s) {
    unsigned n = s->slice_count;
    SX_ASSERT(s->kind == SX_SPAN_FREE && (h->span_mask >> n) & 1);
    SX_LIST_REMOVE(h->spans[n], s, next, prev);
    if (!h->spans[n]) h->span_mask &= ~((uint64_t)1 << n);
    s->next = s->prev = NULL;
}

static void free_span_insert(sx_heap *h, sx_segment *seg, size_t idx, size_t n, bool clean) {
    sx_span_mark(seg, idx, n, SX_SPAN_FREE);
    if (clean) seg->slices[idx].flags = SX_SPAN_CLEAN;
    bin_insert(h, &seg->slices[idx]);
}

/* The break above this segment cannot move any more: set aside the slices past it for good. */
static void reserve_uncommitted(sx_heap *h, sx_segment *seg) {
    uintptr_t ce = atomic_load_explicit(&seg->commit_end, memory_order_acquire);
    size_t c = (ce - (uintptr_t)seg) >> SX_SLICE_SHIFT;
    if (c >= SX_SLICES) return;
    if (c < 1) c = 1;
    sx_page *f = &seg->slices[c];
    f = sx_slice_first(f);
    SX_ASSERT(f->kind == SX_SPAN_FREE);
    size_t fi = sx_slice_index(f);
    bool clean = f->flags & SX_SPAN_CLEAN;
    bin_remove(h, f);
    if (fi < c) free_span_insert(h, seg, fi, c - fi, clean);
    sx_span_mark(seg, c, SX_SLICES - c, SX_SPAN_RESERVED);
    seg->reserved_slices = (uint16_t)(SX_SLICES - c);
    seg->used_slices = (uint16_t)(seg->used_slices + (SX_SLICES - c));
}

/* A span of n slices cut from the heap's free spans; NULL if none is long enough (span lock held). */
static sx_page *span_take(sx_heap *h, size_t n) {
    for (;;) {
        uint64_t m = h->span_mask & (~(uint64_t)0 << n);
        if (!m) return NULL;
        unsigned len = (unsigned)__builtin_ctzll(m);
        sx_page *s = h->spans[len];
        sx_segment *seg = sx_segment_of_desc(s);
        size_t idx = sx_slice_index(s);
        uintptr_t end = (uintptr_t)sx_slice_addr(seg, idx + n);
        if (!sx_segment_commit(seg, end)) {
            reserve_uncommitted(h, seg);
            continue;
        }
        SX_ASSERT(s->slice_count == len && idx + len <= SX_SLICES);
        bool clean = s->flags & SX_SPAN_CLEAN;
        bin_remove(h, s);
        if (len > n) free_span_insert(h, seg, idx + n, len - n, clean);
        seg->used_slices = (uint16_t)(seg->used_slices + n);
        s->slice_count = (uint8_t)n;
        s->flags = 0;
        return s;
    }
}

sx_page *sx_span_alloc(sx_heap *h, size_t n) {
    SX_ASSERT(n >= 1 && n <= SX_SPAN_MAX);
    if (n < 1 || n > SX_SPAN_MAX) return NULL;
    sx_heap_lock(h);
    sx_page *s = span_take(h, n);
    sx_heap_unlock(h);
    return s;
}

static void segment_remove(sx_heap *h, sx_segment *seg) {
    SX_LIST_REMOVE(h->segments, seg, next, prev);
    seg->next = seg->prev = NULL;
    h->nsegments--;
    sx_segment_release(seg);
}

static bool segment_empty(const sx_segment *seg) {
    return seg->used_slices == 1 + seg->reserved_slices;
}

/* After a span at the end of the brk top segment is freed, give the memory past the top pad back
 * to the kernel by lowering the break, if there is more of it than the trim threshold. */
static void maybe_trim(sx_segment *seg, size_t idx) {
    if (seg->source != SX_SRC_BRK || !sx_brk_is_top(seg)) return;
    uintptr_t from = (uintptr_t)sx_slice_addr(seg, idx);
    uintptr_t ce = atomic_load_explicit(&seg->commit_end, memory_order_relaxed);
    size_t thr = atomic_load(&sx_trim_threshold), pad = atomic_load(&sx_top_pad);
    /* unless the program set the thresholds, keep what the retained budget allows as well */
    if (!atomic_load_explicit(&sx_threshold_fixed, memory_order_relaxed) && thr < sx_retain_budget())
        thr = sx_retain_budget();
    /* free > thr + pad, without overflow: a threshold of -1 (SIZE_MAX) means never */
    if (ce > from && ce - from >= thr && ce - from - thr >= pad) sx_brk_trim(seg, from, pad);
}

void sx_span_free_locked(sx_heap *h, sx_segment *seg, size_t idx, size_t n) {
    SX_ASSERT(idx >= 1 && n >= 1 && idx + n <= SX_SLICES && seg->used_slices >= n + 1);
    SX_ASSERT(seg->slices[idx].kind != SX_SPAN_FREE && seg->slices[idx].slice_back == 0);
    SX_ASSERT(atomic_load_explicit(&seg->heap, memory_order_relaxed) == h);
    seg->used_slices = (uint16_t)(seg->used_slices - n);
    if (idx > 1) {
        sx_page *l = &seg->slices[idx - 1];
        l = sx_slice_first(l);
        if (l->kind == SX_SPAN_FREE) {
            bin_remove(h, l);
            size_t li = sx_slice_index(l);
            n += idx - li;
            idx = li;
        }
    }
    if (idx + n < SX_SLICES) {
        sx_page *r = &seg->slices[idx + n];
        if (r->kind == SX_SPAN_FREE) {
            bin_remove(h, r);
            n += r->slice_count;
        }
    }
    free_span_insert(h, seg, idx, n, false); /* the freed part is resident */
    /* An empty segment goes back to the region layer, but a running heap keeps its last one so
     * that a loop of malloc and free of one big block does not map and unmap a segment each time
     * (unless the process is near its memory limit). */
    if (segment_empty(seg) && (h->nsegments > 1 || !h->retain || sx_under_pressure())) {
        bin_remove(h, &seg->slices[idx]);
        segment_remove(h, seg);
        return;
    }
    if (idx + n == SX_SLICES) maybe_trim(seg, idx);
}

void sx_span_free(sx_heap *h, sx_segment *seg, size_t idx, size_t n) {
    sx_heap_lock(h);
    sx_span_free_locked(h, seg, idx, n);
    sx_heap_unlock(h);
}

static bool span_grow(sx_heap *h, sx_page *pg, size_t n) {
    sx_segment *seg = sx_segment_of_desc(pg);
    size_t idx = sx_slice_index(pg), have = pg->slice_count;
    if (n <= have) return true;
    if (idx + have >= SX_SLICES) return false;
    sx_page *r = &seg->slices[idx + have];
    size_t rlen = r->slice_count, extra = n - have;
    if (r->kind != SX_SPAN_FREE || rlen < extra) return false;
    if (!sx_segment_commit(seg, (uintptr_t)sx_slice_addr(seg, idx + n))) return false;
    bool clean = r->flags & SX_SPAN_CLEAN;
    bin_remove(h, r);
    if (rlen > extra) free_span_insert(h, seg, idx + n, rlen - extra, clean);
    for (size_t i = have; i < n; i++) sx_slice_set_back(&seg->slices[idx + i], i);
    pg->slice_count = (uint8_t)n;
    seg->used_slices = (uint16_t)(seg->used_slices + extra);
    return true;
}

bool sx_span_grow(sx_heap *h, sx_page *pg, size_t n) {
    sx_heap_lock(h);
    bool ok = span_grow(h, pg, n);
    sx_heap_unlock(h);
    return ok;
}

void sx_span_shrink(sx_heap *h, sx_page *pg, size_t n) {
    size_t have = pg->slice_count;
    if (n >= have) return;
    sx_heap_lock(h);
    pg->slice_count = (uint8_t)n;
    sx_segment *seg = sx_segment_of_desc(pg);
    size_t tail = sx_slice_index(pg) + n;
    sx_span_mark(seg, tail, have - n, SX_SPAN_LARGE); /* make the tail a span of its own */
    sx_span_free_locked(h, seg, tail, have - n);
    sx_heap_unlock(h);
}

bool sx_span_add_segment(sx_heap *h) {
    sx_segment *seg = sx_segment_acquire(!h->mmap_only);
    if (!seg) return false;
    sx_heap_lock(h);
    atomic_store_explicit(&seg->heap, h, memory_order_release);
    SX_LIST_PUSH(h->segments, seg, next, prev);
    h->nsegments++;
    size_t c = SX_SLICES;
    if (seg->source == SX_SRC_BRK && !sx_brk_is_top(seg)) {
        uintptr_t ce = atomic_load_explicit(&seg->commit_end, memory_order_acquire);
        c = (ce - (uintptr_t)seg) >> SX_SLICE_SHIFT;
    }
    if (c > 1) free_span_insert(h, seg, 1, c - 1, false);
    if (c < SX_SLICES) {
        sx_span_mark(seg, c, SX_SLICES - c, SX_SPAN_RESERVED);
        seg->reserved_slices = (uint16_t)(SX_SLICES - c);
        seg->used_slices = (uint16_t)(seg->used_slices + (SX_SLICES - c));
    }
    sx_heap_unlock(h);
    return true;
}

/* Release every empty segment of the heap; bytes released (span lock held). */
static size_t release_empty(sx_heap *h) {
    size_t bytes = 0;
    for (sx_segment *seg = h->segments, *next; seg; seg = next) {
        next = seg->next;
        if (!segment_empty(seg)) continue;
        sx_page *s = &seg->slices[1];
        if (s->kind == SX_SPAN_FREE) bin_remove(h, s);
        bytes += SX_SEG_SIZE;
        segment_remove(h, seg);
    }
    return bytes;
}

void sx_span_release_empty(sx_heap *h) {
    sx_heap_lock(h);
    release_empty(h);
    sx_heap_unlock(h);
}

/* Decommit the free spans whose memory has not gone back yet (span lock held). */
static size_t purge(sx_heap *h) {
    size_t purged = 0;
    for (uint64_t m = h->span_mask; m; m &= m - 1) {
        unsigned n = (unsigned)__builtin_ctzll(m);
        for (sx_page *s = h->spans[n]; s; s = s->next) {
            if (s->flags & SX_SPAN_CLEAN) continue;
            sx_segment *seg = sx_segment_of_desc(s);
            uintptr_t from = (uintptr_t)s->start, to = from + n * SX_SLICE_SIZE;
            uintptr_t ce = atomic_load_explicit(&seg->commit_end, memory_order_relaxed);
            if (to > ce) to = ce;
            if (to > from) {
                sx_os_decommit((void *)from, to - from);
                purged += to - from;
            }
            s->flags |= SX_SPAN_CLEAN;
        }
    }
    return purged;
}

size_t sx_span_purge(sx_heap *h) {
    sx_heap_lock(h);
    size_t purged = purge(h);
    sx_heap_unlock(h);
    return purged;
}

/* Lower the break to the free tail of the heap's segment at the top of the brk heap, if it has
 * one (span lock held). The free tail is looked for among the free spans, in the span bins, and
 * not through the segment's last slice descriptor: a span the owner has just taken (span_take)
 * is out of the bins but its descriptor still says SX_SPAN_FREE until the owner makes it a page
 * or a large block, after the lock (sx_page_init), so that a reclaiming thread holding the lock
 * meanwhile (sx_span_reclaim_other) would have lowered the break under it — and it would have
 * read a field the owner writes without the lock. The bins change only under the lock. */
static void trim_top(sx_heap *h, size_t pad) {
    for (uint64_t m = h->span_mask; m; m &= m - 1) {
        unsigned n = (unsigned)__builtin_ctzll(m);
        for (sx_page *s = h->spans[n]; s; s = s->next) {
            sx_segment *seg = sx_segment_of_desc(s);
            if (sx_slice_index(s) + n != SX_SLICES || seg->source != SX_SRC_BRK || !sx_brk_is_top(seg))
                continue;
            sx_brk_trim(seg, (uintptr_t)s->start, pad);
            return; /* one segment is the top */
        }
    }
}

void sx_span_trim_top(sx_heap *h, size_t pad) {
    sx_heap_lock(h);
    trim_top(h, pad);
    sx_heap_unlock(h);
}

size_t sx_span_reclaim_other(sx_heap *h) {
    if (!sx_heap_trylock(h)) return 0;
    size_t bytes = release_empty(h);
    trim_top(h, 0);
    bytes += purge(h);
    sx_heap_unlock(h);
    return bytes;
}
