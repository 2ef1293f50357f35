/*
 * workload.h — what every benchmark workload shares.
 *
 * A workload does a fixed amount of work (scaled by --scale), checks its own results, and ends
 * with one line for bench/driver:
 *
 *     result time=SECONDS ops=N peak_rss_kb=K check=ok [name=value ...]
 *
 * `time` covers the work only (not process start-up); `ops` counts allocation calls, so the
 * driver can report instructions per operation; `peak_rss_kb` is the process's peak resident set
 * so far (the driver takes the same figure from wait4). A failed check prints why on stderr and
 * exits 1: a broken allocator never looks fast.
 *
 *   workload [--scale X] [--threads N] [MODE]
 */
#ifndef STRATA_BENCH_WORKLOAD_H
#define STRATA_BENCH_WORKLOAD_H

#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    double scale;      /* multiplies the amount of work */
    int threads;       /* for multi-thread workloads */
    const char *mode;  /* workload-specific variant, or "" */
} wl_args;

static wl_args wl_parse(int argc, char **argv) {
    wl_args a = {1.0, 2, ""};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--scale") && i + 1 < argc) a.scale = atof(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) a.threads = atoi(argv[++i]);
        else if (argv[i][0] != '-') a.mode = argv[i];
        else {
            fprintf(stderr, "usage: %s [--scale X] [--threads N] [MODE]\n", argv[0]);
            exit(2);
        }
    }
    if (a.scale <= 0 || a.threads < 1) {
        fprintf(stderr, "%s: bad --scale or --threads\n", argv[0]);
        exit(2);
    }
    return a;
}

/* n scaled, at least 1 */
static inline uint64_t wl_scaled(uint64_t n, double scale) {
    double v = (double)n * scale;
    return v < 1 ? 1 : (uint64_t)v;
}

static inline double wl_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* xorshift64*: fast, deterministic per seed */
static inline uint64_t wl_rnd(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}
static inline uint64_t wl_rnd_range(uint64_t *s, uint64_t lo, uint64_t hi) {
    return lo + wl_rnd(s) % (hi - lo + 1);
}

static inline long wl_rss_kb(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = -1;
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

__attribute__((noreturn, unused, format(printf, 1, 2))) static void wl_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "check failed: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* A block's identity written at both ends (and its size, once), so that a check before free
 * catches overlapping blocks and stray writes without touching every byte. */
typedef struct {
    uint64_t tag;
    uint64_t size;
} wl_head;

static inline void wl_stamp(void *p, size_t n, uint64_t tag) {
    if (n >= sizeof(wl_head)) {
        wl_head h = {tag, n};
        memcpy(p, &h, sizeof h);
        if (n >= 2 * sizeof(wl_head)) memcpy((char *)p + n - sizeof tag, &tag, sizeof tag);
    } else if (n) {
        memset(p, (int)(tag & 0xff), n);
    }
}
static inline int wl_stamped(const void *p, size_t n, uint64_t tag) {
    if (n >= sizeof(wl_head)) {
        wl_head h;
        memcpy(&h, p, sizeof h);
        if (h.tag != tag || h.size != n) return 0;
        if (n >= 2 * sizeof(wl_head)) {
            uint64_t t;
            memcpy(&t, (const char *)p + n - sizeof t, sizeof t);
            if (t != tag) return 0;
        }
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)p)[i] != (unsigned char)(tag & 0xff)) return 0;
    return 1;
}

/* Print the result line. Extra fields, if any, as a format string of " name=value" pairs. */
__attribute__((format(printf, 3, 4))) static void wl_result(double secs, uint64_t ops,
                                                             const char *fmt, ...) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("result time=%.6f ops=%llu peak_rss_kb=%ld check=ok", secs, (unsigned long long)ops,
           ru.ru_maxrss);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
    }
    printf("\n");
    fflush(stdout);
}

/* Run fn in n threads (argument: 1..n, as a pointer-sized integer); returns the seconds taken. */
__attribute__((unused)) static double wl_threads(int n, void *(*fn)(void *)) {
    enum { MAX = 512 };
    pthread_t t[MAX];
    if (n > MAX) n = MAX;
    double t0 = wl_now();
    for (long i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, fn, (void *)(i + 1)) != 0) wl_fail("pthread_create");
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    return wl_now() - t0;
}

/* Keep the compiler from deleting allocations whose results look unused. */
static void *volatile wl_sink;

#endif
