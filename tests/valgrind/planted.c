/*
 * planted.c — one bug per run in strata's explicit allocators, chosen by argv[1], for memcheck
 * (tests/valgrind.sh runs it under `valgrind --error-exitcode=9`); "clean" works every allocator
 * hard without a bug, and must give no report at all: strata's own reads and writes of its
 * bookkeeping (free-list links in free pages, a free object's key, a pool's chunk headers) must
 * not be taken for the program's. Prints "not caught: BUG" after the bug: memcheck lets the run go
 * on, and the script looks at its report.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"

static volatile char sink;

/* ---- clean: everything, many times ---- */

static int ctors, dtors;
static void ctor(void *p) {
    memset(p, 0, 40);
    ctors++;
}
static void dtor(void *p) {
    if (((char *)p)[5] != 0) abort(); /* constructed state kept */
    dtors++;
}
static void cleanup(void *arg) { ++*(int *)arg; }

static void pools(void) {
    int cleaned = 0;
    strata_pool *p = strata_pool_create(NULL);
    for (int round = 0; round < 3; round++) {
        strata_pool *child = strata_pool_create(p);
        strata_pool_cleanup(p, cleanup, &cleaned);
        for (int i = 0; i < 20000; i++) {
            size_t n = (size_t)(i * 37 % 700) + (i % 1000 == 0 ? 9000 : 0); /* some large blocks */
            char *q = i % 3 ? strata_pool_alloc(i % 2 ? p : child, n) : strata_pool_aligned_alloc(p, 64, n);
            if (!q) abort();
            memset(q, i, n);
            if (n && q[n - 1] != (char)i) abort();
        }
        char *s = strata_pool_strdup(child, "a string");
        int *z = strata_pool_calloc(p, 100, sizeof *z);
        if (strcmp(s, "a string") || z[99]) abort();
        strata_pool_reset(p); /* destroys the child */
    }
    strata_pool_destroy(p);
    if (cleaned != 3) abort();
}

static void *cache_thread(void *arg) {
    strata_cache *c = arg;
    void *objs[500];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 500; i++) {
            if (!(objs[i] = strata_cache_alloc(c))) abort();
            if (((char *)objs[i])[5] != 0) abort();
            ((char *)objs[i])[0] = 1;
        }
        for (int i = 0; i < 500; i++) strata_cache_free(c, objs[i]);
    }
    return NULL;
}

static void caches(void) {
    size_t sizes[] = {1, 8, 20, 24, 100, 4000};
    for (int k = 0; k < 6; k++) {
        strata_cache *c = strata_cache_create("plain", sizes[k], 0, NULL, NULL);
        void *objs[3000];
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < 3000; i++) {
                if (!(objs[i] = strata_cache_alloc(c))) abort();
                memset(objs[i], i, sizes[k]);
            }
            for (int i = 0; i < 3000; i += 2) strata_cache_free(c, objs[i]);
            for (int i = 1; i < 3000; i += 2) strata_cache_free(c, objs[i]);
        }
        strata_cache_shrink(c);
        strata_cache_destroy(c);
    }
    strata_cache *c = strata_cache_create("constructed", 40, 64, ctor, dtor);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, cache_thread, c);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    cache_thread(c);
    strata_cache_destroy(c);
    if (ctors == 0 || dtors != ctors) abort();
}

static void pages(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    strata_pages *pa = strata_pages_create(8, 0);
    void *b[200];
    unsigned order[200];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 200; i++) {
            order[i] = (unsigned)(i * 7 + round) % 5;
            if (!(b[i] = strata_pages_alloc(i % 4 ? pa : NULL, order[i]))) abort();
            memset(b[i], i, page << order[i]);
        }
        for (int i = 0; i < 200; i += 3) strata_pages_free(i % 4 ? pa : NULL, b[i], order[i]);
        for (int i = 1; i < 200; i += 3) strata_pages_free(i % 4 ? pa : NULL, b[i], order[i]);
        for (int i = 2; i < 200; i += 3) strata_pages_free(i % 4 ? pa : NULL, b[i], order[i]);
    }
    strata_pages_trim(NULL);
    strata_pages_destroy(pa);
}

/* ---- the bugs ---- */

