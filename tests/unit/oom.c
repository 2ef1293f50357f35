/*
 * oom.c — out of memory under RLIMIT_AS: NULL with errno ENOMEM, never a crash, and allocation
 * works again once memory is freed. Each case runs in a child with its own limit.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
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

static void run_case(void (*fn)(void *), const char *name) {
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
    return 0;
}
