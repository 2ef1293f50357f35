/*
 * fork.c — fork while other threads allocate and free.
 *
 * strata takes its locks around fork and, in the child, sets aside the heaps of the threads that
 * did not survive. The child must be able to do everything: read and free blocks those threads
 * allocated (their heaps may have been halfway through an update), malloc, calloc, realloc and
 * free blocks of every kind, huge ones included, create threads, fork again. A child that
 * deadlocks is killed by its alarm, and a child that finds corruption exits non-zero: either way
 * the test fails with what the child said.
 */
#include "harness.h"
#include "stress.h"

enum { CHILD_ALARM = 10 }; /* seconds a child may take */

/* In a child: say what went wrong on stderr (collected by th_child) and exit with `code`. */
__attribute__((format(printf, 2, 3), noreturn)) static void child_die(int code, const char *fmt,
                                                                      ...) {
    char buf[300];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t w = write(2, buf, (size_t)n);
    (void)w;
    _exit(code);
}

/* from 8 bytes (a block's header) to huge blocks */
static const size_band sizes[] = {{500, 8, 256}, {800, 257, 4096}, {940, 4097, 65536},
                                  {980, 65537, 140000}, {996, 140001, (size_t)3 << 20},
                                  {1000, (size_t)4 << 20, (size_t)6 << 20}};
static size_t rnd_size(uint64_t *s) { return rnd_size_from(s, sizes); }

/* A header block of n bytes from malloc, calloc or posix_memalign, chosen at random. */
static void *blk_alloc(uint64_t *s, size_t n) {
    void *p;
    unsigned r = (unsigned)(rnd(s) % 10);
    if (r == 0) {
        size_t align = (size_t)1 << rnd_range(s, 5, 16);
        if (posix_memalign(&p, align, n) != 0) return NULL;
        if ((uintptr_t)p % align) return NULL;
    } else if (r == 1) {
        p = calloc(1, n);
    } else {
        p = malloc(n);
    }
    if (p) blk_fill(p, n, (unsigned)rnd(s));
    return p;
}

/* ---- worker threads: a shared array of slots, replaced at random ----
 * Every block is a header block (blk_fill), so any thread can check it. */

enum { SLOTS = 256, WORKERS = 4, FIXED = 48 };
static _Atomic(void *) slots[SLOTS];
static void *fixed[WORKERS + 1][FIXED]; /* never changed once made; [WORKERS] is main's */
static _Atomic int stop, ready;

static void make_fixed(unsigned w, uint64_t *s) {
    for (unsigned i = 0; i < FIXED; i++) {
        size_t n = i == 0 ? (size_t)5 << 20 : i == 1 ? (size_t)1 << 20 : rnd_size(s);
        fixed[w][i] = blk_alloc(s, n);
        if (!fixed[w][i]) fail("allocation of %zu bytes failed", n);
    }
}

static void *worker(void *argp) {
    uint64_t s = (uint64_t)(uintptr_t)argp * 2654435761u + 17;
    make_fixed((unsigned)(uintptr_t)argp, &s);
    atomic_fetch_add(&ready, 1);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        unsigned k = (unsigned)(rnd(&s) % SLOTS);
        if (rnd(&s) % 8 == 0) { /* realloc someone's block */
            void *old = atomic_exchange(&slots[k], NULL);
            if (!old) continue;
            if (!blk_ok(old)) {
                fail("worker: slot %u corrupted before realloc", k);
                return NULL;
            }
            size_t n = rnd_size(&s);
            blk_hdr h;
            memcpy(&h, old, sizeof h);
            void *q = realloc(old, n);
            if (!q) {
                fail("worker: realloc to %zu failed", n);
                return NULL;
            }
            if (!blk_prefix_ok(q, h, n)) {
                fail("worker: realloc %u -> %zu lost the contents", h.size, n);
                return NULL;
            }
            blk_fill(q, n, (unsigned)rnd(&s));
            old = atomic_exchange(&slots[k], q);
            if (old) {
                if (!blk_ok(old)) {
                    fail("worker: slot %u corrupted", k);
                    return NULL;
                }
                free(old);
            }
            continue;
        }
        void *q = blk_alloc(&s, rnd_size(&s));
        if (!q) {
            fail("worker: allocation failed");
            return NULL;
        }
        void *old = atomic_exchange(&slots[k], q);
        if (old) {
            if (!blk_ok(old)) {
                fail("worker: slot %u corrupted", k);
                return NULL;
            }
            free(old);
        }
    }
    return NULL;
}

