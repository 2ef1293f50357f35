/*
 * remote.c — frees of blocks that belong to another thread's heap.
 *
 * Only a heap's owner touches its pages, so a thread that frees another heap's block sends it to
 * that heap instead. It collects such blocks per destination in its outbox (no atomics) and pushes
 * a whole chain onto the destination's `remote_in` list with one compare-and-swap; the owner takes
 * the whole list with one exchange in its malloc slow path. No lock anywhere: producers and
 * consumers of a shared queue never wait for each other.
 *
 * A chain is made of runs: blocks of one page freed one after the other (a consumer freeing what a
 * producer allocated in order makes long ones). The head of a run carries the run's last block and
 * its length in its third and fourth words (blocks of 32 bytes and more; a 16-byte block is a run
 * of its own), so the owner puts a whole run back on its page at once — one link, one subtraction —
 * without walking the blocks, which are cold by then, one by one. The second word of every block
 * keeps its free key all the way (a double free in transit is still caught). Secure mode checks
 * that freed blocks stay zero: there every block is a run of its own.
 *
 * A thread that frees before it ever allocates (a consumer) gets a heap at its first such free,
 * so that its frees are batched like anyone's; only an exiting thread, which can have no heap,
 * sends each block at once.
 *
 * Before any of that, a small block may go on the freeing thread's own stash for its class
 * (a few KiB per class): its next malloc of that size in the slow path takes the block back, still
 * warm in its cache. The owner's page counts a stashed block as in use, so nothing else can hand it
 * out; the stashes go to the owners when the thread exits or calls malloc_trim, and at its next
 * remote free after any thread exits (a stashed block may be all that holds the exited thread's
 * memory). A heap whose thread has exited still receives blocks; whoever frees into it collects it.
 */
#include "heap.h"

/* ---- runs ---- */

typedef struct {
    uintptr_t link, key; /* as in any free block */
    sx_block *tail;      /* the run's last block */
    uintptr_t count;     /* blocks in the run */
} run_head;

/* Do blocks of this page carry a run's tail and length in their head? */
static inline bool runs_of(const sx_page *pg) { return pg->block_size >= sizeof(run_head) && !sx_heap_hook.whole_blocks; }

static inline void run_close(sx_block *head, sx_block *tail, uint32_t n, const sx_page *pg) {
    if (runs_of(pg)) {
        ((run_head *)head)->tail = tail;
        ((run_head *)head)->count = n;
    }
}

static void push_chain(sx_heap *dest, sx_block *head, sx_block *tail) {
    sx_block *old = atomic_load_explicit(&dest->remote_in, memory_order_relaxed);
    do {
        sx_block_link(tail, old);
    } while (!atomic_compare_exchange_weak_explicit(&dest->remote_in, &old, head,
                                                    memory_order_seq_cst, memory_order_relaxed));
}

/* A heap whose thread has exited runs no slow path to take in what it receives: collect it here,
 * so memory freed after its thread is gone goes back at once. */
static void deliver(sx_heap *dest, sx_block *head, sx_block *tail) {
    push_chain(dest, head, tail);
    if (sx_unlikely(atomic_load_explicit(&dest->state, memory_order_seq_cst) == SX_HEAP_ORPHAN))
        sx_orphan_collect(dest);
}

/* One block, sent at once. */
static void deliver_one(sx_heap *dest, const sx_page *pg, sx_block *b) {
    run_close(b, b, 1, pg);
    deliver(dest, b, b);
}

/* ---- the outbox ---- */

static void slot_flush(sx_heap *h, unsigned i) {
    sx_out_slot *s = &h->out[i];
    if (s->count) {
        run_close(s->head, s->run_tail, s->run, s->run_page);
        deliver(s->dest, s->head, s->tail);
    }
    s->head = s->tail = s->run_tail = NULL;
    s->run_page = NULL;
    s->run = s->count = 0;
    h->out_pending &= ~(1u << i);
}

void sx_outbox_flush(sx_heap *h) {
    for (uint32_t m = h->out_pending; m; m &= m - 1) slot_flush(h, (unsigned)__builtin_ctz(m));
}

/* The outbox slot of a destination, from its address (heaps lie SX_HEAP_STRIDE, about 10 KiB,
 * apart): no read of the destination's lines. */
static inline unsigned slot_of(const sx_heap *dest) {
    return (unsigned)((uintptr_t)dest >> 10) % SX_OUT_SLOTS;
}

static sx_noinline void outbox_add(sx_heap *me, sx_heap *dest, const sx_page *pg, sx_block *b) {
    unsigned i = slot_of(dest);
    sx_out_slot *s = &me->out[i];
    if (s->dest != dest) {
        slot_flush(me, i);
        /* Nothing batched for a heap whose thread has exited: its memory goes back now. (Its
         * state is read once per batch: the owner writes the line it shares.) */
        if (sx_unlikely(atomic_load_explicit(&dest->state, memory_order_relaxed) == SX_HEAP_ORPHAN)) {
            s->dest = NULL;
            deliver_one(dest, pg, b);
            return;
        }
        s->dest = dest;
    }
    sx_block *head = s->head;
    sx_block_link(b, head);
    if (head && s->run_page == pg) {
        s->run++; /* the open run goes on */
    } else {
        if (head) run_close(head, s->run_tail, s->run, s->run_page);
        else s->tail = b, me->out_pending |= 1u << i;
        s->run_tail = b;
        s->run_page = pg;
        s->run = 1;
    }
    s->head = b;
    /* a batch of small blocks, or any block bigger than a small class (no memory waits long) */
    if (++s->count >= SX_OUT_BATCH || pg->block_size > SX_SMALL_MAX) slot_flush(me, i);
}

