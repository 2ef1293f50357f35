/*
 * cross_thread.c — strata's cross-thread protocols under ThreadSanitizer, which checks them
 * against the C11 memory model rather than the CPU's: a relaxed store that publishes data, a
 * relaxed load followed by reads of what another thread published, a plain field written by one
 * thread and read by another with no happens-before between them, all show as data races here
 * even where x86's strong ordering hides them (arm64 does not). TSan replaces malloc, so this
 * program uses libstrata-api (strata_malloc and the rest beside it), built with -fsanitize=thread
 * (build/tsan, tests/tsan.mk); every block is written by one thread and read by another, so that a
 * block handed out again without a happens-before edge to its last user's accesses is a race too.
 *
 *   remote_frees      producers allocate blocks of every kind, consumers check and free them:
 *                     outboxes, runs, stashes, the owners' remote_in lists, huge blocks
 *   larson            threads swap blocks through a shared array: nearly every free is remote
 *   thread_exit       threads exit with blocks that others free later (orphan heaps collected by
 *                     whoever frees into them), new threads adopt the orphans, threads that only free
 *   stats_and_trim    statistics, malloc_trim (reclaim: other heaps' spans, trim requests) and
 *                     mallopt (the direct table's epoch) while workers allocate and free
 *   explicit_cache    a strata_cache and a strata_pages used from many threads: magazines, the
 *                     depot, threads exiting with full magazines, statistics read meanwhile
 *
 * tests/tsan.mk runs it under a few STRATA_OPTIONS (heap profile at a high rate, stats=1, secure
 * mode); the option string is part of each test's name. A test fails when ThreadSanitizer reported
 * anything during it (the reports are on stderr). The deliberate races — statistics that read
 * counters and page fields their owners write without synchronization — are listed in
 * __tsan_default_suppressions below, each with why.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "harness.h"
#include "stress.h"

/* ---- ThreadSanitizer's side ---- */

static _Atomic int reports; /* ThreadSanitizer reports so far */

/* Called once per report (after the report itself went to stderr). */
void __sanitizer_report_error_summary(const char *summary);
void __sanitizer_report_error_summary(const char *summary) {
    atomic_fetch_add(&reports, 1);
    fprintf(stderr, "%s\n", summary);
}

/* The deliberate races: statistics that read, without stopping anyone, fields and counters that
 * their owners update with plain stores on the fast paths (an atomic read-modify-write there would
 * cost every malloc and free; even a relaxed atomic store keeps the compiler from folding
 * `counter++` into one add). The readers load them with relaxed atomics, a naturally aligned word
 * at a time (never torn on the CPUs strata runs on), the numbers are approximate while threads
 * run and exact once they are quiet, and nothing the allocator decides depends on them. TSan
 * reports a plain store against an atomic load all the same; these are the readers:
 *
 *   walk_segment          (api/stats.c, inlined in sx_snapshot_take) other heaps' page
 *                         descriptors, under the region lock, so segments stay: their kind, class,
 *                         used blocks, sizes (strata_get_stats, mallinfo, malloc_stats)
 *   sx_heap_class_allocs, sx_snapshot_add_heap (support/report.c) every heap's call counters,
 *                         n_direct, n_alloc, n_free, pages (the same, and strata stats PID)
 *   sx_stats_sample       (heap/meta.c, stats=1) the same counters, for the per-class peaks
 *   sx_mags_count         (explicit/magazine.c, strata_cache_get_stats) other threads' magazine
 *                         pointers and counts; magazines are freed only under the registry lock
 *                         the reader holds
 *
 * Nothing else is suppressed: a race anywhere else fails the test. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) {
    return "race:walk_segment\n"
           "race:sx_snapshot_take\n"
           "race:sx_heap_class_allocs\n"
           "race:sx_snapshot_add_heap\n"
           "race:sx_stats_sample\n"
           "race:sx_mags_count\n";
}

/* A report whose earlier access is too old for the default history ("failed to restore the
 * stack") cannot be matched against the suppressions: keep the most history there is. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) { return "history_size=7"; }

/* ---- helpers (stress.h: fail, rnd, the blocks' pattern) ---- */

static char options[256]; /* STRATA_OPTIONS, for the tests' names */

/* Sizes: mostly small classes, some medium and large, a few huge (a mapping of their own). */
static const size_band sizes[] = {{700, 8, 512}, {900, 513, 8704}, {990, 8705, 128000},
                                  {998, 128 * 1024, 640 * 1024}, {1000, 4u << 20, 5u << 20}};

/* A block by malloc, calloc or posix_memalign, its size and seed in its first 8 bytes and the
 * pattern after (stress.h's header blocks): whoever frees it checks what its maker wrote. */
static void *make(uint64_t *s) {
    size_t n = rnd_size_from(s, sizes);
    unsigned how = (unsigned)(rnd(s) % 10);
    void *p = NULL;
    if (how == 0) p = strata_calloc(1, n);
    else if (how == 1 && strata_posix_memalign(&p, 64, n) != 0) p = NULL;
    else if (how > 1) p = strata_malloc(n);
    if (!p) {
        fail("allocation of %zu bytes failed", n);
        return NULL;
    }
    blk_fill(p, n, (unsigned)rnd(s));
    return p;
}

/* stress.h's blk_ok, with strata's malloc_usable_size (glibc's is TSan's here) */
static bool intact(void *b) {
    blk_hdr h;
    memcpy(&h, b, sizeof h);
    return h.size >= sizeof h && h.size <= strata_malloc_usable_size(b) && blk_prefix_ok(b, h, h.size);
}

static void unmake(void *p) {
    if (!p) return;
    if (!intact(p)) fail("block %p changed between its maker and its freer", p);
    strata_free(p);
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg) {
    if (pthread_create(t, NULL, fn, arg) != 0) {
        fail("pthread_create failed");
        *t = 0;
    }
}
static void join(pthread_t t) {
    if (t) pthread_join(t, NULL);
}

/* Run a test, and fail it when ThreadSanitizer reported anything meanwhile. */
static void run(const char *name, void (*fn)(void)) {
    char full[512];
    snprintf(full, sizeof full, "%s%s%s%s", name, options[0] ? " [" : "", options, options[0] ? "]" : "");
    int before = atomic_load(&reports);
    reset_failures();
    th_test = full;
    th_failed = th_skipped = 0;
    fn();
    int n = atomic_load(&reports) - before;
    if (atomic_load(&g_failed)) printf("not ok %s: %s\n", full, g_msg);
    else if (n) printf("not ok %s: %d ThreadSanitizer report%s (on stderr)\n", full, n, n == 1 ? "" : "s");
    else if (th_failed) printf("not ok %s: %s\n", full, th_why);
    else printf("ok %s\n", full);
    fflush(stdout);
}

/* ---- remote frees: producers and consumers ---- */

enum { QCAP = 256 };
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    void *items[QCAP];
    unsigned head, count, producers_left;
} queue;

static queue q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0, 0};

static void q_put(void *p) {
    pthread_mutex_lock(&q.lock);
    while (q.count == QCAP) pthread_cond_wait(&q.cond, &q.lock);
    q.items[(q.head + q.count++) % QCAP] = p;
    pthread_cond_broadcast(&q.cond);
    pthread_mutex_unlock(&q.lock);
}

/* A batch of up to n items, NULL-terminated; 0 when the producers are done and the queue empty. */
static unsigned q_take(void **out, unsigned n) {
    pthread_mutex_lock(&q.lock);
    while (q.count == 0 && q.producers_left) pthread_cond_wait(&q.cond, &q.lock);
    unsigned k = 0;
    while (k < n && q.count) {
        out[k++] = q.items[q.head];
        q.head = (q.head + 1) % QCAP;
        q.count--;
    }
    pthread_cond_broadcast(&q.cond);
    pthread_mutex_unlock(&q.lock);
    return k;
}

enum { ITEMS = 6000 };

static void *producer(void *arg) {
    uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15ull | 1;
    for (unsigned i = 0; i < ITEMS; i++) {
        void *p = make(&s);
        if (p) q_put(p);
    }
    pthread_mutex_lock(&q.lock);
    q.producers_left--;
    pthread_cond_broadcast(&q.cond);
    pthread_mutex_unlock(&q.lock);
    return NULL;
}

static void *consumer(void *arg) {
    uint64_t s = (uintptr_t)arg * 0x2545f4914f6cdd1dull | 1;
    void *batch[16];
    unsigned n;
    while ((n = q_take(batch, 16)) != 0) {
        for (unsigned i = 0; i < n; i++) {
            void *p = batch[i];
            if (rnd(&s) % 8 == 0 && intact(p)) { /* grow it: the block moves or stays */
                blk_hdr h;
                memcpy(&h, p, sizeof h);
                p = strata_realloc(p, h.size + 100);
                if (!p) {
                    fail("realloc failed");
                    continue;
                }
            }
            if (!intact(p)) fail("block %p changed between its maker and its freer", p);
            strata_free(p);
        }
    }
    return NULL;
}

static void remote_frees(void) {
    enum { P = 4, C = 4 };
    pthread_t pt[P], ct[C];
    q.producers_left = P;
    for (unsigned i = 0; i < C; i++) start(&ct[i], consumer, (void *)(uintptr_t)(i + 1));
    for (unsigned i = 0; i < P; i++) start(&pt[i], producer, (void *)(uintptr_t)(i + 100));
    for (unsigned i = 0; i < P; i++) join(pt[i]);
    for (unsigned i = 0; i < C; i++) join(ct[i]);
}

/* ---- larson: blocks swapped through a shared array ---- */

enum { SLOTS = 512, SWAPS = 8000 };
static _Atomic(void *) slots[SLOTS];

static void *larson_worker(void *arg) {
    uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15ull | 1;
    for (unsigned i = 0; i < SWAPS; i++) {
        void *p = make(&s);
        /* acq_rel: the block's contents go with it to whoever takes it out */
        void *old = atomic_exchange_explicit(&slots[rnd(&s) % SLOTS], p, memory_order_acq_rel);
        unmake(old);
    }
    return NULL;
}

static void larson(void) {
    enum { T = 8 };
    pthread_t t[T];
    for (unsigned i = 0; i < T; i++) start(&t[i], larson_worker, (void *)(uintptr_t)(i + 1));
    for (unsigned i = 0; i < T; i++) join(t[i]);
    for (unsigned i = 0; i < SLOTS; i++) unmake(atomic_exchange(&slots[i], NULL));
}

/* ---- thread exit: blocks outlive their heap's thread ---- */

enum { EXITERS = 6, PER = 400, WAVES = 6 };
static void *left[EXITERS][PER];
static _Atomic int left_ready[EXITERS];

/* Allocates, hands its blocks over and exits at once: its heap becomes an orphan heap. */
static void *exiter(void *arg) {
    unsigned k = (unsigned)(uintptr_t)arg;
    uint64_t s = (uint64_t)k * 0x9e3779b97f4a7c15ull + 7;
    for (unsigned i = 0; i < PER; i++) left[k][i] = make(&s);
    atomic_store_explicit(&left_ready[k], 1, memory_order_release);
    return NULL;
}

/* Frees an exiter's blocks while (or after) it exits: frees into an orphan heap collect it. */
static void *late_freer(void *arg) {
    unsigned k = (unsigned)(uintptr_t)arg;
    while (!atomic_load_explicit(&left_ready[k], memory_order_acquire)) sched_yield();
    for (unsigned i = 0; i < PER; i++) unmake(left[k][i]);
    return NULL;
}

/* A new thread: it adopts an orphan heap and allocates from what it holds. */
static void *adopter(void *arg) {
    uint64_t s = (uintptr_t)arg | 1;
    void *mine[64];
    for (unsigned i = 0; i < 64; i++) mine[i] = make(&s);
    for (unsigned i = 0; i < 64; i++) unmake(mine[i]);
    return NULL;
}

static void thread_exit(void) {
    for (unsigned w = 0; w < WAVES; w++) {
        pthread_t e[EXITERS], f[EXITERS], a[EXITERS];
        for (unsigned k = 0; k < EXITERS; k++) atomic_store(&left_ready[k], 0);
        for (unsigned k = 0; k < EXITERS; k++) start(&f[k], late_freer, (void *)(uintptr_t)k);
        for (unsigned k = 0; k < EXITERS; k++) start(&e[k], exiter, (void *)(uintptr_t)k);
        for (unsigned k = 0; k < EXITERS; k++) start(&a[k], adopter, (void *)(uintptr_t)(k + 1000 * w));
        for (unsigned k = 0; k < EXITERS; k++) join(e[k]), join(f[k]), join(a[k]);
    }
}

/* ---- statistics, malloc_trim and mallopt while others work ---- */

static _Atomic int stop_readers;

static void *reader(void *arg) {
    unsigned k = (unsigned)(uintptr_t)arg, round = 0;
    while (!atomic_load(&stop_readers)) {
        struct strata_stats st;
        strata_get_stats(&st);
        struct mallinfo2 mi = strata_mallinfo2();
        if (st.in_use_bytes > ((size_t)1 << 40) || mi.uordblks > ((size_t)1 << 40)) fail("absurd statistics");
        if (k == 0 && round % 4 == 0) strata_malloc_trim(0); /* reclaim: every heap's free spans */
        if (k == 1 && round % 8 == 0) /* the fast path's sizes change: the direct tables' epoch */
            strata_mallopt(M_MMAP_THRESHOLD, round % 16 ? 512 : 128 * 1024);
        round++;
        usleep(1000);
    }
    return NULL;
}

static void stats_and_trim(void) {
    enum { R = 2, T = 4 };
    pthread_t r[R], t[T];
    atomic_store(&stop_readers, 0);
    for (unsigned i = 0; i < R; i++) start(&r[i], reader, (void *)(uintptr_t)i);
    for (unsigned i = 0; i < T; i++) start(&t[i], larson_worker, (void *)(uintptr_t)(i + 50));
    for (unsigned i = 0; i < T; i++) join(t[i]);
    atomic_store(&stop_readers, 1);
    for (unsigned i = 0; i < R; i++) join(r[i]);
    for (unsigned i = 0; i < SLOTS; i++) unmake(atomic_exchange(&slots[i], NULL));
    strata_mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

/* ---- the explicit allocators across threads ---- */

static strata_cache *cache;
enum { OBJ = 72, CSLOTS = 256, COPS = 6000 };
static _Atomic(void *) cslots[CSLOTS];
static _Atomic(void *) pslots[64];

static void *cache_worker(void *arg) {
    uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15ull | 1;
    for (unsigned i = 0; i < COPS; i++) {
        unsigned char *o = strata_cache_alloc(cache);
        if (!o) {
            fail("strata_cache_alloc failed");
            return NULL;
        }
        memset(o, (int)(i & 0xff), OBJ);
        unsigned char *old = atomic_exchange_explicit(&cslots[rnd(&s) % CSLOTS], o, memory_order_acq_rel);
        if (old) {
            for (unsigned j = 1; j < OBJ; j++)
                if (old[j] != old[0]) fail("cache object %p changed", (void *)old);
            strata_cache_free(cache, old);
        }
        if (i % 64 == 0) { /* the buddy allocator's lock, across threads too */
            unsigned order = (unsigned)(rnd(&s) % 3);
            unsigned char *pg = strata_pages_alloc(NULL, order);
            if (pg) {
                pg[0] = (unsigned char)order;
                pg = atomic_exchange_explicit(&pslots[rnd(&s) % 64], pg, memory_order_acq_rel);
                if (pg) strata_pages_free(NULL, pg, pg[0]);
            }
        }
        if (i % 500 == 0) {
            struct strata_cache_stats cs;
            strata_cache_get_stats(cache, &cs);
            if (cs.object_size != OBJ) fail("cache statistics: object size %zu", cs.object_size);
        }
    }
    return NULL; /* its magazines go back at its exit */
}

static void explicit_cache(void) {
    enum { T = 6 };
    cache = strata_cache_create("tsan", OBJ, 0, NULL, NULL);
    CHECK(cache != NULL);
    pthread_t t[T];
    for (unsigned round = 0; round < 2; round++) {
        for (unsigned i = 0; i < T; i++) start(&t[i], cache_worker, (void *)(uintptr_t)(i + 10 * round + 1));
        for (unsigned i = 0; i < T; i++) join(t[i]);
    }
    for (unsigned i = 0; i < CSLOTS; i++) {
        void *o = atomic_exchange(&cslots[i], NULL);
        if (o) strata_cache_free(cache, o);
    }
    for (unsigned i = 0; i < 64; i++) {
        unsigned char *pg = atomic_exchange(&pslots[i], NULL);
        if (pg) strata_pages_free(NULL, pg, pg[0]);
    }
    struct strata_cache_stats cs;
    strata_cache_get_stats(cache, &cs);
    CHECKF(cs.in_use == 0, "%zu objects in use after all were freed", cs.in_use);
    strata_cache_destroy(cache);
}

int main(void) {
    const char *o = getenv("STRATA_OPTIONS");
    snprintf(options, sizeof options, "%s", o ? o : "");
    run("remote_frees", remote_frees);
    run("larson", larson);
    run("thread_exit", thread_exit);
    run("stats_and_trim", stats_and_trim);
    run("explicit_cache", explicit_cache);
    return 0;
}
