/*
 * thread_exit.c — allocation while threads exit, and after strata has let go of their heaps.
 *
 * strata makes a thread's heap an orphan heap from a pthread key destructor. The program's own
 * destructors (pthread keys, C11 tss) may run before or after it, and may allocate and free: after
 * strata's destructor the thread borrows an orphan heap for each allocation. Blocks of exited
 * threads are freed by others, and their memory must serve new threads rather than pile up.
 */
#include <threads.h>

#include "harness.h"
#include "stress.h"

static const size_band sizes[] = {{500, 1, 256}, {800, 257, 4096}, {960, 4097, 65536},
                                  {990, 65537, 140000}, {1000, 140001, (size_t)2 << 20}};
static size_t rnd_size(uint64_t *s) { return rnd_size_from(s, sizes); }

/* ================================================================================================
 * Tests that need a process in which no thread has exited yet come first.
 * ============================================================================================== */

/* A thread that never allocates gets no heap; a thread that only frees needs none either. */
static void *idle_thread(void *unused) { return NULL; }

typedef struct {
    void **blocks;
    unsigned count;
    size_t n;
} free_job;

static void *freeing_thread(void *argp) {
    free_job *j = argp;
    for (unsigned i = 0; i < j->count; i++) {
        if (!pat_ok(j->blocks[i], j->n, i)) fail("block %u corrupted on its way", i);
        free(j->blocks[i]);
    }
    return NULL;
}

static void threads_that_never_allocate(void) {
    reset_failures();
    size_t heaps0 = heaps_now();
    for (int i = 0; i < 300; i++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, idle_thread, NULL) == 0);
        pthread_join(t, NULL);
    }
    size_t heaps1 = heaps_now();
    CHECKF(heaps1 == heaps0, "300 threads that never called malloc made %zu heaps",
           heaps1 - heaps0);
}

/* What block p adds to the bytes in use (its class's whole block, the pad past its usable bytes
 * included): a second block of its size, measured while nothing else is pending. */
static size_t footprint(void *p) {
    size_t before = in_use_now();
    void *q = malloc(malloc_usable_size(p));
    size_t grown = in_use_now() - before;
    free(q);
    return grown;
}

/* A thread that only frees gets a heap at its first free of another heap's block (its frees are
 * batched like anyone's, and sent when it exits); the owner takes them back on its next slow-path
 * allocation. */
static void thread_that_only_frees(void) {
    reset_failures();
    enum { N = 200, SIZE = 80 };
    static void *blocks[N];
    for (unsigned i = 0; i < N; i++) {
        blocks[i] = malloc(SIZE);
        CHECK(blocks[i] != NULL);
        pat_fill(blocks[i], SIZE, i);
    }
    size_t heaps0 = heaps_now();
    size_t with = in_use_now();
    free_job j = {blocks, N, SIZE};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, freeing_thread, &j) == 0);
    pthread_join(t, NULL);
    CHECKF(!g_failed, "%s", g_msg);
    CHECKF(heaps_now() <= heaps0 + 1, "a thread that only freed made %zu heaps", heaps_now() - heaps0);
    /* a size this thread has never asked for: the slow path, which collects remote frees */
    void *fresh = malloc(23456);
    CHECK(fresh != NULL);
    size_t after = in_use_now() - footprint(fresh);
    free(fresh);
    CHECKF(with >= after && with - after >= (size_t)N * SIZE,
           "in use went from %zu to %zu: the %d blocks freed by another thread were not taken "
           "back",
           with, after, N);
}

/* A thread that frees fewer blocks of main than a batch keeps them in its outbox; its exit must
 * send them. */
static void *alloc_then_free_thread(void *argp) {
    void *mine = malloc(100); /* the thread has a heap: its remote frees are batched */
    if (!mine) fail("malloc failed");
    freeing_thread(argp);
    free(mine);
    return NULL;
}

