/*
 * stats.c — the counters behind malloc_stats and `strata stats`: mallocs, frees and live blocks
 * per size class, from every thread, and the large and huge kinds.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "strata.h"

/* The numbers on the report line of a class, e.g. "112": mallocs, frees, live. */
static bool class_line(const char *report, const char *cls, long *mallocs, long *frees, long *live) {
    char key[32];
    snprintf(key, sizeof key, "\n%*s ", 12, cls); /* "  " + class right-aligned in 10 columns */
    const char *p = strstr(report, key);
    if (!p) return false;
    return sscanf(p + strlen(key), "%ld %ld %ld", mallocs, frees, live) == 3;
}

enum { N = 3000, FREED = 1000 };
static void *blocks[N];

static void *free_half_elsewhere(void *arg) {
    free(malloc(8)); /* a heap of its own */
    for (int i = FREED; i < FREED + 500; i++) free(blocks[i]);
    return arg;
}

static void report_in_child(void *arg) {
    (void)arg;
    for (int i = 0; i < N; i++) blocks[i] = malloc(100); /* class 112 */
    for (int i = 0; i < FREED; i++) free(blocks[i]);
    pthread_t t; /* 500 more freed by another thread */
    pthread_create(&t, NULL, free_half_elsewhere, NULL);
    pthread_join(t, NULL);
    mallopt(M_MMAP_THRESHOLD, 1 << 20); /* room for a large block: a span of its own */
    void *big = malloc(300 << 10), *huge = malloc(8 << 20);
    th_use(big);
    th_use(huge);
    malloc_stats();
    free(big);
    free(huge);
}

static void per_class_counts_in_malloc_stats(void) {
    th_result r = th_child(report_in_child, NULL);
    CHECK(r.exited && r.code == 0);
    long m = 0, f = 0, l = 0;
    CHECKF(class_line(r.err, "112", &m, &f, &l), "no line for class 112 in:\n%s", r.err);
    printf("# class 112: %ld mallocs, %ld frees, %ld live\n", m, f, l);
    CHECKF(m >= N && m < N + 50, "%ld mallocs of class 112, expected %d", m, N);
    CHECKF(f >= FREED + 500 && f < FREED + 550, "%ld frees of class 112, expected %d", f,
           FREED + 500);
    CHECKF(l == m - f, "live %ld is not mallocs %ld - frees %ld", l, m, f);
    CHECKF(class_line(r.err, "large", &m, &f, &l) && m >= 1 && l >= 1, "large blocks: %.400s", strstr(r.err, " calls") ? strstr(r.err, " calls") : r.err);
    CHECKF(strstr(r.err, "huge blocks") && class_line(r.err, "huge", &m, &f, &l) && m >= 1 && l >= 1,
           "huge blocks:\n%s", r.err);
    CHECK(strstr(r.err, "resident") != NULL);
}

int main(void) {
    RUN(per_class_counts_in_malloc_stats);
    return 0;
}