int main(int argc, char **argv) {
    const char *bug = argc > 1 ? argv[1] : "clean";
    if (!strcmp(bug, "clean")) {
        pools();
        caches();
        pages();
        printf("clean: done\n");
        return 0;
    }
    strata_pool *pool = strata_pool_create(NULL);
    strata_cache *cache = strata_cache_create("planted", 20, 0, NULL, NULL);
    if (!strcmp(bug, "pool-read-after-reset")) {
        char *q = strata_pool_alloc(pool, 24);
        memset(q, 1, 24);
        strata_pool_reset(pool);
        sink = q[3];
    } else if (!strcmp(bug, "pool-large-read-after-reset")) { /* a block of its own, gone at reset */
        char *q = strata_pool_alloc(pool, 9000);
        memset(q, 1, 9000);
        strata_pool_reset(pool);
        sink = q[3];
    } else if (!strcmp(bug, "pool-read-after-destroy")) {
        char *q = strata_pool_alloc(pool, 24);
        memset(q, 1, 24);
        strata_pool_destroy(pool);
        sink = q[3];
    } else if (!strcmp(bug, "pool-overflow")) { /* by one byte, where the next block would start */
        char *q = strata_pool_alloc(pool, 16);
        if (!strata_pool_alloc(pool, 16)) abort();
        q[16] = 1;
    } else if (!strcmp(bug, "cache-read-after-free")) {
        char *o = strata_cache_alloc(cache);
        memset(o, 1, 20);
        strata_cache_free(cache, o);
        sink = o[3];
    } else if (!strcmp(bug, "cache-overflow")) { /* into the slot's last 4 bytes */
        char *o = strata_cache_alloc(cache);
        o[20] = 1;
    } else if (!strcmp(bug, "cache-uninitialised")) { /* no constructor: a fresh object is undefined */
        char *o = strata_cache_alloc(cache);
        if (o[7] == 42) printf("42\n");
    } else if (!strcmp(bug, "pages-write-after-free")) {
        char *p = strata_pages_alloc(NULL, 1);
        memset(p, 1, 2 * (size_t)sysconf(_SC_PAGESIZE));
        strata_pages_free(NULL, p, 1);
        p[100] = 2;
    } else if (!strcmp(bug, "pages-read-past-end")) { /* the next page is its free buddy */
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        char *p = strata_pages_alloc(NULL, 0);
        memset(p, 1, page);
        sink = p[page];
    } else if (!strcmp(bug, "pool-write-after-reset")) {
        char *q = strata_pool_alloc(pool, 24);
        strata_pool_reset(pool);
        q[5] = 1;
    } else if (!strcmp(bug, "pool-child-read-after-parent-reset")) { /* the reset destroys the child */
        strata_pool *child = strata_pool_create(pool);
        char *q = strata_pool_alloc(child, 24);
        memset(q, 1, 24);
        strata_pool_reset(pool);
        sink = q[3];
    } else if (!strcmp(bug, "pool-aligned-overflow")) {
        char *q = strata_pool_aligned_alloc(pool, 64, 100);
        memset(q, 1, 100);
        sink = q[100];
    } else if (!strcmp(bug, "cache-exact-overflow")) { /* no slack: into the next, free slot */
        strata_cache *c = strata_cache_create("exact", 32, 16, NULL, NULL);
        char *o = strata_cache_alloc(c);
        memset(o, 1, 32);
        sink = o[32];
    } else if (!strcmp(bug, "pool-strdup-overflow")) {
        char *q = strata_pool_strdup(pool, "hello");
        sink = q[6];
    } else if (!strcmp(bug, "cache-underflow")) { /* the byte before the object */
        char *o = strata_cache_alloc(cache);
        sink = o[-1];
    } else if (!strcmp(bug, "cache-constructed-read-after-free")) { /* constructed state is not usable */
        strata_cache *c = strata_cache_create("constructed", 40, 0, ctor, NULL);
        char *o = strata_cache_alloc(c);
        strata_cache_free(c, o);
        sink = o[3];
    } else if (!strcmp(bug, "pages-underflow")) { /* the page before is its freed buddy */
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        char *a = strata_pages_alloc(NULL, 0), *b = strata_pages_alloc(NULL, 0);
        if (b != a + page) { printf("not caught: pages-underflow (no buddy below)\n"); return 0; }
        strata_pages_free(NULL, a, 0);
        b[-1] = 1;
    } else if (!strcmp(bug, "pages-uninitialised")) { /* a page given again is undefined */
        char *p = strata_pages_alloc(NULL, 0);
        memset(p, 1, 64);
        strata_pages_free(NULL, p, 0);
        p = strata_pages_alloc(NULL, 0);
        if (p[10] == 1) printf("1\n");
    } else {
        fprintf(stderr, "planted: no bug '%s'\n", bug);
        return 2;
    }
    printf("not caught: %s\n", bug);
    return 0;
}