static pthread_t workers[WORKERS];

static void start_workers(void) {
    reset_failures();
    atomic_store(&stop, 0);
    atomic_store(&ready, 0);
    uint64_t s = 99;
    make_fixed(WORKERS, &s);
    for (uintptr_t i = 0; i < WORKERS; i++)
        if (pthread_create(&workers[i], NULL, worker, (void *)i) != 0) abort();
    while (atomic_load(&ready) < WORKERS) usleep(1000);
}

/* Stop the workers; the main thread checks and frees everything they left. */
static void stop_workers(void) {
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++) pthread_join(workers[i], NULL);
    for (unsigned k = 0; k < SLOTS; k++) {
        void *p = atomic_exchange(&slots[k], NULL);
        if (p && !blk_ok(p)) fail("slot %u corrupted in the parent", k);
        free(p);
    }
    for (unsigned w = 0; w <= WORKERS; w++)
        for (unsigned i = 0; i < FIXED; i++) {
            if (fixed[w][i] && !blk_ok(fixed[w][i]))
                fail("fixed block %u of thread %u corrupted in the parent", i, w);
            free(fixed[w][i]);
            fixed[w][i] = NULL;
        }
}

/* ---- what a child does ---- */

typedef struct {
    void *from_parent; /* a block of the child's main thread, freed by its thread */
    void *result;      /* a block the thread allocates, freed by the child's main thread */
    int bad;
} child_thread_arg;

static void *child_thread(void *argp) {
    child_thread_arg *a = argp;
    uint64_t s = (uint64_t)(uintptr_t)argp;
    if (!blk_ok(a->from_parent)) a->bad = 1;
    free(a->from_parent);
    void *keep[32];
    for (int i = 0; i < 32; i++) {
        keep[i] = blk_alloc(&s, i == 5 ? (size_t)5 << 20 : rnd_size(&s));
        if (!keep[i]) {
            a->bad = 2;
            return NULL;
        }
    }
    for (int i = 0; i < 32; i++) {
        if (!blk_ok(keep[i])) a->bad = 3;
        free(keep[i]);
    }
    a->result = blk_alloc(&s, rnd_size(&s));
    return NULL;
}

static void child_exercise(uint64_t seed, int level);

static void child_body(void *argp) {
    uint64_t s = (uint64_t)(uintptr_t)argp | 1;
    alarm(CHILD_ALARM);
    /* 1. blocks of the parent's threads: intact, and freeable or reallocatable here */
    for (unsigned w = 0; w <= WORKERS; w++)
        for (unsigned i = 0; i < FIXED; i++) {
            void *p = fixed[w][i];
            if (!p) continue;
            if (!blk_ok(p)) child_die(10, "fixed block %u of thread %u corrupted in the child", i, w);
            if (i % 3 == 0) {
                free(p);
            } else if (i % 3 == 1) {
                size_t old = blk_size(p), n = rnd_size(&s);
                blk_hdr p_hdr;
                memcpy(&p_hdr, p, sizeof p_hdr);
                unsigned char *q = realloc(p, n);
                if (!q) child_die(11, "realloc of a parent block %zu -> %zu failed", old, n);
                if (!blk_prefix_ok(q, p_hdr, n))
                    child_die(12, "realloc of a parent block %zu -> %zu lost its contents", old, n);
                blk_fill(q, n, (unsigned)n);
                free(q);
            }
        }
    for (unsigned k = 0; k < SLOTS; k++) {
        void *p = atomic_load(&slots[k]);
        if (!p) continue;
        if (!blk_ok(p)) child_die(13, "slot %u (a worker's block) corrupted in the child", k);
        free(p);
    }
    child_exercise(s, 0);
}

/* malloc and friends, threads, and (at level 0) a grandchild. */
static void child_exercise(uint64_t s, int level) {
    enum { N = 64 };
    void *b[N];
    for (int i = 0; i < N; i++) {
        size_t n = i % 16 == 3 ? rnd_range(&s, (size_t)4 << 20, (size_t)9 << 20) : rnd_size(&s);
        b[i] = blk_alloc(&s, n);
        if (!b[i]) child_die(20, "allocation of %zu bytes failed in the child", n);
    }
    for (int round = 0; round < 4; round++)
        for (int i = 0; i < N; i++) {
            if (!blk_ok(b[i])) child_die(21, "block %d corrupted in the child", i);
            size_t n = rnd_size(&s);
            if (round == 2) {
                size_t old = blk_size(b[i]);
                blk_hdr h;
                memcpy(&h, b[i], sizeof h);
                void *q = realloc(b[i], n);
                if (!q) child_die(22, "realloc %zu -> %zu failed in the child", old, n);
                if (!blk_prefix_ok(q, h, n))
                    child_die(30, "realloc %zu -> %zu lost the contents in the child", old, n);
                b[i] = q;
                blk_fill(q, n, (unsigned)n);
            } else {
                free(b[i]);
                b[i] = blk_alloc(&s, n);
                if (!b[i]) child_die(23, "allocation of %zu bytes failed in the child", n);
            }
        }
    /* threads in the child */
    pthread_t t[2];
    child_thread_arg a[2];
    for (int i = 0; i < 2; i++) {
        a[i].from_parent = b[i];
        b[i] = NULL;
        a[i].result = NULL;
        a[i].bad = 0;
        if (pthread_create(&t[i], NULL, child_thread, &a[i]) != 0)
            child_die(24, "pthread_create failed in the child");
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        if (a[i].bad) child_die(25, "a thread of the child found corruption (%d)", a[i].bad);
        if (!a[i].result || !blk_ok(a[i].result)) child_die(26, "a child thread's block is bad");
        free(a[i].result);
    }
    if (level == 0) {
        /* and a grandchild, while this child's heap has seen all of the above */
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) child_die(27, "fork in the child failed");
        if (pid == 0) {
            alarm(CHILD_ALARM);
            for (int i = 2; i < N; i++) {
                if (!blk_ok(b[i])) _exit(31);
                free(b[i]);
            }
            child_exercise(s + 1, 1);
            _exit(0);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            child_die(28, "the grandchild failed (status 0x%x)", st);
    }
    for (int i = 2; i < N; i++) {
        if (!blk_ok(b[i])) child_die(29, "block %d corrupted in the child at the end", i);
        free(b[i]);
    }
}

/* Run child_body in a forked child; describe a failure in why. */
static int fork_once(uint64_t seed, char *why, size_t cap) {
    th_result r = th_child(child_body, (void *)(uintptr_t)seed);
    if (r.exited && r.code == 0) return 0;
    if (r.signaled && r.sig == SIGALRM)
        snprintf(why, cap, "child deadlocked (killed by its %d s alarm); it said: %.150s",
                 CHILD_ALARM, r.err);
    else if (r.signaled)
        snprintf(why, cap, "child killed by signal %d (%s); it said: %.200s", r.sig,
                 strsignal(r.sig), r.err);
    else
        snprintf(why, cap, "child exited with %d: %.200s", r.code, r.err);
    return -1;
}

static void fork_while_threads_allocate(void) {
    SKIP_IF_EMULATED(TH_EMU_FORK);
    start_workers();
    char why[400] = "";
    int bad = -1;
    uint64_t s = 5;
    for (int i = 0; i < 50 && bad < 0; i++) {
        if (fork_once(rnd(&s), why, sizeof why) != 0) bad = i;
        usleep((useconds_t)(rnd(&s) % 3000));
    }
    stop_workers();
    CHECKF(bad < 0, "fork %d of 50: %s", bad, why);
    CHECKF(!g_failed, "%s", g_msg);
}

/* ---- fork from a thread other than main ---- */

static char thread_why[400];
static _Atomic int thread_bad = -1;

