/*
 * churn.c — thousands of short-lived threads, a few alive at a time.
 *
 * Each thread allocates blocks of mixed sizes, frees most of them, frees a block the main thread
 * gave it, and hands some of its own blocks to the main thread, which frees them later (while
 * their heap is an orphan or after a new thread has adopted it). A heap per thread that was
 * never reused, or memory of exited threads that was never reclaimed, shows as a growing resident
 * set and a growing count of heaps; both must stay bounded.
 */
#include <dirent.h>
#include <semaphore.h>

#include "harness.h"
#include "stress.h"

/* mostly small and medium classes, a few large spans and huge blocks */
static const size_band sizes[] = {{500, 0, 256}, {800, 257, 4096}, {960, 4097, 65536},
                                  {990, 65537, 131072}, {1000, 131073, (size_t)1 << 20}};
static size_t rnd_size(uint64_t *s) { return rnd_size_from(s, sizes); }

/* Threads of this process, from /proc/self/task. */
static int task_count(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* ---- one short-lived thread ---- */

typedef struct {
    uint64_t seed;
    void *from_main; /* a block of the main thread's heap, freed by this thread */
    size_t from_main_n;
    sem_t *done;     /* detached threads post it when their work is done */
} churn_arg;

static void churn_work(churn_arg *a) {
    uint64_t s = a->seed;
    enum { N = 40 };
    void *p[N];
    size_t n[N];
    unsigned seed[N];
    if (a->from_main) {
        if (!pat_ok(a->from_main, a->from_main_n, (unsigned)a->from_main_n))
            fail("block from main (%zu bytes) corrupted", a->from_main_n);
        free(a->from_main);
    }
    for (int i = 0; i < N; i++) {
        n[i] = rnd_size(&s);
        seed[i] = (unsigned)rnd(&s);
        unsigned how = (unsigned)(rnd(&s) % 10);
        if (how == 0) {
            p[i] = calloc(1, n[i]);
        } else if (how == 1) {
            size_t align = (size_t)1 << rnd_range(&s, 5, 14);
            if (posix_memalign(&p[i], align, n[i]) != 0) p[i] = NULL;
            if (p[i] && (uintptr_t)p[i] % align) fail("posix_memalign(%zu) misaligned", align);
        } else {
            p[i] = malloc(n[i]);
        }
        if (!p[i]) {
            fail("allocation of %zu bytes failed in a short-lived thread", n[i]);
            return;
        }
        pat_fill(p[i], n[i], seed[i]);
        if (i % 8 == 7) { /* a realloc now and then */
            size_t m = rnd_size(&s);
            void *q = realloc(p[i], m);
            if (!q && m) {
                fail("realloc to %zu failed", m);
                return;
            }
            size_t keep = m < n[i] ? m : n[i];
            if (n[i] > 4096 && keep > 1024) keep = 1024; /* what pat_fill wrote at the start */
            if (!pat_span(q, 0, keep, seed[i], 0)) fail("realloc %zu -> %zu lost contents", n[i], m);
            p[i] = q;
            n[i] = m;
            if (!q) { /* realloc(p, 0) freed it */
                p[i] = malloc(1);
                n[i] = 1;
            }
            pat_fill(p[i], n[i], seed[i]);
        }
    }
    for (int i = 0; i < N; i++) {
        if (!pat_ok(p[i], n[i], seed[i])) fail("block of %zu bytes corrupted in its thread", n[i]);
        if (rnd(&s) % 10 == 0) hand_over(p[i], n[i], seed[i]);
        else free(p[i]);
    }
}

static void *churn_thread(void *argp) {
    churn_arg *a = argp;
    churn_work(a);
    if (a->done) {
        sem_t *done = a->done;
        free(a); /* the argument block belongs to the main thread's heap */
        sem_post(done);
    }
    return NULL;
}

static void *main_block(uint64_t *s, size_t *n) {
    *n = rnd_range(s, 1, 3000);
    void *p = malloc(*n);
    if (p) pat_fill(p, *n, (unsigned)*n);
    return p;
}

/* Run `count` joinable threads, at most `window` at a time. */
static void churn_joined(unsigned count, unsigned window, uint64_t seed) {
    pthread_t t[16];
    churn_arg a[16];
    unsigned live = 0, next = 0; /* t[next % window] is the oldest once the window is full */
    for (unsigned i = 0; i < count && !atomic_load(&g_failed); i++) {
        unsigned k = i % window;
        if (live == window) {
            pthread_join(t[k], NULL);
            live--;
        }
        a[k].seed = seed * 1000003 + i + 1;
        a[k].done = NULL;
        a[k].from_main = main_block(&a[k].seed, &a[k].from_main_n);
        if (pthread_create(&t[k], NULL, churn_thread, &a[k]) != 0) {
            fail("pthread_create failed at thread %u", i);
            break;
        }
        live++;
        next = i + 1;
        if (i % 100 == 99) free_handed(); /* later: their heaps have moved on meanwhile */
    }
    for (unsigned j = 0; j < live; j++) pthread_join(t[(next + j) % window], NULL);
}

static void joined_threads_churn(void) {
    reset_failures();
    enum { WINDOW = 4 };
    churn_joined(300, WINDOW, 1); /* warm up: the heaps that the window needs */
    free_handed();
    CHECKF(!g_failed, "%s", g_msg);
    long rss0 = th_rss_kb(), kept0 = kept_by_design_kb();
    size_t heaps0 = heaps_now();
    churn_joined(5000, WINDOW, 2);
    free_handed();
    CHECKF(!g_failed, "%s", g_msg);
    long rss1 = th_rss_kb(), kept1 = kept_by_design_kb();
    size_t heaps1 = heaps_now();
    printf("# joined: RSS %ld -> %ld KiB, kept for reuse %ld -> %ld KiB, heaps %zu -> %zu\n", rss0,
           rss1, kept0, kept1, heaps0, heaps1);
    /* every thread touched a few hundred KiB; a heap per thread kept would be gigabytes. What
     * the segment cache keeps resident by design (up to its budget) is not a leak. */
    /* (pages larger than 4 KiB, STRATA_TEST_PAGE_SIZE: a partly used page is resident whole) */
    long allowed = (th_page_size() > 4096 ? 32 : 24) * 1024 + (kept1 > kept0 ? kept1 - kept0 : 0);
    if (!th_emulated()) /* TH_EMU_RSS */
        CHECKF(rss1 - rss0 < allowed, "RSS grew by %ld KiB over 5000 threads (from %ld KiB; allowed %ld)",
               rss1 - rss0, rss0, allowed);
    /* a heap per live thread and main; while a thread that needs a segment collects orphaned
     * heaps (one at a time), a starting thread may find no orphan heap and make one more */
    CHECKF(heaps1 <= 2 * WINDOW + 1 + 2, "%zu heaps (%zu after the warm-up) for %d threads at a "
           "time and main", heaps1, heaps0, WINDOW);
}

/* Detached threads: a thread's heap becomes an orphan after the next one may have started. */
static void detached_threads_churn(void) {
    reset_failures();
    enum { WINDOW = 4, COUNT = 3500, WARMUP = 500 };
    static sem_t done;
    sem_init(&done, 0, WINDOW);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    uint64_t s = 77;
    long rss0 = th_rss_kb(), kept0 = kept_by_design_kb();
    const int tasks0 = task_count(); /* 1; or 2 under qemu-user, which has a thread of its own */
    int max_tasks = tasks0;
    for (unsigned i = 0; i < COUNT && !atomic_load(&g_failed); i++) {
        while (sem_wait(&done) != 0) {
        }
        /* threads that finished their work may linger (key destructors, exit): count them */
        int tasks = task_count();
        if (tasks > max_tasks) max_tasks = tasks;
        churn_arg *a = malloc(sizeof *a);
        CHECK(a != NULL);
        a->seed = rnd(&s);
        a->done = &done;
        a->from_main = main_block(&s, &a->from_main_n);
        pthread_t t;
        if (pthread_create(&t, &attr, churn_thread, a) != 0) {
            fail("pthread_create failed at thread %u", i);
            break;
        }
        if (i % 100 == 99) free_handed();
        if (i == WARMUP) {
            rss0 = th_rss_kb();
            kept0 = kept_by_design_kb();
        }
    }
    pthread_attr_destroy(&attr);
    for (int i = 0; i < WINDOW; i++)
        while (sem_wait(&done) != 0) {
        }
    /* wait until the detached threads are really gone (their key destructors have run) */
    for (int i = 0; i < 2000 && task_count() > tasks0; i++) usleep(5000);
    free_handed();
    CHECKF(!g_failed, "%s", g_msg);
    CHECKF(task_count() == tasks0, "%d threads still alive 10 s after their work ended",
           task_count() - tasks0);
    long rss1 = th_rss_kb(), kept1 = kept_by_design_kb();
    size_t heaps = heaps_now();
    printf("# detached: RSS %ld -> %ld KiB, kept for reuse %ld -> %ld KiB, %zu heaps, at most %d "
           "threads alive\n", rss0, rss1, kept0, kept1, heaps, max_tasks);
    /* (pages larger than 4 KiB, STRATA_TEST_PAGE_SIZE: a partly used page is resident whole) */
    long allowed = (th_page_size() > 4096 ? 32 : 24) * 1024 + (kept1 > kept0 ? kept1 - kept0 : 0); /* as for joined threads */
    if (!th_emulated()) /* TH_EMU_RSS */
        CHECKF(rss1 - rss0 < allowed, "RSS grew by %ld KiB over %d detached threads (allowed %ld)",
               rss1 - rss0, COUNT - WARMUP, allowed);
    /* a heap becomes an orphan only when its thread's destructors run, which may be long
     * after the thread posted the semaphore: the bound is the threads seen alive at once */
    CHECKF(heaps <= (size_t)max_tasks + 1 + 6 && heaps <= 64,
           "%zu heaps for detached threads, at most %d alive at a time (main included)", heaps,
           max_tasks + 1);
}

/* Bursts: all threads of a burst hold their heaps at once (a barrier). The first burst needs as
 * many heaps as threads; later bursts of no more threads must reuse them. */
static pthread_barrier_t burst_barrier;

static void *burst_thread(void *argp) {
    churn_arg *a = argp;
    uint64_t s = a->seed;
    size_t n = rnd_size(&s);
    void *p = malloc(n); /* the thread has its heap now */
    if (!p) fail("malloc(%zu) failed", n);
    else pat_fill(p, n, (unsigned)n);
    pthread_barrier_wait(&burst_barrier);
    churn_work(a);
    if (p && !pat_ok(p, n, (unsigned)n)) fail("block of %zu bytes corrupted", n);
    free(p);
    return NULL;
}

static void bursts_reuse_heaps(void) {
    reset_failures();
    enum { BURST = 48 };
    pthread_t t[BURST];
    churn_arg a[BURST];
    size_t after_first = 0;
    for (int round = 0; round < 20; round++) {
        unsigned nt = round == 0 ? BURST : 8 + (unsigned)(round * 7) % (BURST - 7);
        pthread_barrier_init(&burst_barrier, NULL, nt);
        for (unsigned i = 0; i < nt; i++) {
            a[i].seed = (uint64_t)round * 1000 + i + 5;
            a[i].done = NULL;
            a[i].from_main = main_block(&a[i].seed, &a[i].from_main_n);
            if (pthread_create(&t[i], NULL, burst_thread, &a[i]) != 0) abort();
        }
        for (unsigned i = 0; i < nt; i++) pthread_join(t[i], NULL);
        pthread_barrier_destroy(&burst_barrier);
        free_handed();
        CHECKF(!g_failed, "round %d: %s", round, g_msg);
        if (round == 0) after_first = heaps_now();
    }
    size_t h = heaps_now();
    printf("# bursts: %zu heaps after a burst of %d threads, %zu after 19 smaller ones\n",
           after_first, BURST, h);
    CHECKF(after_first >= BURST, "%zu heaps for %d threads alive at once", after_first, BURST);
    CHECKF(h <= after_first + 8, "heaps grew from %zu to %zu over bursts of at most %d threads",
           after_first, h, BURST);
}

static void in_use_returns_to_start(void) {
    struct strata_stats st;
    char why[200];
    CHECKF(trimmed_stats(&st, 5, why, sizeof why) == 0, "%s", why);
    printf("# in use after malloc_trim: %zu bytes (%zu at the start)\n", st.in_use_bytes,
           baseline_in_use);
    size_t slack = (size_t)1 << 20; /* glibc's dtv blocks of cached thread stacks */
    CHECKF(st.in_use_bytes <= baseline_in_use + slack,
           "in use %zu bytes after the churn (%zu before)", st.in_use_bytes, baseline_in_use);
}

int main(int argc, char **argv) {
    (void)argc;
    /* Without the heap profile: with it on, the joined churn's RSS growth came out larger here
     * (5 runs each: 12.8 MiB on average against 5 MiB off, even at profile_rate=64m, where this
     * test takes almost no sample), near the limit; not understood yet (issue 18's note). */
    th_without_profile(argv);
    printf("# churn: short-lived threads on %ld cores\n", sysconf(_SC_NPROCESSORS_ONLN));
    fflush(stdout);
    if (measure_baseline() != 0) return 1;
    RUN(joined_threads_churn);
    RUN(detached_threads_churn);
    RUN(bursts_reuse_heaps);
    RUN(in_use_returns_to_start);
    return 0;
}