static void exit_sends_pending_remote_frees(void) {
    reset_failures();
    enum { N = 30, SIZE = 208 }; /* under a batch (64 blocks, 256 KiB) */
    static void *blocks[N];
    for (unsigned i = 0; i < N; i++) {
        blocks[i] = malloc(SIZE);
        CHECK(blocks[i] != NULL);
        pat_fill(blocks[i], SIZE, i);
    }
    free_job j = {blocks, N, SIZE};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, alloc_then_free_thread, &j) == 0);
    pthread_join(t, NULL);
    CHECKF(!g_failed, "%s", g_msg);
    size_t with = in_use_now();
    void *fresh = malloc(34567); /* slow path: collects what the exited thread sent */
    CHECK(fresh != NULL);
    size_t after = in_use_now() - footprint(fresh);
    free(fresh);
    CHECKF(with >= after && with - after >= (size_t)N * SIZE,
           "in use went from %zu to %zu: the %d blocks an exiting thread freed were not sent",
           with, after, N);
}

/* The bug this names: malloc_trim(0) must return promptly once some thread has exited. */
static void *alloc_free_thread(void *unused) {
    void *p = malloc(100);
    th_use(p);
    free(p);
    return NULL;
}

static void malloc_trim_returns_after_a_thread_exits(void) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, alloc_free_thread, NULL) == 0);
    pthread_join(t, NULL);
    struct strata_stats st;
    char why[200];
    CHECKF(trimmed_stats(&st, 5, why, sizeof why) == 0, "%s (one orphan heap)", why);
}

/* ================================================================================================
 * Program destructors that allocate.
 * ============================================================================================== */

/* key_early is made by a constructor, before main's first malloc (and so, usually, before
 * strata's own key: it runs before strata's destructor); key_late after main has allocated. */
static pthread_key_t key_early, key_late;
static int key_early_ok;
static void dtor(void *v);

__attribute__((constructor(101))) static void make_early_key(void) {
    key_early_ok = pthread_key_create(&key_early, dtor) == 0;
}

enum { ROUNDS = 3 }; /* destructor rounds per key; glibc runs up to 4 */

typedef struct {
    pthread_key_t key;
    int rounds;
    uint64_t seed;
    void *life;      /* allocated by the thread before it exited */
    size_t life_n;
    void *other;     /* allocated by another thread, freed by this one's destructor */
    size_t other_n;
} dtor_state;

/* Allocate, check and free a bit of everything; hand one block to main. */
static void allocate_everything(uint64_t *s, const char *where) {
    enum { N = 12 };
    void *p[N];
    size_t n[N];
    for (int i = 0; i < N; i++) {
        n[i] = i == 0 ? (size_t)5 << 20 : i == 1 ? (size_t)600 << 10 : rnd_size(s);
        switch (i % 4) {
        case 0: p[i] = malloc(n[i]); break;
        case 1:
            p[i] = calloc(1, n[i]);
            if (p[i] && n[i] && ((unsigned char *)p[i])[n[i] - 1] != 0)
                fail("%s: calloc(%zu) not zeroed", where, n[i]);
            break;
        case 2:
            if (posix_memalign(&p[i], 4096, n[i]) != 0) p[i] = NULL;
            else if ((uintptr_t)p[i] % 4096) fail("%s: posix_memalign misaligned", where);
            break;
        default: p[i] = aligned_alloc(64, n[i]); break;
        }
        if (!p[i]) {
            fail("%s: allocation of %zu bytes failed", where, n[i]);
            return;
        }
        pat_fill(p[i], n[i], (unsigned)i);
    }
    /* realloc through the kinds */
    void *r = malloc(10);
    size_t rn = 10;
    if (r) pat_fill(r, rn, 77);
    for (size_t m = 100; r && m < ((size_t)6 << 20); m *= 7) {
        void *q = realloc(r, m);
        if (!q) {
            fail("%s: realloc to %zu failed", where, m);
            free(r);
            return;
        }
        if (!pat_ok(q, rn, 77)) fail("%s: realloc to %zu lost the contents", where, m);
        r = q;
        rn = m < 4096 ? m : 4096;
        pat_fill(r, rn, 77);
    }
    free(r);
    for (int i = 0; i < N; i++) {
        if (!pat_ok(p[i], n[i], (unsigned)i)) fail("%s: block of %zu bytes corrupted", where, n[i]);
        if (i == 3) hand_over(p[i], n[i], (unsigned)i);
        else free(p[i]);
    }
}

static void dtor(void *v) {
    dtor_state *st = v;
    st->rounds++;
    allocate_everything(&st->seed, st->key == key_early ? "early key destructor"
                                                        : "late key destructor");
    if (st->rounds < ROUNDS) {
        /* run again in the next round: strata's destructor has surely run by then */
        if (pthread_setspecific(st->key, st) != 0) fail("pthread_setspecific failed");
        return;
    }
    if (st->life) {
        if (!pat_ok(st->life, st->life_n, 5)) fail("destructor: the thread's block was corrupted");
        free(st->life);
    }
    if (st->other) {
        if (!pat_ok(st->other, st->other_n, 6)) fail("destructor: main's block was corrupted");
        free(st->other);
    }
    free(st);
}

typedef struct {
    int allocate_in_life; /* 0: the thread's only allocations are in its destructors */
    uint64_t seed;
    void *from_main[2];
    size_t from_main_n;
    dtor_state *preset[2]; /* made by main for threads that must not allocate */
} dtor_thread_arg;

static void *dtor_thread(void *argp) {
    dtor_thread_arg *a = argp;
    pthread_key_t keys[2] = {key_early, key_late};
    for (int k = 0; k < 2; k++) {
        dtor_state *st = a->preset[k];
        if (a->allocate_in_life) {
            st = malloc(sizeof *st);
            if (!st) {
                fail("malloc failed");
                return NULL;
            }
            memset(st, 0, sizeof *st);
            st->life_n = rnd_range(&a->seed, 1, 100000);
            st->life = malloc(st->life_n);
            if (!st->life) {
                fail("malloc failed");
                return NULL;
            }
            pat_fill(st->life, st->life_n, 5);
        }
        st->key = keys[k];
        st->seed = a->seed + (uint64_t)k;
        st->other = a->from_main[k];
        st->other_n = a->from_main_n;
        pthread_setspecific(keys[k], st);
    }
    return NULL;
}

static void destructors_allocate_after_thread_exit(void) {
    reset_failures();
    CHECK(key_early_ok);
    CHECK(pthread_key_create(&key_late, dtor) == 0);
    printf("# program keys: %u (made before main), %u (made after main allocated)\n",
           (unsigned)key_early, (unsigned)key_late);
    enum { THREADS = 120, AT_ONCE = 6 };
    dtor_thread_arg a[AT_ONCE];
    pthread_t t[AT_ONCE];
    uint64_t s = 3;
    for (int i = 0; i < THREADS && !g_failed; i += AT_ONCE) {
        for (int j = 0; j < AT_ONCE; j++) {
            a[j].allocate_in_life = (i / AT_ONCE + j) % 3 != 0;
            a[j].seed = rnd(&s);
            a[j].from_main_n = rnd_size(&s);
            for (int k = 0; k < 2; k++) {
                a[j].from_main[k] = malloc(a[j].from_main_n);
                CHECK(a[j].from_main[k] != NULL);
                pat_fill(a[j].from_main[k], a[j].from_main_n, 6);
                a[j].preset[k] = NULL;
                if (!a[j].allocate_in_life) {
                    a[j].preset[k] = calloc(1, sizeof(dtor_state));
                    CHECK(a[j].preset[k] != NULL);
                }
            }
            CHECK(pthread_create(&t[j], NULL, dtor_thread, &a[j]) == 0);
        }
        for (int j = 0; j < AT_ONCE; j++) pthread_join(t[j], NULL);
        free_handed();
    }
    pthread_key_delete(key_late);
    CHECKF(!g_failed, "%s", g_msg);
}

/* ---- C11 threads and tss destructors ---- */

static tss_t c11_key;
static mtx_t c11_mu;
static void *c11_list[4096];
static size_t c11_size[4096];
static int c11_count;

static void c11_dtor(void *v) {
    size_t n = (size_t)(uintptr_t)v;
    void *p = malloc(n);
    if (!p) {
        fail("malloc(%zu) in a tss destructor failed", n);
        return;
    }
    pat_fill(p, n, (unsigned)n);
    mtx_lock(&c11_mu);
    if (c11_count < 4096) {
        c11_list[c11_count] = p;
        c11_size[c11_count++] = n;
    } else {
        free(p);
    }
    mtx_unlock(&c11_mu);
}

