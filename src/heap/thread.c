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
 * ones sent to it, gives back its empty pages and segments, and joins the pool. Other destructors
 * may still allocate after that: such a thread borrows a pooled heap for each call. Blocks of a
 * pooled heap can still be freed by anyone: the freeing thread delivers them and collects the
 * pooled heap on the spot (remote.c), so memory freed after its thread exited goes back at once;
 * live threads that need a new segment also collect pooled heaps first.
 */
#include "../internal.h"

__thread sx_heap *sx_tls_heap __attribute__((tls_model("initial-exec"))) = &sx_heap_empty;
static __thread bool tls_exited __attribute__((tls_model("initial-exec")));

sx_lock_t sx_pool_lock = SX_LOCK_INIT;
sx_lock_t sx_reclaim_lock = SX_LOCK_INIT;
sx_heap *sx_all_heaps;

/* The pool: heaps of exited threads, doubly linked so that one can be claimed from the middle. */
static sx_heap *pool_first, *pool_last;
static _Atomic size_t pool_count;

static pthread_key_t thread_key;
static _Atomic bool key_ready;

/* A pooled heap is taken by one thread at a time, by compare-and-swap on its state: to adopt it
 * (then it also leaves the pool, under the pool lock) or to collect it where it is (no lock: a
 * free into an exited thread's heap does this). */
static bool claim(sx_heap *h) {
    int pooled = SX_HEAP_POOLED;
    return atomic_compare_exchange_strong(&h->state, &pooled, SX_HEAP_CLAIMED);
}

static void pool_unlink(sx_heap *h) {
    if (h->pool_prev) h->pool_prev->pool_next = h->pool_next;
    else pool_first = h->pool_next;
    if (h->pool_next) h->pool_next->pool_prev = h->pool_prev;
    else pool_last = h->pool_prev;
    h->pool_next = h->pool_prev = NULL;
    atomic_fetch_sub(&pool_count, 1);
}

/* The first pooled heap nobody else holds, out of the pool. */
static sx_heap *pool_pop(void) {
    if (!atomic_load_explicit(&pool_count, memory_order_relaxed)) return NULL;
    sx_lock(&sx_pool_lock);
    sx_heap *h = pool_first;
    while (h && !claim(h)) h = h->pool_next;
    if (h) pool_unlink(h);
    sx_unlock(&sx_pool_lock);
    return h;
}

/* New threads adopt from the front, so heaps that still hold memory go there; collection takes
 * from the front and returns to the back, visiting each pooled heap in turn. */
static void pool_push(sx_heap *h, bool front) {
    h->retain = false;
    sx_lock(&sx_pool_lock);
    atomic_store(&h->state, SX_HEAP_POOLED);
    h->pool_next = h->pool_prev = NULL;
    if (!pool_first) {
        pool_first = pool_last = h;
    } else if (front) {
        h->pool_next = pool_first;
        pool_first->pool_prev = h;
        pool_first = h;
    } else {
        h->pool_prev = pool_last;
        pool_last->pool_next = h;
        pool_last = h;
    }
    atomic_fetch_add(&pool_count, 1);
    sx_unlock(&sx_pool_lock);
}

static sx_heap *heap_claim(void) {
    sx_heap *h = pool_pop();
    if (!h) h = sx_heap_new();
    return h;
}

sx_heap *sx_thread_heap_slow(void) {
    sx_heap *h = sx_tls_heap;
    if (h != &sx_heap_empty) return h;
    if (tls_exited) return NULL;
    sx_process_init();
    h = sx_tls_heap; /* start-up may have allocated, and so made this thread's heap */
    if (h != &sx_heap_empty) return h;
    h = heap_claim();
    if (!h) return NULL;
    atomic_store(&h->state, SX_HEAP_LIVE);
    h->retain = true;
    sx_tls_heap = h;
    sx_announce();
    if (atomic_load_explicit(&key_ready, memory_order_acquire)) pthread_setspecific(thread_key, h);
    return h;
}

void *sx_alloc_exiting(size_t size, size_t align, bool zero) {
    sx_heap *h = heap_claim();
    if (!h) return NULL;
    atomic_store(&h->state, SX_HEAP_CLAIMED);
    sx_tls_heap = h;
    void *p = sx_heap_alloc(h, size, align, zero);
    sx_outbox_flush(h);
    sx_tls_heap = &sx_heap_empty;
    pool_push(h, true);
    return p;
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
    sx_secure_flush(h); /* its quarantine: checked, and given back with the rest */
    sx_foreign_flush(h);
    sx_outbox_flush(h);
    heap_collect(h);
    pool_push(h, true);
    atomic_fetch_add_explicit(&sx_thread_exits, 1, memory_order_relaxed);
}

void sx_pool_collect(size_t max) {
    size_t n = atomic_load_explicit(&pool_count, memory_order_relaxed);
    if (max > n) max = n; /* each pooled heap at most once */
    for (size_t i = 0; i < max; i++) {
        sx_heap *h = pool_pop();
        if (!h) return;
        heap_collect(h);
        pool_push(h, false);
    }
}

size_t sx_pool_give_back(void) {
    size_t bytes = 0, n = atomic_load_explicit(&pool_count, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        sx_heap *h = pool_pop();
        if (!h) break;
        bytes += sx_heap_give_back(h, 0);
        pool_push(h, false);
    }
    return bytes;
}

void sx_pool_collect_heap(sx_heap *h) {
    /* Blocks may arrive while another thread collects: it looks again after handing it back,
     * and so does whoever pushed them (deliver, remote.c) — one of the two sees them. */
    while (atomic_load_explicit(&h->remote_in, memory_order_seq_cst) && claim(h)) {
        sx_remote_collect(h); /* not retaining: whatever empties goes back at once */
        atomic_store_explicit(&h->state, SX_HEAP_POOLED, memory_order_seq_cst);
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
    sx_lock(&sx_reclaim_lock); /* a reclaiming thread may hold any heap's span lock */
    sx_lock(&sx_pool_lock);
    sx_lock(&sx_region_lock);
    sx_lock(&sx_meta_lock);
}

static void fork_parent(void) {
    sx_unlock(&sx_meta_lock);
    sx_unlock(&sx_region_lock);
    sx_unlock(&sx_pool_lock);
    sx_unlock(&sx_reclaim_lock);
}

static void fork_child(void) {
    sx_share_fork_child(); /* the child's own statistics file */
    for (sx_heap *h = sx_all_heaps; h; h = h->all_next) {
        int st = atomic_load(&h->state);
        if (h != sx_tls_heap && (st == SX_HEAP_LIVE || st == SX_HEAP_CLAIMED))
            atomic_store(&h->state, SX_HEAP_ORPHAN);
    }
    fork_parent();
}

void sx_fork_init(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }
