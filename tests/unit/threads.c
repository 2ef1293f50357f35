/*
 * threads.c — many threads on few cores: blocks of every kind allocated, freed and reallocated by
 * threads other than their owners, with every block's contents checked before it goes back.
 *
 *   larson       threads replace random slots of one shared array (atomic exchange of the slot),
 *                so nearly every free and realloc is of a block another thread allocated
 *   xmalloc      producers allocate, consumers (other threads) verify, realloc and free
 *   private      each thread keeps its own blocks with random lifetimes, all sizes and alignments
 *   stats        strata_get_stats and mallinfo2 read other threads' pages while they change
 *
 * At the end every block is freed and every thread joined, and after malloc_trim(0) (which sends
 * the calling thread's pending remote frees and collects the heaps of exited threads) the bytes in
 * use must be back where they started. That last step runs in a forked child with a time limit, so
 * a malloc_trim that never returns fails one test instead of hanging the program.
 */
#include "harness.h"
#include "stress.h"

/* In a worker thread: record the first failure (fail) and return 0. */
#define WORKER_CHECK(cond, ...)                                                      \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fail(__VA_ARGS__);                                                       \
            return 0;                                                                \
        }                                                                            \
    } while (0)

/* Sizes over every kind of block: small and medium classes (16 B .. 128 KiB), large spans
 * (128 KiB .. 4 MiB, or huge while the mmap threshold is low) and blocks always huge (> 4 MiB). */
static const size_band sizes[] = {{450, 0, 256}, {750, 257, 4096}, {900, 4097, 32768},
                                  {970, 32769, 140000}, {997, 140001, (size_t)4 << 20},
                                  {1000, (size_t)4 << 20, (size_t)9 << 20}};
static size_t rnd_size(uint64_t *s) { return rnd_size_from(s, sizes); }

/* Every sampled byte of a fresh calloc block is zero. */
static int zero_ok(void *block, size_t n) {
    unsigned char *p = block;
    size_t head = n <= 4096 ? n : 1024;
    for (size_t i = 0; i < head; i++)
        if (p[i]) return 0;
    if (n > 4096) {
        for (size_t o = 65536; o + 16 <= n - 1024; o += 65536)
            for (size_t i = o; i < o + 16; i++)
                if (p[i]) return 0;
        for (size_t i = n - 1024; i < n; i++)
            if (p[i]) return 0;
    }
    return 1;
}

/* One allocation of n bytes by a randomly chosen call: malloc, calloc, posix_memalign,
 * aligned_alloc, memalign. Checks the result (non-NULL, aligned, usable size, zeroed). */
static void *rnd_alloc(uint64_t *s, size_t n, const char **how) {
    unsigned r = (unsigned)(rnd(s) % 100);
    size_t align = 16;
    void *p = NULL;
    if (r < 70) {
        *how = "malloc";
        p = malloc(n);
    } else if (r < 80) {
        *how = "calloc";
        p = calloc(1, n);
        if (p && !zero_ok(p, n)) {
            fail("calloc(1, %zu) = %p is not zeroed", n, p);
            return p;
        }
    } else {
        /* 32 B .. 64 KiB mostly, sometimes a whole segment's alignment */
        align = (size_t)1 << rnd_range(s, 5, 16);
        if (rnd(s) % 64 == 0) align = (size_t)4 << 20;
        if (r < 88) {
            *how = "posix_memalign";
            int e = posix_memalign(&p, align, n);
            if (e != 0) p = NULL;
        } else if (r < 95) {
            *how = "aligned_alloc";
            p = aligned_alloc(align, n);
        } else {
            *how = "memalign";
            p = memalign(align, n);
        }
    }
    if (!p) {
        fail("%s(%zu) returned NULL", *how, n);
        return NULL;
    }
    if ((uintptr_t)p % align != 0) {
        fail("%s(%zu) = %p is not %zu-aligned", *how, n, p, align);
        return p;
    }
    if (malloc_usable_size(p) < n) {
        fail("%s(%zu): usable size %zu", *how, n, malloc_usable_size(p));
        return p;
    }
    return p;
}

/* ---- larson: a shared array of slots, replaced by random threads ---- */

enum { LARSON_SLOTS = 1024 };
static _Atomic(unsigned char *) slots[LARSON_SLOTS]; /* header blocks (blk_fill) */

static int larson_check(unsigned char *p, unsigned slot, const char *when) {
    blk_hdr h;
    memcpy(&h, p, sizeof h);
    size_t u = malloc_usable_size(p);
    WORKER_CHECK(h.size >= sizeof h && h.size <= u,
                 "slot %u (%s): block %p has a corrupt header (size %u, usable %zu)", slot, when,
                 (void *)p, h.size, u);
    WORKER_CHECK(blk_ok(p), "slot %u (%s): block %p of %u bytes corrupted", slot, when, (void *)p,
                 h.size);
    return 1;
}

/* Put q in slot k; verify and free what was there (allocated by whichever thread put it). */
static int larson_put(unsigned k, unsigned char *q) {
    unsigned char *old = atomic_exchange(&slots[k], q);
    if (old) {
        if (!larson_check(old, k, "replaced")) return 0;
        free(old);
    }
    return 1;
}

typedef struct {
    unsigned ops;
    uint64_t seed;
} larson_arg;

static void *larson_worker(void *argp) {
    larson_arg *a = argp;
    uint64_t s = a->seed;
    for (unsigned i = 0; i < a->ops && !atomic_load_explicit(&g_failed, memory_order_relaxed); i++) {
        unsigned k = (unsigned)(rnd(&s) % LARSON_SLOTS);
        size_t n = rnd_size(&s);
        if (n < sizeof(blk_hdr)) n = sizeof(blk_hdr);
        unsigned seed = (unsigned)rnd(&s);
        unsigned op = (unsigned)(rnd(&s) % 100);
        if (op < 20) {
            /* realloc a block that (most likely) another thread allocated */
            unsigned char *old = atomic_exchange(&slots[k], NULL);
            if (!old) continue;
            if (!larson_check(old, k, "before realloc")) return NULL;
            blk_hdr h;
            memcpy(&h, old, sizeof h);
            unsigned char *q = realloc(old, n);
            if (!q) {
                fail("realloc(%p, %zu) returned NULL", (void *)old, n);
                return NULL;
            }
            if (!blk_prefix_ok(q, h, n)) {
                fail("realloc of slot %u from %u to %zu bytes lost the contents", k, h.size, n);
                return NULL;
            }
            if (malloc_usable_size(q) < n) {
                fail("realloc(%zu): usable size %zu", n, malloc_usable_size(q));
                return NULL;
            }
            blk_fill(q, n, seed);
            if (!larson_put(k, q)) return NULL;
        } else if (op < 25) {
            /* free without replacement: slots come and go */
            unsigned char *old = atomic_exchange(&slots[k], NULL);
            if (old) {
                if (!larson_check(old, k, "freed")) return NULL;
                free(old);
            }
        } else {
            const char *how;
            unsigned char *q = rnd_alloc(&s, n, &how);
            if (!q || atomic_load(&g_failed)) return NULL;
            blk_fill(q, n, seed);
            if (!larson_put(k, q)) return NULL;
        }
    }
    return NULL;
}

/* A thread reading statistics (which walk every segment) while the others work. */
static _Atomic int stats_stop;
static void *stats_reader(void *unused) {
    while (!atomic_load(&stats_stop)) {
        struct strata_stats st;
        strata_get_stats(&st);
        if (st.in_use_bytes > ((size_t)64 << 30) || st.heaps > 10000) {
            fail("implausible stats while threads run: in use %zu, heaps %zu", st.in_use_bytes,
                 st.heaps);
            return NULL;
        }
        struct mallinfo2 mi = mallinfo2();
        th_use((void *)mi.uordblks);
        usleep(2000);
    }
    return NULL;
}

static void larson(unsigned nthreads, unsigned total_ops, uint64_t seed) {
    reset_failures();
    pthread_t t[64], reader;
    larson_arg a[64];
    atomic_store(&stats_stop, 0);
    if (pthread_create(&reader, NULL, stats_reader, NULL) != 0) abort();
    for (unsigned i = 0; i < nthreads; i++) {
        a[i].ops = total_ops / nthreads;
        a[i].seed = seed * 7919 + i * 104729 + 1;
        if (pthread_create(&t[i], NULL, larson_worker, &a[i]) != 0) abort();
    }
    for (unsigned i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
    atomic_store(&stats_stop, 1);
    pthread_join(reader, NULL);
    /* the main thread frees what is left: blocks of threads that have exited */
    for (unsigned k = 0; k < LARSON_SLOTS; k++) {
        unsigned char *p = atomic_exchange(&slots[k], NULL);
        if (p) {
            if (!larson_check(p, k, "left at the end")) break;
            free(p);
        }
    }
}

static void larson_8_threads(void) {
    larson(8, 120000, 1);
    CHECKF(!g_failed, "%s", g_msg);
}
static void larson_16_threads(void) {
    larson(16, 120000, 2);
    CHECKF(!g_failed, "%s", g_msg);
}
static void larson_32_threads(void) {
    larson(32, 120000, 3);
    CHECKF(!g_failed, "%s", g_msg);
}

/* ---- xmalloc: producers allocate, consumers free, through a bounded queue ---- */

enum { QCAP = 256 };
typedef struct {
    void *p;
    size_t n;
    unsigned seed;
} item;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    item q[QCAP];
    unsigned head, count;
    unsigned producers_left;
} Q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}, 0, 0, 0};

static _Atomic unsigned long produced, consumed;

static void q_put(item it) {
    pthread_mutex_lock(&Q.mu);
    while (Q.count == QCAP) pthread_cond_wait(&Q.not_full, &Q.mu);
    Q.q[(Q.head + Q.count) % QCAP] = it;
    Q.count++;
    pthread_cond_signal(&Q.not_empty);
    pthread_mutex_unlock(&Q.mu);
}

static int q_get(item *it) {
    pthread_mutex_lock(&Q.mu);
    while (Q.count == 0 && Q.producers_left > 0) pthread_cond_wait(&Q.not_empty, &Q.mu);
    if (Q.count == 0) {
        pthread_mutex_unlock(&Q.mu);
        return 0;
    }
    *it = Q.q[Q.head];
    Q.head = (Q.head + 1) % QCAP;
    Q.count--;
    pthread_cond_signal(&Q.not_full);
    pthread_mutex_unlock(&Q.mu);
    return 1;
}

typedef struct {
    unsigned items;
    uint64_t seed;
} pc_arg;

static void *producer(void *argp) {
    pc_arg *a = argp;
    uint64_t s = a->seed;
    for (unsigned i = 0; i < a->items; i++) {
        item it;
        it.n = rnd_size(&s);
        if (rnd(&s) % 4 == 0) it.n = rnd_range(&s, 1, 128); /* many small ones */
        it.seed = (unsigned)rnd(&s);
        const char *how;
        it.p = rnd_alloc(&s, it.n, &how);
        if (it.p) pat_fill(it.p, it.n, it.seed);
        else it.n = 0;
        q_put(it); /* even after a failure, so that the consumers' count stays right */
        atomic_fetch_add(&produced, 1);
    }
    pthread_mutex_lock(&Q.mu);
    if (--Q.producers_left == 0) pthread_cond_broadcast(&Q.not_empty);
    pthread_mutex_unlock(&Q.mu);
    return NULL;
}