static int c11_thread(void *arg) {
    uintptr_t n = (uintptr_t)arg;
    if (n % 2) { /* half of them allocate in their life too */
        void *p = malloc(n);
        th_use(p);
        free(p);
    }
    tss_set(c11_key, (void *)n);
    return 0;
}

static void c11_tss_destructor_hands_block_to_main(void) {
    reset_failures();
    CHECK(tss_create(&c11_key, c11_dtor) == thrd_success);
    CHECK(mtx_init(&c11_mu, mtx_plain) == thrd_success);
    uint64_t s = 4;
    for (int round = 0; round < 50; round++) {
        thrd_t t[4];
        for (int j = 0; j < 4; j++) {
            uintptr_t n = rnd_size(&s) + 1;
            CHECK(thrd_create(&t[j], c11_thread, (void *)n) == thrd_success);
        }
        for (int j = 0; j < 4; j++) thrd_join(t[j], NULL);
        mtx_lock(&c11_mu);
        CHECKF(c11_count == (round + 1) * 4, "%d blocks from %d tss destructors", c11_count,
               (round + 1) * 4);
        mtx_unlock(&c11_mu);
    }
    for (int i = 0; i < c11_count; i++) {
        CHECKF(pat_ok(c11_list[i], c11_size[i], (unsigned)c11_size[i]),
               "block %d from a tss destructor corrupted", i);
        free(c11_list[i]);
    }
    c11_count = 0;
    tss_delete(c11_key);
    mtx_destroy(&c11_mu);
    CHECKF(!g_failed, "%s", g_msg);
}

/* ---- memory of exited threads is reused ---- */

static void *filler_thread(void *argp) {
    uint64_t s = (uint64_t)(uintptr_t)argp;
    size_t total = 0;
    while (total < ((size_t)4 << 20)) {
        size_t n = rnd_range(&s, 1, 16384);
        void *p = malloc(n);
        if (!p) {
            fail("malloc(%zu) failed", n);
            return NULL;
        }
        unsigned seed = (unsigned)rnd(&s);
        pat_fill(p, n, seed);
        hand_over(p, n, seed);
        total += n;
    }
    return NULL;
}

static void exited_threads_memory_is_reused(void) {
    reset_failures();
    enum { ROUNDS_ = 30, THREADS = 4 };
    long rss5 = 0;
    size_t in_use5 = 0, max_in_use = 0;
    uintptr_t seed = 1;
    for (int round = 0; round < ROUNDS_; round++) {
        pthread_t t[THREADS];
        for (int j = 0; j < THREADS; j++)
            CHECK(pthread_create(&t[j], NULL, filler_thread, (void *)(seed++ * 7777)) == 0);
        for (int j = 0; j < THREADS; j++) pthread_join(t[j], NULL);
        free_handed(); /* 16 MiB of blocks of exited threads */
        CHECKF(!g_failed, "round %d: %s", round, g_msg);
        size_t u = in_use_now();
        if (u > max_in_use) max_in_use = u;
        if (round == 4) {
            rss5 = th_rss_kb();
            in_use5 = u;
        }
    }
    long rss = th_rss_kb();
    size_t u = in_use_now();
    printf("# reuse: RSS %ld KiB after 5 rounds, %ld after %d; in use %zu, %zu, at most %zu\n",
           rss5, rss, ROUNDS_, in_use5, u, max_in_use);
    /* Freed blocks count as in use until their heap's next owner collects them: a round's worth
     * (16 MiB) or two may be pending. A leak grows by 16 MiB a round: 480 MiB in 30 rounds. RSS
     * moves by tens of MiB as segments come and go; a leak would add 400 MiB. */
    CHECKF(max_in_use < ((size_t)80 << 20), "in use reached %zu bytes with 16 MiB live per round",
           max_in_use);
    CHECKF(rss - rss5 < 64 * 1024, "RSS grew from %ld KiB to %ld KiB over %d rounds", rss5, rss,
           ROUNDS_ - 5);
}

/* ---- frees to the heaps of exited threads ---- */

/* Memory an exited thread's blocks held is back as soon as they are freed: not in use, without
 * waiting for malloc_trim or for a new thread to adopt the heap. */
typedef struct {
    void **blocks;
    unsigned count;
    size_t n;
} alloc_job;