static void *forker(void *unused) {
    uint64_t s = 6;
    for (int i = 0; i < 25; i++) {
        /* this thread allocates too, so its own heap is busy when it forks */
        void *p = blk_alloc(&s, rnd_size(&s));
        if (fork_once(rnd(&s), thread_why, sizeof thread_why) != 0) {
            atomic_store(&thread_bad, i);
            free(p);
            break;
        }
        if (!blk_ok(p)) {
            snprintf(thread_why, sizeof thread_why, "the forking thread's block was corrupted");
            atomic_store(&thread_bad, i);
        }
        free(p);
        usleep((useconds_t)(rnd(&s) % 3000));
    }
    return NULL;
}

static void fork_from_another_thread(void) {
    SKIP_IF_EMULATED(TH_EMU_FORK);
    start_workers();
    atomic_store(&thread_bad, -1);
    pthread_t t;
    if (pthread_create(&t, NULL, forker, NULL) != 0) abort();
    /* the main thread keeps allocating and freeing meanwhile */
    uint64_t s = 7;
    void *mine[64] = {0};
    for (int i = 0; i < 4000 && !g_failed; i++) {
        int k = (int)(rnd(&s) % 64);
        if (mine[k] && !blk_ok(mine[k])) fail("main's block corrupted");
        free(mine[k]);
        mine[k] = blk_alloc(&s, rnd_size(&s));
        if (i % 64 == 0) usleep(500);
    }
    pthread_join(t, NULL);
    for (int k = 0; k < 64; k++) free(mine[k]);
    stop_workers();
    CHECKF(thread_bad < 0, "fork %d from a thread: %s", (int)thread_bad, thread_why);
    CHECKF(!g_failed, "%s", g_msg);
}

/* ---- fork while threads start and exit (heaps become orphans and are adopted) ---- */

static _Atomic int churn_stop;

static void *short_thread(void *argp) {
    uint64_t s = (uint64_t)(uintptr_t)argp;
    void *p[8];
    for (int i = 0; i < 8; i++) p[i] = blk_alloc(&s, rnd_size(&s));
    for (int i = 0; i < 8; i++) {
        if (p[i] && !blk_ok(p[i])) fail("short thread's block corrupted");
        if (i == 7) return p[i]; /* freed by the thread that joins */
        free(p[i]);
    }
    return NULL;
}

static void *churner(void *unused) {
    uintptr_t n = 1;
    while (!atomic_load(&churn_stop)) {
        pthread_t t[3];
        for (int i = 0; i < 3; i++)
            if (pthread_create(&t[i], NULL, short_thread, (void *)(n++ * 7919)) != 0) abort();
        for (int i = 0; i < 3; i++) {
            void *r;
            pthread_join(t[i], &r);
            if (r && !blk_ok(r)) fail("a short thread's block was corrupted");
            free(r);
        }
    }
    return NULL;
}

static void fork_while_threads_come_and_go(void) {
    SKIP_IF_EMULATED(TH_EMU_FORK);
    start_workers();
    atomic_store(&churn_stop, 0);
    pthread_t c[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&c[i], NULL, churner, NULL) != 0) abort();
    char why[400] = "";
    int bad = -1;
    uint64_t s = 8;
    for (int i = 0; i < 30 && bad < 0; i++) {
        if (fork_once(rnd(&s), why, sizeof why) != 0) bad = i;
        usleep((useconds_t)(rnd(&s) % 2000));
    }
    atomic_store(&churn_stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(c[i], NULL);
    stop_workers();
    CHECKF(bad < 0, "fork %d of 30: %s", bad, why);
    CHECKF(!g_failed, "%s", g_msg);
}

/* ---- a single-threaded parent: the child's heap is the parent's, nothing set aside ---- */

static void fork_single_threaded(void) {
    reset_failures();
    uint64_t s = 9;
    make_fixed(WORKERS, &s);
    char why[400] = "";
    for (int i = 0; i < 5; i++) CHECKF(fork_once(rnd(&s), why, sizeof why) == 0, "%s", why);
    for (unsigned i = 0; i < FIXED; i++) {
        CHECK(blk_ok(fixed[WORKERS][i]));
        free(fixed[WORKERS][i]);
        fixed[WORKERS][i] = NULL;
    }
}

int main(void) {
    RUN(fork_single_threaded);
    RUN(fork_while_threads_allocate);
    RUN(fork_from_another_thread);
    RUN(fork_while_threads_come_and_go);
    return 0;
}