static void *consumer(void *argp) {
    pc_arg *a = argp;
    uint64_t s = a->seed;
    item it;
    while (q_get(&it)) {
        atomic_fetch_add(&consumed, 1);
        if (!it.p) continue;
        if (!pat_ok(it.p, it.n, it.seed)) {
            fail("consumer: block %p of %zu bytes corrupted", it.p, it.n);
            free(it.p);
            continue;
        }
        if (rnd(&s) % 3 == 0) {
            /* realloc a block the producer allocated, then free it */
            size_t m = rnd_size(&s);
            if (m == 0) m = 1;
            void *q = realloc(it.p, m);
            if (!q) {
                fail("consumer: realloc(%p, %zu) returned NULL", it.p, m);
                free(it.p);
                continue;
            }
            if (!pat_prefix_ok(q, it.n, m, it.seed))
                fail("consumer: realloc from %zu to %zu bytes lost the contents", it.n, m);
            if (malloc_usable_size(q) < m) fail("consumer: realloc(%zu): usable size small", m);
            pat_fill(q, m, it.seed + 1);
            if (!pat_ok(q, m, it.seed + 1)) fail("consumer: realloc'd block %p unwritable", q);
            it.p = q;
        }
        free(it.p);
    }
    return NULL;
}

static void xmalloc(unsigned np, unsigned nc, unsigned items_total, uint64_t seed) {
    reset_failures();
    pthread_t t[64];
    pc_arg a[64];
    atomic_store(&produced, 0);
    atomic_store(&consumed, 0);
    Q.head = Q.count = 0;
    Q.producers_left = np;
    for (unsigned i = 0; i < np + nc; i++) {
        a[i].items = items_total / np;
        a[i].seed = seed * 31337 + i * 7 + 1;
        if (pthread_create(&t[i], NULL, i < np ? producer : consumer, &a[i]) != 0) abort();
    }
    for (unsigned i = 0; i < np + nc; i++) pthread_join(t[i], NULL);
}

static void xmalloc_4_producers_4_consumers(void) {
    xmalloc(4, 4, 60000, 11);
    CHECKF(!g_failed, "%s", g_msg);
    CHECKF(consumed == produced && produced == 60000, "produced %lu, consumed %lu",
           (unsigned long)produced, (unsigned long)consumed);
}
static void xmalloc_12_producers_4_consumers(void) {
    xmalloc(12, 4, 60000, 12);
    CHECKF(!g_failed, "%s", g_msg);
    CHECKF(consumed == produced && produced == 60000, "produced %lu, consumed %lu",
           (unsigned long)produced, (unsigned long)consumed);
}
static void xmalloc_16_producers_16_consumers(void) {
    xmalloc(16, 16, 64000, 13);
    CHECKF(!g_failed, "%s", g_msg);
    CHECKF(consumed == produced && produced == 64000, "produced %lu, consumed %lu",
           (unsigned long)produced, (unsigned long)consumed);
}
static void xmalloc_1_producer_31_consumers(void) {
    xmalloc(1, 31, 30000, 14);
    CHECKF(!g_failed, "%s", g_msg);
    CHECKF(consumed == produced && produced == 30000, "produced %lu, consumed %lu",
           (unsigned long)produced, (unsigned long)consumed);
}

/* ---- private blocks with random lifetimes, every size from 0 and every call ---- */

typedef struct {
    void *p;
    size_t n;
    unsigned seed;
} own_block;

