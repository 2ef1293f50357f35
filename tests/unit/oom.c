/*
 * oom.c — out of memory under RLIMIT_AS: NULL with errno ENOMEM, never a crash, and allocation
 * works again once memory is freed. Each case runs in a child with its own limit.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "harness.h"
#include "strata.h"

static void exhaust(size_t size, int code) {
    enum { MAX = 1 << 20 };
    static void *blocks[MAX];
    size_t n = 0;
    errno = 0;
    for (; n < MAX; n++) {
        blocks[n] = malloc(size);
        if (!blocks[n]) break;
        memset(blocks[n], 1, size < 4096 ? size : 4096);
    }
    if (n == MAX) _exit(code + 1);   /* the limit never bit */
    if (errno != ENOMEM) _exit(code + 2);
    if (n < 8) _exit(code + 3);      /* the limit bit far too early */
    for (size_t i = 0; i < n; i++) free(blocks[i]);
    /* Everything freed: most of it fits again. (Not necessarily all: once the mmap threshold has
     * adapted, blocks of a few MiB come from 4 MiB segments rather than mappings of their own.) */
    for (size_t i = 0; i < n * 3 / 4; i++) {
        blocks[i] = malloc(size);
        if (!blocks[i]) _exit(code + 4);
        memset(blocks[i], 2, size < 4096 ? size : 4096);
    }
    for (size_t i = 0; i < n * 3 / 4; i++) free(blocks[i]);
}

static void exhaust_small(void *arg) {
    th_limit_as(96 << 20);
    exhaust(2000, 10);
}
static void exhaust_medium(void *arg) {
    th_limit_as(96 << 20);
    exhaust(60000, 20);
}
static void exhaust_huge(void *arg) {
    th_limit_as(96 << 20);
    exhaust(3 << 20, 30);
}

static void impossible_requests(void *arg) {
    th_limit_as(64 << 20);
    errno = 0;
    if (malloc(1u << 30) != NULL || errno != ENOMEM) _exit(1);
    errno = 0;
    if (calloc(1u << 20, 1u << 10) != NULL || errno != ENOMEM) _exit(2);
    char *p = malloc(1000);
    if (!p) _exit(3);
    memset(p, 7, 1000);
    errno = 0;
    if (realloc(p, 1u << 30) != NULL || errno != ENOMEM) _exit(4);
    for (int i = 0; i < 1000; i++)
        if (p[i] != 7) _exit(5); /* the old block is intact */
    void *q = (void *)1;
    if (posix_memalign(&q, 4096, 1u << 30) != ENOMEM || q != (void *)1) _exit(6);
    errno = 0;
    if (aligned_alloc(1 << 22, 1u << 30) != NULL || errno != ENOMEM) _exit(7);
    free(p);
}

static void *thread_alloc(void *arg) {
    void *p = malloc(100);
    free(p);
    return p;
}
/* Threads started near the limit still get heaps, or fail cleanly. */
static void threads_near_limit(void *arg) {
    th_limit_as(48 << 20);
    static void *hog[4096];
    int n = 0;
    while (n < 4096 && (hog[n] = malloc(256 * 1024)) != NULL) n++;
    for (int i = 0; i < 8; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_alloc, NULL) == 0) pthread_join(t, NULL);
    }
    for (int i = 0; i < n; i++) free(hog[i]);
    pthread_t t;
    if (pthread_create(&t, NULL, thread_alloc, NULL) != 0) _exit(1);
    void *r;
    pthread_join(t, &r);
    if (!r) _exit(2);
}


/* ---- freed memory serves any size again (the memory strata holds but does not use goes back
 * when the kernel refuses more) ---- */

enum { MANY = 1 << 20 };
static void *held[MANY];

/* Allocate blocks of `size` until malloc says ENOMEM; the count, or exit code+1/+2. */
static size_t fill(size_t size, int code) {
    size_t n = 0;
    errno = 0;
    for (; n < MANY; n++) {
        held[n] = malloc(size);
        if (!held[n]) break;
        memset(held[n], 1, size < 4096 ? size : 4096);
    }
    if (n == MANY) _exit(code + 1);
    if (errno != ENOMEM) _exit(code + 2);
    return n;
}

static void free_all(size_t n) {
    for (size_t i = 0; i < n; i++) free(held[i]);
}

/* The case: RLIMIT_AS at the process's size + 512 MiB, blocks until NULL, all freed, then
 * one block of 64 MiB (glibc gives it). */
