/*
 * remote.c — frees of blocks that belong to another thread's heap.
 *
 * Only a heap's owner touches its pages, so a thread that frees another heap's block sends it to
 * that heap instead. It collects such blocks per destination in its outbox (no atomics) and pushes
 * a whole batch onto the destination's `remote_in` list with one compare-and-swap; the owner takes
 * the whole list with one exchange in its malloc slow path and frees the blocks locally. No lock
 * anywhere: producers and consumers of a shared queue never wait for each other.
 *
 * Before any of that, a small block goes on the freeing thread's own foreign list for its class
 * (a few KiB per class), and the direct table points the class at that list: the thread's next
 * mallocs of that size take these blocks back, still warm in its cache, and nothing crosses to the
 * owner at all. This is what a producer/consumer pair of threads does all day. The owner's page
 * counts a kept block as in use, so nothing else can hand it out; the lists go to the owners when
 * the thread exits or calls malloc_trim, and at its next remote free after any thread exits (a
 * block kept may be all that holds the exited thread's memory).
 *
 * A thread with no heap (one that is exiting) pushes each block directly. A heap whose thread has
 * exited still receives blocks; whoever adopts or collects it frees them.
 */
#include "sizeclass.h"

static void push_chain(sx_heap *dest, sx_block *head, sx_block *tail) {
    sx_block *old = atomic_load_explicit(&dest->remote_in, memory_order_relaxed);
    do {
        sx_block_link(tail, old);
    } while (!atomic_compare_exchange_weak_explicit(&dest->remote_in, &old, head,
                                                    memory_order_release, memory_order_relaxed));
}

/* A heap whose thread has exited runs no slow path to take in what it receives: collect it here,
 * so memory freed after its thread is gone goes back at once. */
static void deliver(sx_heap *dest, sx_block *head, sx_block *tail) {
    push_chain(dest, head, tail);
    if (sx_unlikely(atomic_load_explicit(&dest->state, memory_order_relaxed) == SX_HEAP_POOLED))
        sx_pool_collect_heap(dest);
}

static void slot_flush(sx_heap *h, sx_out_slot *s) {
    if (s->count) {
        deliver(s->dest, s->head, s->tail);
        h->out_pending -= s->count;
    }
    s->head = s->tail = NULL;
    s->count = 0;
    s->bytes = 0;
}

void sx_outbox_flush(sx_heap *h) {
    for (unsigned i = 0; i < SX_OUT_SLOTS; i++) slot_flush(h, &h->out[i]);
}

/* ---- foreign lists ---- */

void sx_foreign_init(sx_heap *h) {
    for (unsigned bin = 0; bin < SX_FOREIGN_BINS; bin++) {
        sx_page *f = &h->foreign[bin];
        size_t bs = sx_bin_size(bin), cap = SX_FOREIGN_BYTES / bs;
        f->kind = SX_SPAN_FOREIGN;
        f->bin = (uint8_t)bin;
        f->block_size = (uint32_t)bs;
        f->used = SX_FOREIGN_BASE;
        f->reserved = (uint16_t)(cap < 4 ? 4 : cap > 64 ? 64 : cap); /* the most it keeps */
    }
}

_Atomic unsigned sx_thread_exits;

static bool foreign_keep(sx_heap *me, const sx_page *pg, sx_block *b) {
    if (pg->kind != SX_SPAN_PAGE || pg->bin >= SX_FOREIGN_BINS) return false;
    /* A thread exited since: what the lists hold may be all that keeps its heap's pages. */
    unsigned exits = atomic_load_explicit(&sx_thread_exits, memory_order_relaxed);
    if (sx_unlikely(exits != me->foreign_exits)) {
        me->foreign_exits = exits;
        sx_foreign_flush(me);
    }
    sx_page *f = &me->foreign[pg->bin];
    if ((uint16_t)(SX_FOREIGN_BASE - f->used) >= f->reserved) return false;
    sx_block_link(b, f->free);
    f->free = b;
    f->used--;
    if (me->direct[sx_bin_direct_hi(pg->bin)] != f) sx_heap_direct_point(me, pg->bin, f);
    return true;
}

/* ---- the outbox ---- */

static void outbox_add(sx_heap *me, sx_heap *dest, const sx_page *pg, sx_block *b) {
    sx_out_slot *s = &me->out[dest->id % SX_OUT_SLOTS];
    if (s->dest != dest) {
        slot_flush(me, s);
        s->dest = dest;
    }
    sx_block_link(b, s->head);
    s->head = b;
    if (!s->tail) s->tail = b;
    s->count++;
    s->bytes += pg->block_size;
    me->out_pending++;
    if (s->count >= SX_OUT_BATCH || s->bytes >= SX_OUT_BYTES) slot_flush(me, s);
}

void sx_free_remote(sx_segment *seg, sx_page *pg, sx_block *b) {
    if (seg->kind == SX_SEG_HUGE) {
        sx_huge_free(seg);
        return;
    }
    sx_heap *dest = atomic_load_explicit(&seg->heap, memory_order_acquire);
    SX_ASSERT(dest != NULL);
    sx_heap *me = sx_tls_heap;
    /* A thread without a heap sends each block at once, and counts it in sx_count. */
    if (me == &sx_heap_empty) {
        atomic_fetch_add_explicit(&sx_count->stray_free[pg->bin], 1, memory_order_relaxed);
        deliver(dest, b, b);
        return;
    }
    sx_counts_of(me)->n_free[pg->bin]++;
    /* Nothing kept or batched for a heap whose thread has exited: its memory goes back now. */
    if (atomic_load_explicit(&dest->state, memory_order_relaxed) == SX_HEAP_POOLED) {
        deliver(dest, b, b);
        return;
    }
    if (me->retain && foreign_keep(me, pg, b)) return;
    outbox_add(me, dest, pg, b);
}

void sx_foreign_flush(sx_heap *h) {
    for (unsigned bin = 0; bin < SX_FOREIGN_BINS; bin++) {
        sx_page *f = &h->foreign[bin];
        sx_block *b = f->free;
        if (!b) continue;
        f->free = NULL;
        f->used = SX_FOREIGN_BASE;
        if (h->direct[sx_bin_direct_hi(bin)] == f) sx_heap_direct_update(h, bin);
        while (b) {
            sx_block *next = sx_block_next(b);
            sx_segment *seg = sx_segment_of(b);
            sx_page *pg = sx_page_of(seg, b);
            sx_heap *dest = atomic_load_explicit(&seg->heap, memory_order_acquire);
            if (dest == h) sx_page_free_block(h, pg, b);
            else if (atomic_load_explicit(&dest->state, memory_order_relaxed) == SX_HEAP_POOLED)
                deliver(dest, b, b);
            else outbox_add(h, dest, pg, b);
            b = next;
        }
    }
}

void sx_remote_collect(sx_heap *h) {
    sx_block *b = atomic_exchange_explicit(&h->remote_in, NULL, memory_order_acquire);
    while (b) {
        sx_block *next = sx_block_next(b);
        sx_segment *seg = sx_segment_of(b);
        SX_ASSERT(atomic_load_explicit(&seg->heap, memory_order_relaxed) == h);
        sx_page_free_block(h, sx_page_of(seg, b), b);
        b = next;
    }
}
