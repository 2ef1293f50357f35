/*
 * explicit_cache.c — strata_cache: objects distinct and aligned, constructor and destructor run
 * once per object as with kmem_cache, constructed state kept across free and alloc, many threads
 * on one cache (objects freed by other threads), a thread's magazines returned at its exit,
 * shrink giving memory back, misuse caught with a message, out of memory.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "harness.h"
#include "strata.h"

static struct strata_cache_stats cstats(strata_cache *c) {
    struct strata_cache_stats s;
    strata_cache_get_stats(c, &s);
    return s;
}

static void cache_objects_distinct_and_aligned(void) {
    size_t sizes[] = {1, 8, 24, 100, 1000, 5000, 100000};
    for (size_t align = 0; align <= 4096; align = align ? align * 2 : 1) {
        for (int k = 0; k < 7; k++) {
            strata_cache *c = strata_cache_create("t", sizes[k], align, NULL, NULL);
            CHECKF(c != NULL, "size %zu align %zu", sizes[k], align);
            enum { N = 200 };
            void *objs[N];
            for (int i = 0; i < N; i++) {
                objs[i] = strata_cache_alloc(c);
                CHECK(objs[i] != NULL);
                CHECKF((uintptr_t)objs[i] % (align < 8 ? 8 : align) == 0,
                       "size %zu align %zu: %p", sizes[k], align, objs[i]);
                th_fill(objs[i], sizes[k], (unsigned)i);
            }
            for (int i = 0; i < N; i++) CHECK(th_verify(objs[i], sizes[k], (unsigned)i));
            struct strata_cache_stats s = cstats(c);
            CHECK(s.in_use == N && s.allocs == N && s.object_size == sizes[k]);
            CHECK(s.objects_per_slab >= 8 && s.stride >= sizes[k]);
            for (int i = 0; i < N; i++) strata_cache_free(c, objs[i]);
            CHECK(cstats(c).in_use == 0);
            strata_cache_destroy(c);
        }
        if (align == 4096) break;
    }
    errno = 0;
    CHECK(strata_cache_create("bad", 0, 0, NULL, NULL) == NULL && errno == EINVAL);
    CHECK(strata_cache_create("bad", 24, 12, NULL, NULL) == NULL && errno == EINVAL);
    CHECK(strata_cache_create("bad", (size_t)1 << 20, 0, NULL, NULL) == NULL && errno == EINVAL);
}

/* ---- constructor and destructor ---- */

typedef struct {
    uint64_t magic;
    int state;
    char payload[52];
} thing;

static _Atomic long ctors, dtors;
static void thing_ctor(void *p) {
    thing *t = p;
    t->magic = 0xC0FFEE;
    t->state = 0;
    ctors++;
}
static void thing_dtor(void *p) {
    thing *t = p;
    if (t->magic == 0xC0FFEE) dtors++;
    t->magic = 0;
}

static void cache_ctor_once_per_object(void) {
    ctors = dtors = 0;
    strata_cache *c = strata_cache_create("thing", sizeof(thing), 0, thing_ctor, thing_dtor);
    CHECK(c != NULL);
    enum { N = 5000 };
    static thing *objs[N];
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < N; i++) {
            objs[i] = strata_cache_alloc(c);
            CHECK(objs[i] && objs[i]->magic == 0xC0FFEE);
            /* what the previous round left is still there: free kept the object as it was */
            CHECKF(objs[i]->state == 0 || objs[i]->state == 1, "state %d", objs[i]->state);
            objs[i]->state = 1;
            memset(objs[i]->payload, round, sizeof objs[i]->payload);
        }
        for (int i = 0; i < N; i++) strata_cache_free(c, objs[i]);
    }
    struct strata_cache_stats s = cstats(c);
    CHECKF(ctors >= N && ctors <= N + 2 * (long)s.objects_per_slab, "%ld constructor calls", ctors);
    CHECK((long)s.constructed == ctors);
    CHECK(dtors == 0);
    strata_cache_shrink(c);
    s = cstats(c);
    CHECKF(dtors == ctors && s.destroyed == s.constructed, "%ld destructor calls for %ld objects", dtors, ctors);
    CHECK(s.slabs == 0 && s.slabs_released > 0);
    /* slabs made again construct again; destroy runs the destructors */
    for (int i = 0; i < 100; i++) objs[i] = strata_cache_alloc(c);
    for (int i = 0; i < 100; i++) strata_cache_free(c, objs[i]);
    long before = ctors;
    CHECK(before > N);
    strata_cache_destroy(c);
    CHECKF(dtors == ctors, "%ld destructor calls for %ld objects after destroy", dtors, ctors);
}

/* ---- threads ---- */

enum { THREADS = 4, SLOTS = 4096, OPS = 300000, OSIZE = 48 };
static strata_cache *shared;
static _Atomic(uint32_t *) board[SLOTS];
static _Atomic int bad;

static void *hammer(void *arg) {
    unsigned s = (unsigned)(uintptr_t)arg * 2654435761u + 1;
    for (int i = 0; i < OPS; i++) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        uint32_t *mine = strata_cache_alloc(shared);
        if (!mine) {
            bad = 1;
            return NULL;
        }
        for (int k = 0; k < OSIZE / 4; k++) mine[k] = s;
        /* swap it in: whatever was there, made by any thread, is checked and freed here */
        uint32_t *old = atomic_exchange(&board[s % SLOTS], mine);
        if (old) {
            for (int k = 1; k < OSIZE / 4; k++)
                if (old[k] != old[0]) bad = 1;
            strata_cache_free(shared, old);
        }
    }
    return NULL;
}

static void cache_many_threads_one_cache(void) {
    shared = strata_cache_create("shared", OSIZE, 0, NULL, NULL);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, hammer, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    CHECK(!bad);
    size_t live = 0;
    for (int i = 0; i < SLOTS; i++)
        if (board[i]) live++;
    struct strata_cache_stats s = cstats(shared);
    CHECKF(s.in_use == live, "in use %zu, on the board %zu", s.in_use, live);
    CHECK(s.allocs == (unsigned long long)THREADS * OPS);
    CHECKF(s.alloc_hits > s.allocs / 2, "only %llu of %llu allocations from magazines", s.alloc_hits, s.allocs);
    /* the threads have exited: their magazines went back to the slabs */
    CHECKF(s.cached == 0, "%zu objects still cached after every thread exited", s.cached);
    for (int i = 0; i < SLOTS; i++) strata_cache_free(shared, atomic_exchange(&board[i], NULL));
    CHECK(cstats(shared).in_use == 0);
    strata_cache_destroy(shared);
}

/* fork while another thread works the cache: the child must find its lock free */
static _Atomic int stop, rounds;
static void *spin(void *arg) {
    void *objs[40];
    while (!stop) { /* past the magazines (8 objects of 5000 bytes): the depot, under the lock */
        for (int k = 0; k < 40; k++) objs[k] = strata_cache_alloc(shared);
        for (int k = 0; k < 40; k++) strata_cache_free(shared, objs[k]);
        rounds++;
    }
    return NULL;
}

static void cache_fork_while_busy(void) {
    shared = strata_cache_create("forked", 5000, 0, NULL, NULL); /* small magazines: the lock is hot */
    pthread_t t;
    stop = 0;
    rounds = 0;
    pthread_create(&t, NULL, spin, NULL);
    /* forks begin once the thread is in its stride: under qemu-user, a fork while the thread is
     * still having its code translated can leave the child hung in the emulator (TH_EMU_FORK) */
    while (rounds < 50) sched_yield();
    int failures = 0;
    for (int i = 0; i < 50; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10);
            void *objs[100];
            for (int k = 0; k < 100; k++) objs[k] = strata_cache_alloc(shared);
            for (int k = 0; k < 100; k++) strata_cache_free(shared, objs[k]);
            strata_cache_shrink(shared);
            strata_pages_free(NULL, strata_pages_alloc(NULL, 2), 2);
            _exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) failures++;
    }
    stop = 1;
    pthread_join(t, NULL);
    CHECKF(failures == 0, "%d of 50 children failed", failures);
    strata_cache_destroy(shared);
}

/* ---- memory ---- */