static void exhaust_then_big(void *arg) {
    size_t size = (size_t)arg;
    th_limit_as((size_t)512 << 20);
    size_t n = fill(size, 10);
    free_all(n);
    errno = 0;
    char *big = malloc((size_t)64 << 20);
    if (!big) _exit(errno == ENOMEM ? 13 : 14);
    memset(big, 3, (size_t)64 << 20);
    /* and the blocks again, most of them (not all: once the mmap threshold has adapted, blocks of a
     * few MiB come from 4 MiB segments rather than mappings of their own) */
    free(big);
    for (size_t i = 0; i < n * 3 / 4; i++)
        if (!(held[i] = malloc(size))) _exit(15);
    free_all(n * 3 / 4);
}

static void oom_recovers_for_any_size(void) {
    SKIP_IF_EMULATED(TH_EMU_AS);
    static const size_t sizes[] = {64 << 10, 1000, 3000, 20000, 300 << 10, 3 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        th_result r = th_child(exhaust_then_big, (void *)sizes[i]);
        CHECKF(r.exited && r.code == 0 && r.err[0] == '\0', "blocks of %zu: exit %d signal %d: %s",
               sizes[i], r.code, r.sig, r.err);
    }
}

/* The same with the program break unable to grow from the start: a mapping sits right above it. */
static void block_brk(void);
static void exhaust_brk_blocked(void *arg) {
    block_brk();
    exhaust_then_big((void *)(64 << 10));
}
static void oom_recovers_when_brk_fails(void) {
    SKIP_IF_EMULATED(TH_EMU_AS);
    th_result r = th_child(exhaust_brk_blocked, NULL);
    CHECKF(r.exited && r.code == 0 && r.err[0] == '\0', "exit %d signal %d: %s", r.code, r.sig, r.err);
}

/* Blocks of threads that freed them and now sit idle (alive, blocked), and of threads that exited:
 * the memory comes back for the main thread's big block. */
static pthread_barrier_t idle_bar;
static void *fill_and_idle(void *arg) {
    size_t k = (size_t)arg, n = 0;
    void **mine = held + k * (MANY / 8);
    while (n < MANY / 8 && (mine[n] = malloc(64 << 10)) != NULL) memset(mine[n++], 1, 4096);
    for (size_t i = 0; i < n; i++) free(mine[i]);
    void *keep = malloc(100); /* a live block: the thread's heap stays in use */
    pthread_barrier_wait(&idle_bar); /* freed */
    pthread_barrier_wait(&idle_bar); /* the main thread is done */
    free(keep);
    return (void *)n;
}
static void exhaust_in_threads(void *arg) {
    th_limit_as((size_t)512 << 20);
    enum { T = 4 };
    pthread_t t[T];
    pthread_barrier_init(&idle_bar, NULL, T + 1);
    for (size_t i = 0; i < T; i++)
        if (pthread_create(&t[i], NULL, fill_and_idle, (void *)i) != 0) _exit(30);
    pthread_barrier_wait(&idle_bar);
    char *big = malloc((size_t)64 << 20);
    if (!big) _exit(31);
    memset(big, 3, (size_t)64 << 20);
    free(big);
    pthread_barrier_wait(&idle_bar);
    size_t total = 0;
    for (size_t i = 0; i < T; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (size_t)r;
    }
    if (total < 100) _exit(32); /* they did take memory */
}
static void oom_recovers_from_idle_threads(void) {
    SKIP_IF_EMULATED(TH_EMU_AS);
    th_result r = th_child(exhaust_in_threads, NULL);
    CHECKF(r.exited && r.code == 0 && r.err[0] == '\0', "exit %d signal %d: %s", r.code, r.sig, r.err);
}

/* ---- every entry point: NULL (or an error code) with ENOMEM, nothing said, then working again ---- */

static size_t entry_size;

static int try_malloc(void **out) { return (*out = malloc(entry_size)) ? 0 : errno; }
static int try_calloc(void **out) { return (*out = calloc(1, entry_size)) ? 0 : errno; }
static int try_calloc_n(void **out) { return (*out = calloc(entry_size / 16, 16)) ? 0 : errno; }
static int try_realloc(void **out) {
    char *p = malloc(16);
    if (!p) return errno;
    strcpy(p, "intact");
    void *q = realloc(p, entry_size);
    if (q) {
        *out = q;
        return strcmp(q, "intact") ? -1 : 0;
    }
    int e = errno;
    if (strcmp(p, "intact")) e = -1; /* the old block must be left as it was */
    free(p);
    return e;
}
static int try_reallocarray(void **out) {
    return (*out = reallocarray(NULL, entry_size / 8, 8)) ? 0 : errno;
}
static int try_posix_memalign(void **out) { return posix_memalign(out, 64, entry_size); }
static int try_posix_memalign_big(void **out) { return posix_memalign(out, 1 << 20, entry_size); }
static int try_aligned_alloc(void **out) { return (*out = aligned_alloc(4096, entry_size)) ? 0 : errno; }
static int try_memalign(void **out) { return (*out = memalign(256, entry_size)) ? 0 : errno; }
static int try_valloc(void **out) { return (*out = valloc(entry_size)) ? 0 : errno; }
static int try_pvalloc(void **out) { return (*out = pvalloc(entry_size)) ? 0 : errno; }

