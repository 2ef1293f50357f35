/*
 * explicit.c — the explicit allocators against plain malloc/free (`make bench-explicit`).
 *
 * Linked with libstrata-api, so that in one process malloc is glibc's and strata_malloc is
 * strata's. Each workload does a fixed amount of work with each allocator; the runs are
 * interleaved (every workload under every allocator, then again) and the table gives the median
 * rate in millions of operations per second (an allocation and its free count as one operation),
 * and the explicit allocator's rate over each plain one.
 *
 *   pool   200 rounds of 50 000 allocations of 8-256 bytes, each round freed at once: a pool reset
 *          against one free per block
 *   cache  64-byte objects, batches of 1000 allocated then freed, 1 and 2 threads on one cache
 *   pages  blocks of 1 to 16 pages (order 0-4), a live set of 512 replaced at random: the buddy
 *          allocator against posix_memalign (aligned to the block size, as buddy blocks are) and
 *          against mmap/munmap of each block
 *
 * build/bench/explicit [--runs N]   (default 5)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "strata.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *volatile sink;
static unsigned rnd(unsigned *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* ---- pool: many small blocks, freed all at once ---- */
enum { ROUNDS = 200, PER_ROUND = 50000 };
static void *blocks[PER_ROUND];

static double pool_run(int kind) { /* 0 strata_pool, 1 glibc malloc, 2 strata_malloc */
    unsigned s = 1;
    strata_pool *p = kind == 0 ? strata_pool_create(NULL) : NULL;
    double t = now();
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER_ROUND; i++) {
            size_t n = 8 + rnd(&s) % 249;
            char *b = kind == 0 ? strata_pool_alloc(p, n) : kind == 1 ? malloc(n) : strata_malloc(n);
            b[0] = (char)i;
            blocks[i] = b;
        }
        if (kind == 0) strata_pool_reset(p);
        else
            for (int i = 0; i < PER_ROUND; i++) kind == 1 ? free(blocks[i]) : strata_free(blocks[i]);
    }
    t = now() - t;
    strata_pool_destroy(p);
    return (double)ROUNDS * PER_ROUND / t / 1e6;
}

/* ---- cache: fixed-size objects ---- */
enum { BATCH = 1000, BATCHES = 4000, OBJ = 64 };
static strata_cache *cache;
static int cache_kind;

static void *cache_worker(void *arg) {
    void *objs[BATCH];
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < BATCH; i++) {
            char *o = cache_kind == 0 ? strata_cache_alloc(cache) : cache_kind == 1 ? malloc(OBJ) : strata_malloc(OBJ);
            o[0] = (char)i;
            objs[i] = o;
        }
        for (int i = BATCH - 1; i >= 0; i--) {
            if (cache_kind == 0) strata_cache_free(cache, objs[i]);
            else if (cache_kind == 1) free(objs[i]);
            else strata_free(objs[i]);
        }
    }
    return arg;
}

static double cache_run(int kind, int threads) {
    cache_kind = kind;
    pthread_t t[2];
    double t0 = now();
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, cache_worker, NULL);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    return (double)threads * BATCHES * BATCH / (now() - t0) / 1e6;
}

/* ---- pages: blocks of 2^order pages ---- */
enum { LIVE = 512, PAGE_OPS = 400000, MAX_ORDER_USED = 4 };

static double pages_run(int kind) { /* 0 strata_pages, 1 posix_memalign, 2 mmap */
    static void *live[LIVE];
    static unsigned ord[LIVE];
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    strata_pages *pa = kind == 0 ? strata_pages_create(10, STRATA_PAGES_KEEP) : NULL;
    unsigned s = 7;
    double t = now();
    for (int i = 0; i < PAGE_OPS + LIVE; i++) {
        int k = i < LIVE ? i : (int)(rnd(&s) % LIVE);
        if (i >= LIVE) {
            if (kind == 0) strata_pages_free(pa, live[k], ord[k]);
            else if (kind == 1) free(live[k]);
            else munmap(live[k], page << ord[k]);
        }
        ord[k] = rnd(&s) % (MAX_ORDER_USED + 1);
        size_t size = page << ord[k];
        void *b = NULL;
        if (kind == 0) b = strata_pages_alloc(pa, ord[k]);
        else if (kind == 1) {
            if (posix_memalign(&b, size, size)) b = NULL;
        } else {
            b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (b == MAP_FAILED) b = NULL;
        }
        if (!b) abort();
        *(char *)b = 1; /* one page touched: the allocator's cost, not the memory's */
        live[k] = b;
    }
    t = now() - t;
    for (int k = 0; k < LIVE; k++) {
        if (kind == 0) strata_pages_free(pa, live[k], ord[k]);
        else if (kind == 1) free(live[k]);
        else munmap(live[k], page << ord[k]);
    }
    if (pa) strata_pages_destroy(pa);
    return (double)PAGE_OPS / t / 1e6;
}

/* ---- driver ---- */
enum { W_POOL, W_CACHE1, W_CACHE2, W_PAGES, WORKLOADS, KINDS = 3, MAX_RUNS = 51 };
static const char *const names[WORKLOADS] = {"pool: 50k small blocks, bulk free",
                                             "cache: 64 B objects, 1 thread",
                                             "cache: 64 B objects, 2 threads",
                                             "pages: orders 0-4, 512 live"};
static const char *const kind_names[WORKLOADS][KINDS] = {
    {"strata_pool", "glibc malloc/free", "strata_malloc/free"},
    {"strata_cache", "glibc malloc/free", "strata_malloc/free"},
    {"strata_cache", "glibc malloc/free", "strata_malloc/free"},
    {"strata_pages", "glibc posix_memalign", "mmap/munmap"},
};
static double results[WORKLOADS][KINDS][MAX_RUNS];

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    double tmp[MAX_RUNS];
    memcpy(tmp, v, (size_t)n * sizeof *v);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

int main(int argc, char **argv) {
    int runs = 5;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--runs N]\n", argv[0]);
            return 2;
        }
    if (runs < 1 || runs > MAX_RUNS) runs = 5;
    cache = strata_cache_create("bench", OBJ, 0, NULL, NULL);
    for (int r = 0; r < runs; r++)
        for (int w = 0; w < WORKLOADS; w++)
            for (int k = 0; k < KINDS; k++) {
                int kk = (k + r) % KINDS; /* a different order every run */
                double v = w == W_POOL ? pool_run(kk) : w == W_CACHE1 ? cache_run(kk, 1)
                           : w == W_CACHE2 ? cache_run(kk, 2) : pages_run(kk);
                results[w][kk][r] = v;
            }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("%d runs each, interleaved; medians. %ld CPUs. Millions of operations per second "
           "(higher is better); the last columns: the explicit allocator's rate over each other.\n\n",
           runs, cpus);
    printf("| workload | explicit | Mops/s | plain | Mops/s | other | Mops/s | × plain | × other |\n");
    printf("|---|---|---:|---|---:|---|---:|---:|---:|\n");
    for (int w = 0; w < WORKLOADS; w++) {
        double m[KINDS];
        for (int k = 0; k < KINDS; k++) m[k] = median(results[w][k], runs);
        printf("| %s | %s | %.3g | %s | %.3g | %s | %.3g | %.2f | %.2f |\n", names[w], kind_names[w][0], m[0],
               kind_names[w][1], m[1], kind_names[w][2], m[2], m[0] / m[1], m[0] / m[2]);
    }
    strata_cache_destroy(cache);
    return 0;
}