static void *private_worker(void *argp) {
    pc_arg *a = argp;
    uint64_t s = a->seed;
    enum { N = 192 };
    own_block b[N];
    memset(b, 0, sizeof b);
    for (unsigned i = 0; i < a->items && !atomic_load_explicit(&g_failed, memory_order_relaxed); i++) {
        unsigned k = (unsigned)(rnd(&s) % N);
        if (b[k].p) {
            if (!pat_ok(b[k].p, b[k].n, b[k].seed)) {
                fail("private block %p of %zu bytes corrupted", b[k].p, b[k].n);
                return NULL;
            }
            if (rnd(&s) % 4 == 0) {
                size_t m = rnd(&s) % 2 ? b[k].n + rnd_range(&s, 1, b[k].n + 64)
                                       : rnd_range(&s, 1, b[k].n + 1);
                void *q = realloc(b[k].p, m);
                if (!q) {
                    fail("realloc(%zu -> %zu) returned NULL", b[k].n, m);
                    return NULL;
                }
                if (!pat_prefix_ok(q, b[k].n, m, b[k].seed)) {
                    fail("realloc %zu -> %zu lost the contents", b[k].n, m);
                    return NULL;
                }
                b[k].p = q;
                b[k].n = m;
                b[k].seed = (unsigned)rnd(&s);
                pat_fill(q, m, b[k].seed);
                continue;
            }
            free(b[k].p);
            b[k].p = NULL;
        }
        size_t n = rnd(&s) % 8 == 0 ? rnd_range(&s, 0, 16) : rnd_size(&s);
        const char *how;
        void *p = rnd_alloc(&s, n, &how);
        if (!p) return NULL;
        b[k].p = p;
        b[k].n = n;
        b[k].seed = (unsigned)rnd(&s);
        pat_fill(p, n, b[k].seed);
    }
    for (unsigned k = 0; k < N; k++) {
        if (b[k].p && !pat_ok(b[k].p, b[k].n, b[k].seed))
            fail("private block %p of %zu bytes corrupted at the end", b[k].p, b[k].n);
        free(b[k].p);
    }
    return NULL;
}

static void private_random_lifetimes(void) {
    reset_failures();
    static const unsigned counts[] = {8, 16, 32};
    for (unsigned c = 0; c < 3; c++) {
        unsigned nt = counts[c];
        pthread_t t[32];
        pc_arg a[32];
        for (unsigned i = 0; i < nt; i++) {
            a[i].items = 60000 / nt;
            a[i].seed = 0xABCDEF + c * 1000 + i;
            if (pthread_create(&t[i], NULL, private_worker, &a[i]) != 0) abort();
        }
        for (unsigned i = 0; i < nt; i++) pthread_join(t[i], NULL);
        CHECKF(!g_failed, "%u threads: %s", nt, g_msg);
    }
}

/* ---- bytes in use after everything is freed ---- */

static void in_use_returns_to_start(void) {
    struct strata_stats st;
    char why[200];
    CHECKF(trimmed_stats(&st, 5, why, sizeof why) == 0, "%s", why);
    /* Slack: glibc keeps thread descriptors' dtv blocks with its cache of thread stacks. */
    size_t slack = (size_t)1 << 20;
    CHECKF(st.in_use_bytes <= baseline_in_use + slack,
           "in use %zu bytes after all blocks were freed and threads joined (%zu at the start)",
           st.in_use_bytes, baseline_in_use);
    /* heaps are reused: never more than the threads that ran at once (32 + the stats reader +
     * main) and a few borrowed in passing */
    CHECKF(st.heaps <= 34 + 8, "%zu heaps for at most 34 threads at a time", st.heaps);
}

static int argc_;
static char **argv_;
/* `threads NAME...` runs only the named tests (the baseline is always taken). */
static int wanted(const char *name) {
    if (argc_ < 2) return 1;
    for (int i = 1; i < argc_; i++)
        if (!strcmp(argv_[i], name)) return 1;
    return 0;
}
#define T(fn) \
    do {                     \
        if (wanted(#fn)) RUN(fn); \
    } while (0)

int main(int argc, char **argv) {
    argc_ = argc;
    argv_ = argv;
    /* settle the process's own allocations (stdio buffers and the like) before the baseline */
    printf("# threads: stress on %ld cores\n", sysconf(_SC_NPROCESSORS_ONLN));
    fflush(stdout);
    if (measure_baseline() != 0) return 1;

    T(larson_8_threads);
    T(larson_16_threads);
    T(larson_32_threads);
    T(xmalloc_4_producers_4_consumers);
    T(xmalloc_12_producers_4_consumers);
    T(xmalloc_16_producers_16_consumers);
    T(xmalloc_1_producer_31_consumers);
    T(private_random_lifetimes);
    T(in_use_returns_to_start);
    return 0;
}