typedef struct {
    const char *name;
    int (*fn)(void **out);
} entry_t;
static const entry_t entries[] = {
    {"malloc", try_malloc}, {"calloc", try_calloc}, {"calloc(n)", try_calloc_n},
    {"realloc", try_realloc}, {"reallocarray", try_reallocarray},
    {"posix_memalign", try_posix_memalign}, {"posix_memalign(1M)", try_posix_memalign_big},
    {"aligned_alloc", try_aligned_alloc}, {"memalign", try_memalign}, {"valloc", try_valloc},
    {"pvalloc", try_pvalloc},
};
enum { NENTRIES = sizeof entries / sizeof entries[0] };

/* Use entry point e until it fails: it must fail with ENOMEM (exit code+1.. otherwise). Returns how
 * many blocks it gave; they are in held[]. */
static size_t drain_entry(const entry_t *e, int code) {
    size_t n = 0;
    for (; n < MANY; n++) {
        errno = 0;
        int err = e->fn(&held[n]);
        if (err == 0) {
            memset(held[n], 1, 64);
            continue;
        }
        if (err != ENOMEM) _exit(code + 1);
        break;
    }
    /* Not out yet: the address space strata gave back on the way (what the forked child had
     * cached) may leave room for more than MANY small blocks. Go on without keeping them. */
    for (size_t more = 0; n == MANY && more < 16 * (size_t)MANY; more++) {
        void *p;
        errno = 0;
        int err = e->fn(&p);
        if (err == 0) continue;
        if (err != ENOMEM) _exit(code + 1);
        return n;
    }
    if (n == MANY) _exit(code + 2);
    return n;
}

/* How the process runs out: its address space, or its count of mappings. */
typedef void (*exhaust_fn)(void);
static void limit_as(void) { th_limit_as(96 << 20); }

static void *fillers[70000];
static size_t nfillers;
/* A mapping right above the program break: the break cannot grow (brk adds no mapping, so with
 * the map count exhausted strata could otherwise go on from the break). */
static void block_brk(void) {
    uintptr_t at = ((uintptr_t)sbrk(0) + 4095) & ~(uintptr_t)4095;
    if (mmap((void *)at, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) ==
        MAP_FAILED)
        _exit(81);
}
/* Take every mapping the kernel allows (vm.max_map_count): one page each, protections alternating
 * so that neighbours cannot merge. */
static void limit_maps(void) {
    block_brk();
    for (nfillers = 0; nfillers < sizeof fillers / sizeof fillers[0]; nfillers++) {
        void *p = mmap(NULL, 4096, nfillers & 1 ? PROT_READ : PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) break;
        fillers[nfillers] = p;
    }
    if (nfillers == sizeof fillers / sizeof fillers[0]) _exit(80);
}
/* Give some room back: the mappings (for max_map_count), or nothing (the freed blocks are it). */
static void unlimit_maps(void) {
    for (size_t i = 0; i < 64 && nfillers; i++) munmap(fillers[--nfillers], 4096);
}

typedef struct {
    exhaust_fn exhaust, relieve;
    size_t size;
} entry_case;

static void entry_points_fail_cleanly(void *arg) {
    const entry_case *c = arg;
    entry_size = c->size;
    c->exhaust();
    for (int i = 0; i < NENTRIES; i++) {
        size_t n = drain_entry(&entries[i], 10 * (i + 1));
        for (size_t j = 0; j < n; j++) free(held[j]);
    }
    /* everything freed (and for the map count, a few mappings given back): each works again */
    if (c->relieve) c->relieve();
    for (int i = 0; i < NENTRIES; i++) {
        void *p;
        errno = 0;
        if (entries[i].fn(&p) != 0) _exit(200 + i);
        memset(p, 2, entry_size);
        free(p);
    }
}

static void run_entries(exhaust_fn ex, exhaust_fn relieve, const char *how) {
    static const size_t sizes[] = {96, 40000, 600 << 10, 8 << 20}; /* multiples of 16: calloc(n) */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        entry_case c = {ex, relieve, sizes[i]};
        th_result r = th_child(entry_points_fail_cleanly, &c);
        int e = r.code >= 10 && r.code < 200 ? r.code / 10 - 1 : r.code >= 200 ? r.code - 200 : -1;
        CHECKF(r.exited && r.code == 0, "%s, %zu bytes: exit %d (%s%s) signal %d: %s", how, sizes[i],
               r.code, e >= 0 && e < NENTRIES ? entries[e].name : "?",
               r.code >= 200 ? " did not work again" : "", r.sig, r.err);
        CHECKF(r.err[0] == '\0', "%s, %zu bytes: said: %s", how, sizes[i], r.err);
    }
}
static void oom_entry_points_address_space(void) {
    SKIP_IF_EMULATED(TH_EMU_AS);
    run_entries(limit_as, NULL, "RLIMIT_AS"); }
static void oom_entry_points_map_count(void) { run_entries(limit_maps, unlimit_maps, "max_map_count"); }

/* The explicit allocators: NULL with ENOMEM too, and working again after. */
static void explicit_fail_cleanly(void *arg) {
    exhaust_fn ex = (exhaust_fn)arg;
    strata_pool *pool = strata_pool_create(NULL);
    strata_cache *cache = strata_cache_create("oom", 200, 0, NULL, NULL);
    strata_pages *pages = strata_pages_create(8, 0);
    if (!pool || !cache || !pages) _exit(1);
    ex();
    size_t n = 0;
    errno = 0;
    while (n < MANY && (held[n] = strata_pool_alloc(pool, 3000)) != NULL) n++;
    if (held[n] || errno != ENOMEM) _exit(2);
    errno = 0;
    if (strata_pool_alloc(pool, 50 << 20) || errno != ENOMEM) _exit(3); /* a large one */
    strata_pool_reset(pool); /* keeps its chunks */
    n = 0;
    errno = 0;
    while (n < MANY && (held[n] = strata_cache_alloc(cache)) != NULL) n++;
    if (errno != ENOMEM) _exit(4);
    for (size_t i = 0; i < n; i++) strata_cache_free(cache, held[i]);
    strata_cache_shrink(cache);
    n = 0;
    errno = 0;
    while (n < MANY && (held[n] = strata_pages_alloc(pages, 4)) != NULL) n++;
    if (errno != ENOMEM) _exit(5);
    for (size_t i = 0; i < n; i++) strata_pages_free(pages, held[i], 4);
    errno = 0;
    if (strata_pool_create(NULL) == NULL && errno != ENOMEM) _exit(6);
    strata_pool_destroy(pool);
    if (ex == limit_maps) unlimit_maps();
    /* memory is back: each works again */
    pool = strata_pool_create(NULL);
    if (!pool || !strata_pool_alloc(pool, 3000)) _exit(7);
    void *o = strata_cache_alloc(cache);
    if (!o) _exit(8);
    strata_cache_free(cache, o);
    void *pg = strata_pages_alloc(pages, 4);
    if (!pg) _exit(9);
    strata_pages_free(pages, pg, 4);
    strata_pool_destroy(pool);
    strata_cache_destroy(cache);
    strata_pages_destroy(pages);
}
static void oom_explicit_allocators(void) {
    SKIP_IF_EMULATED(TH_EMU_AS);
    th_result r = th_child(explicit_fail_cleanly, (void *)limit_as);
    CHECKF(r.exited && r.code == 0 && r.err[0] == '\0', "RLIMIT_AS: exit %d signal %d: %s", r.code,
           r.sig, r.err);
    r = th_child(explicit_fail_cleanly, (void *)limit_maps);
    CHECKF(r.exited && r.code == 0 && r.err[0] == '\0', "max_map_count: exit %d signal %d: %s",
           r.code, r.sig, r.err);
}

static void run_case(void (*fn)(void *), const char *name) {
    SKIP_IF_EMULATED(TH_EMU_AS);
    th_result r = th_child(fn, NULL);
    CHECKF(r.exited && r.code == 0, "%s: exit %d signal %d: %s", name, r.code, r.sig, r.err);
    CHECKF(r.err[0] == '\0', "%s said: %s", name, r.err);
}

static void oom_small_blocks(void) { run_case(exhaust_small, "small"); }
static void oom_medium_blocks(void) { run_case(exhaust_medium, "medium"); }
static void oom_huge_blocks(void) { run_case(exhaust_huge, "huge"); }
static void oom_impossible_requests(void) { run_case(impossible_requests, "impossible"); }
static void oom_thread_creation(void) { run_case(threads_near_limit, "threads"); }

int main(void) {
    RUN(oom_small_blocks);
    RUN(oom_medium_blocks);
    RUN(oom_huge_blocks);
    RUN(oom_impossible_requests);
    RUN(oom_thread_creation);
    RUN(oom_recovers_for_any_size);
    RUN(oom_recovers_when_brk_fails);
    RUN(oom_recovers_from_idle_threads);
    RUN(oom_entry_points_address_space);
    RUN(oom_entry_points_map_count);
    RUN(oom_explicit_allocators);
    return 0;
}