/* ---- stashes ---- */

void sx_stash_init(sx_heap *h) {
    for (unsigned bin = 0; bin < SX_STASH_BINS; bin++) {
        sx_page *f = &h->stash[bin];
        size_t bs = sx_bin_size(bin), cap = SX_STASH_BYTES / bs;
        f->kind = SX_SPAN_STASH;
        f->bin = (uint8_t)bin;
        f->block_size = (uint32_t)bs;
        f->used = 0;
        f->reserved = (uint16_t)(cap < 4 ? 4 : cap > 64 ? 64 : cap); /* the most it keeps */
    }
}

_Atomic unsigned sx_thread_exits;

static bool stash_keep(sx_heap *me, const sx_page *pg, sx_block *b) {
    if (pg->kind != SX_SPAN_PAGE || pg->bin >= SX_STASH_BINS || pg->block_size < SX_STASH_MIN) return false;
    /* A thread exited since: what the lists hold may be all that keeps its heap's pages. */
    unsigned exits = atomic_load_explicit(&sx_thread_exits, memory_order_relaxed);
    if (sx_unlikely(exits != me->stash_exits)) {
        me->stash_exits = exits;
        sx_stash_flush(me);
    }
    sx_page *f = &me->stash[pg->bin];
    if (f->used >= f->reserved) return false;
    sx_block_link(b, f->free);
    f->free = b;
    f->used++;
    return true;
}

/* Everything but a block that continues the open run of its destination's slot. */
static sx_noinline void free_remote_slow(sx_segment *seg, sx_page *pg, sx_block *b) {
    if (seg->kind == SX_SEG_HUGE) {
        if (sx_unlikely(seg->profiled)) {
            seg->profiled = 0;
            sx_profile_forget(b);
        }
        sx_huge_free(seg);
        return;
    }
    sx_heap *dest = atomic_load_explicit(&seg->heap, memory_order_acquire);
    SX_ASSERT(dest != NULL);
    if (sx_unlikely(dest == atomic_load_explicit(&sx_profile_heap, memory_order_relaxed))) { /* never an outbox's destination: always here */
        sx_profile_free(pg, b);
        return;
    }
    sx_heap *me = sx_tls_heap;
    if (sx_unlikely(me == &sx_heap_empty)) {
        me = sx_thread_heap_slow(); /* a consumer's first free; NULL: the thread is exiting */
        if (!me) { /* counted in sx_count, sent at once */
            atomic_fetch_add_explicit(&sx_count->stray_free[pg->bin], 1, memory_order_relaxed);
            deliver_one(dest, pg, b);
            return;
        }
    }
    sx_counts_of(me)->n_free[pg->bin]++;
    if (SX_STASH_KEEP && me->retain && stash_keep(me, pg, b)) return;
    outbox_add(me, dest, pg, b);
}

void sx_free_remote(sx_segment *seg, sx_page *pg, sx_block *b) {
    /* The common case of a consumer freeing what a producer allocated in order: the block goes on
     * the open run of its page in its destination's slot. (A thread without a heap has no slot
     * with a destination; a huge block has no owner heap: both go the long way.) */
    sx_heap *me = sx_tls_heap, *dest = atomic_load_explicit(&seg->heap, memory_order_acquire);
    sx_out_slot *s = &me->out[slot_of(dest)];
    if (sx_likely(s->dest == dest && s->run_page == pg && s->count < SX_OUT_BATCH - 1)) {
        sx_counts_of(me)->n_free[pg->bin]++;
        sx_block_link(b, s->head);
        s->head = b;
        s->run++;
        s->count++;
        return;
    }
    free_remote_slow(seg, pg, b);
}

void sx_stash_flush(sx_heap *h) {
    for (unsigned bin = 0; bin < SX_STASH_BINS; bin++) {
        sx_page *f = &h->stash[bin];
        sx_block *b = f->free;
        if (!b) continue;
        f->free = NULL;
        f->used = 0;
        while (b) {
            sx_block *next = sx_block_next(b);
            sx_segment *seg = sx_segment_of(b);
            sx_page *pg = sx_page_of(seg, b);
            sx_heap *dest = atomic_load_explicit(&seg->heap, memory_order_acquire);
            if (dest == h) sx_page_free_block(h, pg, b);
            else if (atomic_load_explicit(&dest->state, memory_order_relaxed) == SX_HEAP_ORPHAN)
                deliver_one(dest, pg, b);
            else outbox_add(h, dest, pg, b);
            b = next;
        }
    }
}

void sx_remote_collect(sx_heap *h) {
    sx_block *b = atomic_exchange_explicit(&h->remote_in, NULL, memory_order_seq_cst);
    while (b) {
        sx_segment *seg = sx_segment_of(b);
        SX_ASSERT(atomic_load_explicit(&seg->heap, memory_order_relaxed) == h);
        sx_page *pg = sx_page_of(seg, b);
        sx_block *tail = b;
        uint32_t n = 1;
        if (runs_of(pg)) {
            tail = ((run_head *)b)->tail;
            n = (uint32_t)((run_head *)b)->count;
        }
        sx_block *next = sx_block_next(tail);
        sx_page_free_run(h, pg, b, tail, n);
        b = next;
    }
}
