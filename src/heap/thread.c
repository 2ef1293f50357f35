/*
 * thread.c — a heap per thread: made on a thread's first allocation, handed back when it exits,
 * and what fork does to them.
 *
 * The thread-local heap pointer starts at sx_heap_empty, whose direct table points at a page with
 * no blocks, so the first malloc of every thread falls into the slow path, which gives the thread a
 * heap: one left by an exited thread if there is one (its pages and cached memory are reused as
 * they are), a new one otherwise. The TLS variable uses the initial-exec model so that reading it
 * never calls __tls_get_addr, which may allocate.
 *
 * At thread exit (a pthread key destructor) the heap sends its pending remote frees, takes in the
 * ones sent to it, gives back its empty pages and segments, and becomes an orphan heap. Other destructors
 * may still allocate after that: such a thread borrows an orphan heap for each call. Blocks of a
 * orphan heap can still be freed by anyone: the freeing thread delivers them and collects the
 * orphan heap on the spot (remote.c), so memory freed after its thread exited goes back at once;
 * live threads that need a new segment also collect orphan heaps first.
 */
#include <unistd.h>

#include "heap.h"
#include "strata.h"

__thread sx_heap *sx_tls_heap __attribute__((tls_model("initial-exec"))) = &sx_heap_empty;
static __thread bool tls_exited __attribute__((tls_model("initial-exec")));

sx_lock_t sx_orphan_lock = SX_LOCK_INIT;
sx_lock_t sx_reclaim_lock = SX_LOCK_INIT;
sx_heap *sx_all_heaps;

/* The orphan heaps: heaps of exited threads, doubly linked so that one can be claimed from the middle. */
static sx_heap *orphans_first, *orphans_last;
static _Atomic size_t orphans_count;

static pthread_key_t thread_key;
static _Atomic bool key_ready;

/* An orphan heap is taken by one thread at a time, by compare-and-swap on its state: to adopt it
 * (then it also leaves the orphans, under the orphan lock) or to collect it where it is (no lock: a
 * free into an exited thread's heap does this). */
static bool claim(sx_heap *h) {
    int orphaned = SX_HEAP_ORPHAN;
    return atomic_compare_exchange_strong(&h->state, &orphaned, SX_HEAP_CLAIMED);
}

static void orphans_unlink(sx_heap *h) {
    SX_QUEUE_REMOVE(orphans_first, orphans_last, h, orphan_next, orphan_prev);
    h->orphan_next = h->orphan_prev = NULL;
    atomic_fetch_sub(&orphans_count, 1);
}

/* The first orphan heap nobody else holds, out of the orphans. */
static sx_heap *orphans_pop(void) {
    if (!atomic_load_explicit(&orphans_count, memory_order_relaxed)) return NULL;
    sx_lock(&sx_orphan_lock);
    sx_heap *h = orphans_first;
    while (h && !claim(h)) h = h->orphan_next;
    if (h) orphans_unlink(h);
    sx_unlock(&sx_orphan_lock);
    return h;
}

/* New threads adopt from the front, so heaps that still hold memory go there; collection takes
 * from the front and returns to the back, visiting each orphan heap in turn.
 *
 * Blocks sent to the heap while it was not an orphan (its thread exiting, a borrower, a collector
 * holding it) found it LIVE or CLAIMED, and their senders left them for whoever holds it; that
 * holder took in what had arrived before it let go, but blocks pushed since then would wait for
 * the next delivery or adoption. So, as in sx_orphan_collect: the state is stored (seq_cst), then
 * remote_in looked at (seq_cst); a sender pushes (seq_cst), then looks at the state (deliver,
 * remote.c). In the single order of seq_cst operations one of the two looks comes after the other
 * side's store: the sender sees ORPHAN and collects, or this look sees the blocks. */
static void orphans_push(sx_heap *h, bool front) {
    h->retain = false;
    sx_lock(&sx_orphan_lock);
    atomic_store(&h->state, SX_HEAP_ORPHAN);
    if (front) SX_QUEUE_PUSH_FRONT(orphans_first, orphans_last, h, orphan_next, orphan_prev);
    else SX_QUEUE_PUSH_BACK(orphans_first, orphans_last, h, orphan_next, orphan_prev);
    atomic_fetch_add(&orphans_count, 1);
    sx_unlock(&sx_orphan_lock);
    sx_orphan_collect(h);
}

static sx_heap *heap_claim(void) {
    sx_heap *h = orphans_pop();
    if (!h) h = sx_heap_new();
    return h;
}

/* verbose=1: say so when strata first serves the process (its first thread heap is made). */
static _Atomic bool announced;

void sx_announce(void) {
    if (sx_opt.verbose && !atomic_exchange(&announced, true))
        sx_message("version %s serving pid %d (brk %s, mmap threshold %zu)", STRATA_VERSION_STRING,
                   (int)getpid(), sx_opt.brk ? "on" : "off", sx_opt.mmap_threshold);
}

bool sx_announced(void) { return atomic_load(&announced); }