static void cache_shrink_gives_memory_back(void) {
    enum { N = 300000, SIZE = 200 }; /* 60 MB */
    static void *objs[N];
    strata_cache *c = strata_cache_create("big", SIZE, 0, NULL, NULL);
    long rss0 = th_rss_kb();
    for (int i = 0; i < N; i++) {
        objs[i] = strata_cache_alloc(c);
        CHECK(objs[i] != NULL);
        memset(objs[i], 1, SIZE);
    }
    long rss1 = th_rss_kb();
    CHECKF(rss1 - rss0 > 50 * 1024, "RSS grew by %ld KiB only", rss1 - rss0);
    for (int i = 0; i < N; i++) strata_cache_free(c, objs[i]);
    size_t slabs = cstats(c).slabs;
    size_t released = strata_cache_shrink(c);
    struct strata_cache_stats s = cstats(c);
    CHECKF(s.slabs == 0 && s.slabs_released == slabs, "%zu slabs left of %zu", s.slabs, slabs);
    CHECK(released == slabs * s.slab_bytes);
    long rss2 = th_rss_kb();
    CHECKF(rss1 - rss2 > 50 * 1024, "RSS fell by %ld KiB only", rss1 - rss2);
    strata_cache_destroy(c);
}

/* ---- misuse ---- */

static strata_cache *misuse_cache(void) { return strata_cache_create("victim", 64, 0, NULL, NULL); }
static void double_free(void *arg) {
    strata_cache *c = misuse_cache();
    void *p = strata_cache_alloc(c);
    strata_cache_free(c, p);
    strata_cache_free(c, p);
}
static void malloc_pointer(void *arg) {
    strata_cache *c = misuse_cache();
    th_use(strata_cache_alloc(c));
    strata_cache_free(c, malloc(64));
}
static void other_cache(void *arg) {
    strata_cache *c = misuse_cache(), *d = strata_cache_create("other", 64, 0, NULL, NULL);
    strata_cache_free(d, strata_cache_alloc(c));
}
static void interior(void *arg) {
    strata_cache *c = misuse_cache();
    strata_cache_free(c, (char *)strata_cache_alloc(c) + 8);
}
static void destroy_live(void *arg) {
    strata_cache *c = misuse_cache();
    for (int i = 0; i < 10; i++) th_use(strata_cache_alloc(c));
    strata_cache_destroy(c);
}

static void cache_misuse_aborts_with_message(void) {
    CHECK_ABORTS(double_free, NULL, "strata_cache_free(): double free of 0x");
    CHECK_ABORTS(malloc_pointer, NULL, "was not allocated by cache 'victim' (not from any cache)");
    CHECK_ABORTS(other_cache, NULL, "was not allocated by cache 'other'");
    CHECK_ABORTS(interior, NULL, "not the start of an object of cache 'victim'");
    CHECK_ABORTS(destroy_live, NULL, "cache 'victim' (0x");
}

static void exhaust(void *arg) {
    th_limit_as((size_t)64 << 20);
    strata_cache *c = strata_cache_create("oom", 1000, 0, NULL, NULL);
    static void *objs[1 << 20];
    size_t n = 0;
    errno = 0;
    for (; n < 1 << 20; n++)
        if (!(objs[n] = strata_cache_alloc(c))) break;
    if (n == 1 << 20) _exit(10);
    if (errno != ENOMEM) _exit(11);
    if (n < 1000) _exit(12);
    for (size_t i = 0; i < n; i++) strata_cache_free(c, objs[i]);
    if (!strata_cache_alloc(c)) _exit(13);
}

static void cache_out_of_memory(void) {
    SKIP_IF_EMULATED(TH_EMU_AS);
    if (th_under_valgrind()) SKIP("under valgrind, whose own memory counts against RLIMIT_AS");
    CHECK_CHILD_OK(exhaust, NULL);
}

int main(void) {
    RUN(cache_objects_distinct_and_aligned);
    RUN(cache_ctor_once_per_object);
    RUN(cache_many_threads_one_cache);
    RUN(cache_fork_while_busy);
    RUN(cache_shrink_gives_memory_back);
    RUN(cache_misuse_aborts_with_message);
    RUN(cache_out_of_memory);
    return 0;
}