static void *allocating_thread(void *argp) {
    alloc_job *j = argp;
    for (unsigned i = 0; i < j->count; i++) {
        j->blocks[i] = malloc(j->n);
        if (!j->blocks[i]) {
            fail("malloc(%zu) failed", j->n);
            return NULL;
        }
        pat_fill(j->blocks[i], j->n, i);
    }
    return NULL;
}

static void freed_after_exit_is_not_in_use(void) {
    reset_failures();
    enum { N = 2000, SIZE = 1000 };
    static void *blocks[N];
    alloc_job j = {blocks, N, SIZE};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, allocating_thread, &j) == 0);
    pthread_join(t, NULL);
    CHECKF(!g_failed, "%s", g_msg);
    size_t with = in_use_now();
    for (unsigned i = 0; i < N; i++) {
        CHECKF(pat_ok(blocks[i], SIZE, i), "block %u of an exited thread corrupted", i);
        free(blocks[i]);
    }
    size_t after = in_use_now();
    CHECKF(with >= after && with - after >= (size_t)N * SIZE,
           "in use went from %zu to %zu bytes when main freed %d blocks of %d bytes of an exited "
           "thread",
           with, after, N, SIZE);
}

/* Many threads free blocks of exited threads' heaps at once, while new threads adopt those heaps
 * from under them. */
enum { OWNERS = 6, PER_OWNER = 1500, FREERS = 4, ADOPTERS = 4 };
static void *owned[OWNERS][PER_OWNER];
static size_t owned_n[OWNERS][PER_OWNER];

static void *owner_thread(void *argp) {
    uintptr_t o = (uintptr_t)argp % 100; /* argp: owner + 100 * round */
    uint64_t s = (uint64_t)(uintptr_t)argp * 7717 + 3;
    for (unsigned i = 0; i < PER_OWNER; i++) {
        size_t n = i % 500 == 7 ? rnd_range(&s, 140000, 600000)
                   : i % 10 == 0 ? rnd_range(&s, 2049, 65536) : rnd_range(&s, 1, 2048);
        owned[o][i] = malloc(n);
        if (!owned[o][i]) {
            fail("malloc(%zu) failed", n);
            return NULL;
        }
        owned_n[o][i] = n;
        pat_fill(owned[o][i], n, (unsigned)(o * PER_OWNER + i));
    }
    return NULL;
}

static void *freer_thread(void *argp) {
    uintptr_t f = (uintptr_t)argp;
    void *mine = malloc(64); /* a heap of its own, so its frees go through its outbox */
    for (unsigned i = (unsigned)f; i < PER_OWNER; i += FREERS)
        for (unsigned o = 0; o < OWNERS; o++) {
            if (!pat_ok(owned[o][i], owned_n[o][i], (unsigned)(o * PER_OWNER + i)))
                fail("block %u of exited thread %u corrupted", i, o);
            free(owned[o][i]);
        }
    free(mine);
    return NULL;
}

static void *adopter_thread(void *argp) {
    uint64_t s = (uint64_t)(uintptr_t)argp;
    void *p[64];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 64; i++) {
            size_t n = rnd_size(&s);
            p[i] = malloc(n);
            if (!p[i]) {
                fail("malloc(%zu) failed in an adopting thread", n);
                return NULL;
            }
            pat_fill(p[i], n, (unsigned)n);
            void *q = realloc(p[i], n + 1);
            if (!q) fail("realloc(%zu) failed in an adopting thread", n + 1);
            else p[i] = q;
            if (!pat_ok(p[i], n, (unsigned)n)) fail("adopter's block corrupted");
        }
        for (int i = 0; i < 64; i++) free(p[i]);
    }
    return NULL;
}

static void concurrent_frees_to_exited_heaps(void) {
    reset_failures();
    size_t start = in_use_now();
    for (int round = 0; round < 15 && !g_failed; round++) {
        pthread_t o[OWNERS], f[FREERS], a[ADOPTERS];
        for (uintptr_t i = 0; i < OWNERS; i++)
            CHECK(pthread_create(&o[i], NULL, owner_thread, (void *)(i + (uintptr_t)round * 100)) ==
                  0);
        for (int i = 0; i < OWNERS; i++) pthread_join(o[i], NULL);
        CHECKF(!g_failed, "round %d: %s", round, g_msg);
        for (uintptr_t i = 0; i < FREERS; i++)
            CHECK(pthread_create(&f[i], NULL, freer_thread, (void *)i) == 0);
        for (uintptr_t i = 0; i < ADOPTERS; i++)
            CHECK(pthread_create(&a[i], NULL, adopter_thread,
                                 (void *)(i * 13 + (uintptr_t)round * 1000 + 1)) == 0);
        for (int i = 0; i < FREERS; i++) pthread_join(f[i], NULL);
        for (int i = 0; i < ADOPTERS; i++) pthread_join(a[i], NULL);
        CHECKF(!g_failed, "round %d: %s", round, g_msg);
    }
    size_t end = in_use_now();
    printf("# frees to exited heaps: in use %zu bytes before, %zu after 15 rounds of %d MiB\n",
           start, end, OWNERS * PER_OWNER * 1200 >> 20);
    /* everything was freed and every thread has exited: what a freer's last attempt to collect a
     * heap missed (another thread held it) waits in its list; a few hundred KiB at most */
    CHECKF(end <= start + ((size_t)2 << 20), "in use %zu bytes after the rounds, %zu before", end,
           start);
}

/* ---- pthread_exit from threads while others allocate ---- */

enum { SHARED = 512 };
static _Atomic(unsigned char *) shared[SHARED];
static _Atomic int bg_stop;

/* A header block (blk_fill) of a random size. */
static unsigned char *shared_block(uint64_t *s) {
    size_t n = rnd_size(s);
    if (n < sizeof(blk_hdr)) n = sizeof(blk_hdr);
    unsigned char *p = malloc(n);
    if (!p) return NULL;
    blk_fill(p, n, (unsigned)rnd(s));
    return p;
}
static void shared_put(unsigned k, unsigned char *q) {
    unsigned char *old = atomic_exchange(&shared[k], q);
    if (old) {
        if (!blk_ok(old)) fail("shared slot %u corrupted", k);
        free(old);
    }
}

static void *background(void *argp) {
    uint64_t s = (uint64_t)(uintptr_t)argp;
    while (!atomic_load_explicit(&bg_stop, memory_order_relaxed)) {
        unsigned char *q = shared_block(&s);
        if (!q) {
            fail("background malloc failed");
            return NULL;
        }
        shared_put((unsigned)(rnd(&s) % SHARED), q);
    }
    return NULL;
}

static void cleanup_free(void *p) { free(p); }

/* pthread_exit from `depth` calls down, with a live block per level that a cleanup handler frees
 * (called through a pointer: GCC takes a path that ends in pthread_exit for endless recursion) */
static void (*volatile exit_fn)(void *) = pthread_exit;
static void exit_deep(uint64_t *s, int depth, void *retval) {
    unsigned char *keep = shared_block(s);
    pthread_cleanup_push(cleanup_free, keep);
    if (depth > 0) exit_deep(s, depth - 1, retval);
    else exit_fn(retval);
    pthread_cleanup_pop(1);
}

static void *exiting_thread(void *argp) {
    uint64_t s = (uint64_t)(uintptr_t)argp;
    /* some blocks go to the shared slots (other threads free them), some old ones are freed here
     * (remote frees, pending in this thread's outbox when it exits) */
    for (int i = 0; i < 40; i++) {
        unsigned char *q = shared_block(&s);
        if (!q) {
            fail("malloc failed in an exiting thread");
            pthread_exit(NULL);
        }
        shared_put((unsigned)(rnd(&s) % SHARED), q);
    }
    void *ret = NULL;
    if (s % 2) {
        ret = shared_block(&s); /* the exit value: main frees it */
    }
    exit_deep(&s, (int)(rnd(&s) % 5), ret);
    return NULL; /* not reached */
}

static void pthread_exit_while_others_allocate(void) {
    reset_failures();
    atomic_store(&bg_stop, 0);
    pthread_t bg[4];
    for (uintptr_t i = 0; i < 4; i++)
        CHECK(pthread_create(&bg[i], NULL, background, (void *)(i * 31 + 1)) == 0);
    uint64_t s = 12;
    for (int i = 0; i < 400 && !g_failed; i += 4) {
        pthread_t t[4];
        for (int j = 0; j < 4; j++)
            CHECK(pthread_create(&t[j], NULL, exiting_thread, (void *)(uintptr_t)rnd(&s)) == 0);
        for (int j = 0; j < 4; j++) {
            void *ret;
            pthread_join(t[j], &ret);
            if (ret && !blk_ok(ret)) fail("a thread's exit value block was corrupted");
            free(ret);
        }
    }
    atomic_store(&bg_stop, 1);
    for (int i = 0; i < 4; i++) pthread_join(bg[i], NULL);
    for (unsigned k = 0; k < SHARED; k++) {
        unsigned char *p = atomic_exchange(&shared[k], NULL);
        if (p && !blk_ok(p)) fail("shared slot %u corrupted at the end", k);
        free(p);
    }
    CHECKF(!g_failed, "%s", g_msg);
}

/* A page a running thread kept (its class's only page, emptied once: its frees skip the slow
 * path from then on) still holds blocks when the thread exits; when another thread frees those,
 * the page, and its segment, go back without malloc_trim. */
enum { KEPT_N = 20 }; /* fewer than the page holds (32 blocks of 2 KiB in 64 KiB) */
static void *kept_blocks[KEPT_N];
static void *keeping_thread(void *unused) {
    void *once = malloc(2000); /* the class's first page, emptied: kept */
    th_use(once);
    free(once);
    for (unsigned i = 0; i < KEPT_N; i++) kept_blocks[i] = malloc(2000);
    for (unsigned i = 0; i < KEPT_N; i += 2) free(kept_blocks[i]); /* half freed here */
    return NULL;
}
/* In a process of its own (orphan heaps of earlier tests would hide it): exit status 1 if the
 * page stayed, holding its segment. */
static int mode_kept(void) {
    free(malloc(10)); /* the main thread's heap */
    struct strata_stats before, after;
    strata_get_stats(&before);
    pthread_t t;
    if (pthread_create(&t, NULL, keeping_thread, NULL) != 0) return 2;
    pthread_join(t, NULL);
    for (unsigned i = 1; i < KEPT_N; i += 2) free(kept_blocks[i]);
    strata_get_stats(&after);
    printf("segments %zu -> %zu\n", before.segments, after.segments);
    return after.segments > before.segments;
}
static void kept_page_of_exited_thread_goes_back(void) {
    /* without the heap profile: a sample taken in the thread would leave the profile heap a
     * segment of its own, which this count would take for the thread's */
    th_result r = th_self("kept", "profile_rate=0");
    CHECKF(r.exited && r.code == 0, "the exited thread's kept page holds its segment: %s (exit %d, "
           "signal %d) %s", r.out, r.code, r.sig, r.err);
}

/* ---- at the end ---- */

static void in_use_returns_to_start(void) {
    struct strata_stats st;
    char why[200];
    CHECKF(trimmed_stats(&st, 5, why, sizeof why) == 0, "%s", why);
    printf("# in use after malloc_trim: %zu bytes (%zu at the start), %zu heaps\n",
           st.in_use_bytes, baseline_in_use, st.heaps);
    CHECKF(st.in_use_bytes <= baseline_in_use + ((size_t)1 << 20),
           "in use %zu bytes after every block was freed (%zu at the start)", st.in_use_bytes,
           baseline_in_use);
}

int main(int argc, char **argv) {
    /* which blocks wait in an exiting thread's outbox, and what they count as in use: a block the
     * heap profile sampled goes to the profile heap at once */
    th_without_profile(argv);
    if (argc > 1 && !strcmp(argv[1], "kept")) return mode_kept();
    printf("# thread_exit\n");
    fflush(stdout);
    if (measure_baseline() != 0) return 1;
    RUN(threads_that_never_allocate);
    RUN(thread_that_only_frees);
    RUN(exit_sends_pending_remote_frees);
    RUN(malloc_trim_returns_after_a_thread_exits);
    RUN(destructors_allocate_after_thread_exit);
    RUN(c11_tss_destructor_hands_block_to_main);
    RUN(exited_threads_memory_is_reused);
    RUN(freed_after_exit_is_not_in_use);
    RUN(concurrent_frees_to_exited_heaps);
    RUN(pthread_exit_while_others_allocate);
    RUN(kept_page_of_exited_thread_goes_back);
    RUN(in_use_returns_to_start);
    return 0;
}