sx_heap *sx_thread_heap_slow(void) {
    sx_heap *h = sx_tls_heap;
    if (h != &sx_heap_empty) return h;
    if (tls_exited) return NULL;
    h = heap_claim();
    if (!h) return NULL;
    atomic_store(&h->state, SX_HEAP_LIVE);
    h->retain = true;
    sx_tls_heap = h;
    sx_announce();
    if (atomic_load_explicit(&key_ready, memory_order_acquire)) pthread_setspecific(thread_key, h);
    return h;
}

sx_heap *sx_orphan_borrow(void) {
    sx_heap *h = heap_claim();
    if (!h) return NULL;
    atomic_store(&h->state, SX_HEAP_CLAIMED);
    sx_tls_heap = h;
    return h;
}

void sx_orphan_return(sx_heap *h) {
    sx_outbox_flush(h);
    sx_tls_heap = &sx_heap_empty;
    orphans_push(h, true);
}

/* Take in what other threads freed to a heap nobody runs, and give back what that empties. */
static void heap_collect(sx_heap *h) {
    sx_remote_collect(h);
    sx_heap_release_pages(h);
}

static void thread_exit(void *arg) {
    sx_heap *h = arg;
    if (h == NULL || h == &sx_heap_empty) return;
    sx_tls_heap = &sx_heap_empty;
    tls_exited = true;
    h->retain = false; /* nothing kept for a thread that is gone */
    if (sx_heap_hook.release) sx_heap_hook.release(h); /* secure mode: its quarantine, checked */
    sx_stash_flush(h);
    sx_outbox_flush(h);
    heap_collect(h);
    orphans_push(h, true);
    atomic_fetch_add_explicit(&sx_thread_exits, 1, memory_order_relaxed);
}

/* The newest heap; all_next leads to the others. */
sx_heap *sx_heaps_first(void) {
    sx_lock(&sx_orphan_lock);
    sx_heap *h = sx_all_heaps; /* heaps are never freed, and linked in before they are used */
    sx_unlock(&sx_orphan_lock);
    return h;
}

void sx_orphans_collect(size_t max) {
    size_t n = atomic_load_explicit(&orphans_count, memory_order_relaxed);
    if (max > n) max = n; /* each orphan heap at most once */
    for (size_t i = 0; i < max; i++) {
        sx_heap *h = orphans_pop();
        if (!h) return;
        heap_collect(h);
        orphans_push(h, false);
    }
}

size_t sx_orphans_give_back(void) {
    size_t bytes = 0, n = atomic_load_explicit(&orphans_count, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        sx_heap *h = orphans_pop();
        if (!h) break;
        bytes += sx_heap_give_back(h, 0);
        orphans_push(h, false);
    }
    return bytes;
}

void sx_orphan_collect(sx_heap *h) {
    /* Blocks may arrive while another thread collects: it looks again after handing it back,
     * and so does whoever pushed them (deliver, remote.c) — one of the two sees them. */
    while (atomic_load_explicit(&h->remote_in, memory_order_seq_cst) && claim(h)) {
        sx_remote_collect(h); /* not retaining: whatever empties goes back at once */
        atomic_store_explicit(&h->state, SX_HEAP_ORPHAN, memory_order_seq_cst);
    }
}

void sx_thread_key_init(void) {
    if (pthread_key_create(&thread_key, thread_exit) != 0) {
        sx_message("pthread_key_create failed: memory of exiting threads will not be reused");
        return;
    }
    atomic_store_explicit(&key_ready, true, memory_order_release);
    /* The thread that ran the initialisation may have made its heap before the key existed. */
    if (sx_tls_heap != &sx_heap_empty) pthread_setspecific(thread_key, sx_tls_heap);
}

/* fork: take every allocator lock so that the child starts with consistent shared state. In the
 * child only the forking thread exists; the heaps of the other threads may have been halfway
 * through an update when fork copied them, so they are set aside for good. */
static void fork_prepare(void) {
    sx_lock(&sx_profile_lock); /* first: the profile heap's allocations take the others */
    sx_lock(&sx_sampled_lock);
    sx_lock(&sx_reclaim_lock); /* a reclaiming thread may hold any heap's span lock */
    sx_lock(&sx_orphan_lock);
    sx_lock(&sx_region_lock);
    sx_lock(&sx_meta_lock);
    sx_profile_fork_prepare();
}

static void fork_parent(void) {
    sx_profile_fork_done();
    sx_unlock(&sx_meta_lock);
    sx_unlock(&sx_region_lock);
    sx_unlock(&sx_orphan_lock);
    sx_unlock(&sx_reclaim_lock);
    sx_unlock(&sx_sampled_lock);
    sx_unlock(&sx_profile_lock);
}

static void fork_child(void) {
    sx_share_fork_child(); /* the child's own statistics file */
    for (sx_heap *h = sx_all_heaps; h; h = h->all_next) {
        int st = atomic_load(&h->state);
        if (h != sx_tls_heap && h != atomic_load_explicit(&sx_profile_heap, memory_order_relaxed) && (st == SX_HEAP_LIVE || st == SX_HEAP_CLAIMED))
            atomic_store(&h->state, SX_HEAP_ABANDONED);
    }
    fork_parent();
}

void sx_fork_init(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }
