/*
 * remote.c — frees of blocks that belong to another thread's heap.
 *
 * Only a heap's owner touches its pages, so a thread that frees another heap's block sends it to
 * that heap instead. It collects such blocks per destination in its outbox (no atomics) and pushes
 * a whole batch onto the destination's `remote_in` list with one compare-and-swap; the owner takes
 * the whole list with one exchange in its malloc slow path and frees the blocks locally. No lock
 * anywhere: producers and consumers of a shared queue never wait for each other.
 *
 * A thread with no heap (one that is exiting) pushes each block directly. A heap whose thread has
 * exited still receives blocks; whoever adopts or collects it frees them.
 */
#include "../internal.h"

static void push_chain(sx_heap *dest, sx_block *head, sx_block *tail) {
    sx_block *old = atomic_load_explicit(&dest->remote_in, memory_order_relaxed);
    do {
        tail->next = old;
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

void sx_free_remote(sx_segment *seg, sx_page *pg, sx_block *b) {
    if (seg->kind == SX_SEG_HUGE) {
        sx_huge_free(seg);
        return;
    }
    sx_heap *dest = atomic_load_explicit(&seg->heap, memory_order_acquire);
    SX_ASSERT(dest != NULL);
    sx_heap *me = sx_tls_heap;
    /* No batching for a heap whose thread has exited: its memory goes back now. */
    if (me == &sx_heap_empty ||
        atomic_load_explicit(&dest->state, memory_order_relaxed) == SX_HEAP_POOLED) {
        deliver(dest, b, b);
        return;
    }
    sx_out_slot *s = &me->out[dest->id % SX_OUT_SLOTS];
    if (s->dest != dest) {
        slot_flush(me, s);
        s->dest = dest;
    }
    b->next = s->head;
    s->head = b;
    if (!s->tail) s->tail = b;
    s->count++;
    s->bytes += pg->block_size;
    me->out_pending++;
    if (s->count >= SX_OUT_BATCH || s->bytes >= SX_OUT_BYTES) slot_flush(me, s);
}

void sx_remote_collect(sx_heap *h) {
    sx_block *b = atomic_exchange_explicit(&h->remote_in, NULL, memory_order_acquire);
    while (b) {
        sx_block *next = b->next;
        sx_segment *seg = sx_segment_of(b);
        SX_ASSERT(atomic_load_explicit(&seg->heap, memory_order_relaxed) == h);
        sx_page_free_block(h, sx_page_of(seg, b), b);
        b = next;
    }
}
