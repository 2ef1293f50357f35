/*
 * stress.h — helpers shared by the concurrency test programs (threads, churn, fork, thread_exit).
 * Include it after harness.h.
 *
 * Failures seen by worker threads: fail(fmt, ...) records the first one in g_msg and sets
 * g_failed; the main thread reports it (CHECKF(!g_failed, "%s", g_msg)). reset_failures() at the
 * start of each test.
 *
 * Random numbers: rnd(&s) is an xorshift generator with its state in s; rnd_range(&s, lo, hi)
 * draws from [lo, hi]. rnd_size_from(&s, bands) draws a block size from a program's mix of sizes:
 * an array of size_band {below, lo, hi}, the last with below = 1000; a draw r in [0, 1000) picks
 * the first band with r < below, and the size is drawn from [lo, hi].
 *
 * Block contents: byte i of a block with seed s is (s + i * 131) & 255, as th_fill writes it.
 * Blocks up to 4 KiB are written whole; bigger ones at their first and last KiB and 16 bytes every
 * 64 KiB, so that multi-megabyte blocks do not cost a page fault per page. pat_fill writes the
 * pattern, pat_ok checks it, pat_prefix_ok checks the first `lim` bytes (what realloc must have
 * kept); pat and pat_span are the general forms (a range of bytes, write or check).
 *
 * Header blocks: a blk_hdr {size, seed} in the first 8 bytes and the pattern from byte 8 on, so a
 * block can be checked by a thread that did not make it. blk_fill writes one, blk_ok checks one
 * (header sane, pattern intact), blk_prefix_ok checks what realloc kept of a block whose header
 * was h, blk_size reads the size.
 *
 * Statistics: heaps_now() and in_use_now() read strata_get_stats. trimmed_stats forks a child
 * that runs malloc_trim(0) under an alarm and sends back its statistics, so that a malloc_trim
 * that never returns fails one test instead of hanging the program. measure_baseline(), in main
 * before the tests, sets baseline_in_use (the bytes in use after malloc_trim) or prints "not ok
 * baseline".
 *
 * Blocks handed to the main thread: hand_over(p, n, seed) from any thread queues a pattern-filled
 * block (or frees it if the queue is full); free_handed() in the main thread checks and frees them.
 */
#ifndef STRATA_TEST_STRESS_H
#define STRATA_TEST_STRESS_H

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "harness.h"
#include "strata.h"

/* ---- failures seen by worker threads: the first one is reported by the main thread ---- */

static _Atomic int g_failed;
static char g_msg[400];

__attribute__((format(printf, 1, 2), unused)) static void fail(const char *fmt, ...) {
    if (atomic_exchange(&g_failed, 1)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
}

__attribute__((unused)) static void reset_failures(void) {
    atomic_store(&g_failed, 0);
    g_msg[0] = '\0';
}

/* ---- random numbers and sizes ---- */

static inline uint64_t rnd(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline size_t rnd_range(uint64_t *s, size_t lo, size_t hi) { /* [lo, hi] */
    return lo + (size_t)(rnd(s) % (hi - lo + 1));
}

typedef struct {
    unsigned below; /* of 1000; the last band has 1000 */
    size_t lo, hi;
} size_band;

static inline size_t rnd_size_from(uint64_t *s, const size_band *bands) {
    unsigned r = (unsigned)(rnd(s) % 1000);
    while (r >= bands->below) bands++;
    return rnd_range(s, bands->lo, bands->hi);
}

/* ---- block contents ---- */

static inline int pat_span(unsigned char *p, size_t from, size_t to, unsigned seed, int write) {
    for (size_t i = from; i < to; i++) {
        unsigned char v = (unsigned char)(seed + i * 131);
        if (write) p[i] = v;
        else if (p[i] != v) return 0;
    }
    return 1;
}

/* Write or check the pattern of an n-byte block over bytes [from, lim) (of those sampled). */
static inline int pat(void *block, size_t n, size_t from, size_t lim, unsigned seed, int write) {
    unsigned char *p = block;
    if (lim > n) lim = n;
    if (n <= 4096) return pat_span(p, from, lim, seed, write);
    if (!pat_span(p, from, lim < 1024 ? lim : 1024, seed, write)) return 0;
    for (size_t o = 65536; o + 16 <= n - 1024; o += 65536)
        if (o + 16 <= lim && !pat_span(p, o, o + 16, seed, write)) return 0;
    if (n - 1024 < lim && !pat_span(p, n - 1024, lim, seed, write)) return 0;
    return 1;
}
static inline void pat_fill(void *p, size_t n, unsigned seed) { pat(p, n, 0, n, seed, 1); }
static inline int pat_ok(void *p, size_t n, unsigned seed) { return pat(p, n, 0, n, seed, 0); }
static inline int pat_prefix_ok(void *p, size_t n, size_t lim, unsigned seed) {
    return pat(p, n, 0, lim, seed, 0);
}

/* ---- header blocks: {size, seed}, then the pattern from byte 8 ---- */

typedef struct {
    uint32_t size, seed;
} blk_hdr;

static inline void blk_fill(void *b, size_t n, unsigned seed) {
    blk_hdr h = {(uint32_t)n, seed};
    memcpy(b, &h, sizeof h);
    pat(b, n, sizeof h, n, seed, 1);
}
/* 1 if b is intact */
static inline int blk_ok(void *b) {
    blk_hdr h;
    memcpy(&h, b, sizeof h);
    if (h.size < sizeof h || h.size > malloc_usable_size(b)) return 0;
    return pat(b, h.size, sizeof h, h.size, h.seed, 0);
}
/* After realloc(b, n) of a block whose header was h: the first min(n, h.size) bytes kept. */
static inline int blk_prefix_ok(void *b, blk_hdr h, size_t n) {
    if (memcmp(b, &h, sizeof h) != 0) return 0;
    return pat(b, h.size, sizeof h, n, h.seed, 0);
}
static inline size_t blk_size(void *b) {
    blk_hdr h;
    memcpy(&h, b, sizeof h);
    return h.size;
}

/* ---- statistics ---- */

static inline size_t heaps_now(void) {
    struct strata_stats st;
    strata_get_stats(&st);
    return st.heaps;
}
/* What strata holds by design without a block in it: memory it caches for reuse (empty segments,
 * free spans in segments its heaps hold; how much of it is resident when the last block goes
 * depends on which preempted thread freed what last). 0 on another malloc. */
#pragma weak strata_get_stats
static inline long kept_by_design_kb(void) {
    if (!strata_get_stats) return 0;
    struct strata_stats s;
    strata_get_stats(&s);
    return (long)((s.free_bytes + s.cached_segments * ((size_t)4 << 20)) / 1024);
}
static inline size_t in_use_now(void) {
    struct strata_stats st;
    strata_get_stats(&st);
    return st.in_use_bytes;
}

/* Fork; the child calls malloc_trim(0) (alarm after `secs` seconds) and sends back its stats.
 * Returns 0 and fills *out, or -1 with a reason in why. */
__attribute__((unused)) static int trimmed_stats(struct strata_stats *out, unsigned secs,
                                                 char *why, size_t cap) {
    int pfd[2];
    if (pipe(pfd) != 0) abort();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) abort();
    if (pid == 0) {
        close(pfd[0]);
        signal(SIGALRM, SIG_DFL);
        alarm(secs);
        malloc_trim(0);
        struct strata_stats s;
        strata_get_stats(&s);
        ssize_t w = write(pfd[1], &s, sizeof s);
        _exit(w == (ssize_t)sizeof s ? 0 : 1);
    }
    close(pfd[1]);
    size_t got = 0;
    while (got < sizeof *out) {
        ssize_t n = read(pfd[0], (char *)out + got, sizeof *out - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) {
        snprintf(why, cap, "malloc_trim(0) did not return within %u s", secs);
        return -1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || got != sizeof *out) {
        snprintf(why, cap, "stats child failed (status 0x%x)", st);
        return -1;
    }
    return 0;
}

__attribute__((unused)) static size_t baseline_in_use;

/* In main, before the tests: baseline_in_use from trimmed_stats; 0, or -1 after printing
 * "not ok baseline: why". */
__attribute__((unused)) static int measure_baseline(void) {
    struct strata_stats st;
    char why[200];
    if (trimmed_stats(&st, 5, why, sizeof why) != 0) {
        printf("not ok baseline: %s\n", why);
        return -1;
    }
    baseline_in_use = st.in_use_bytes;
    return 0;
}

/* ---- blocks handed to the main thread ---- */

typedef struct {
    void *p;
    size_t n;
    unsigned seed;
} handed;

enum { HAND_CAP = 16384 };
__attribute__((unused)) static handed hand[HAND_CAP];
__attribute__((unused)) static unsigned hand_count;
__attribute__((unused)) static pthread_mutex_t hand_mu = PTHREAD_MUTEX_INITIALIZER;

__attribute__((unused)) static void hand_over(void *p, size_t n, unsigned seed) {
    pthread_mutex_lock(&hand_mu);
    if (hand_count < HAND_CAP) hand[hand_count++] = (handed){p, n, seed};
    else free(p); /* the main thread is behind: free it here instead */
    pthread_mutex_unlock(&hand_mu);
}

/* The main thread checks and frees the blocks handed to it. */
__attribute__((unused)) static void free_handed(void) {
    pthread_mutex_lock(&hand_mu);
    for (unsigned i = 0; i < hand_count; i++) {
        if (!pat_ok(hand[i].p, hand[i].n, hand[i].seed))
            fail("block %p of %zu bytes handed to main was corrupted", hand[i].p, hand[i].n);
        free(hand[i].p);
    }
    hand_count = 0;
    pthread_mutex_unlock(&hand_mu);
}

#endif
