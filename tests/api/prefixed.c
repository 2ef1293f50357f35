/*
 * prefixed.c — libstrata-api: the strata_ functions beside the C library's own malloc, which
 * stays in charge of malloc and free.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>

#include "harness.h"
#include "strata.h"

static void malloc_is_not_replaced(void) {
    Dl_info mine, theirs;
    CHECK(dladdr((void *)strata_malloc, &mine));
    CHECK(dladdr(dlsym(RTLD_DEFAULT, "malloc"), &theirs));
    CHECKF(mine.dli_fbase != theirs.dli_fbase, "malloc resolves to %s", theirs.dli_fname);
}

static void strata_functions_work(void) {
    char *p = strata_malloc(100);
    CHECK(p != NULL && ((uintptr_t)p & 15) == 0);
    th_fill(p, 100, 1);
    p = strata_realloc(p, 100000);
    CHECK(p != NULL && th_verify(p, 100, 1));
    CHECK(strata_malloc_usable_size(p) >= 100000);
    strata_free(p);
    int *z = strata_calloc(1000, sizeof(int));
    for (int i = 0; i < 1000; i++) CHECK(z[i] == 0);
    z = strata_reallocarray(z, 2000, sizeof(int));
    CHECK(z != NULL);
    strata_free(z);
    void *a = NULL;
    CHECK(strata_posix_memalign(&a, 4096, 10) == 0 && ((uintptr_t)a & 4095) == 0);
    strata_free(a);
    CHECK(strata_posix_memalign(&a, 3, 10) == EINVAL);
    a = strata_aligned_alloc(256, 512);
    CHECK(a && ((uintptr_t)a & 255) == 0);
    strata_free(a);
    a = strata_memalign(64, 10);
    CHECK(a && ((uintptr_t)a & 63) == 0);
    strata_free(a);
    a = strata_valloc(10);
    CHECK(a && ((uintptr_t)a & 4095) == 0);
    strata_free(a);
    a = strata_pvalloc(10);
    CHECK(a && strata_malloc_usable_size(a) >= 4096);
    strata_free(a);
    errno = 0;
    CHECK(strata_malloc(SIZE_MAX) == NULL && errno == ENOMEM);
}

/* Both allocators at once: blocks of each go back to their own. */
static void side_by_side_with_glibc(void) {
    enum { N = 5000 };
    static void *mine[N], *theirs[N];
    for (int i = 0; i < N; i++) {
        mine[i] = strata_malloc((size_t)(i % 300) + 1);
        theirs[i] = malloc((size_t)(i % 300) + 1);
        CHECK(mine[i] && theirs[i]);
        th_fill(mine[i], (size_t)(i % 300) + 1, (unsigned)i);
        th_fill(theirs[i], (size_t)(i % 300) + 1, (unsigned)i + 7);
    }
    for (int i = 0; i < N; i++) {
        CHECK(th_verify(mine[i], (size_t)(i % 300) + 1, (unsigned)i));
        CHECK(th_verify(theirs[i], (size_t)(i % 300) + 1, (unsigned)i + 7));
        strata_free(mine[i]);
        free(theirs[i]);
    }
}

static void free_glibc_block(void *p) { strata_free(p); }
static void foreign_block_is_refused(void) {
    void *g = malloc(64);
    th_result r = th_child(free_glibc_block, g);
    CHECKF(th_aborted_with(&r, "free(): invalid pointer"), "exit %d sig %d: %s", r.code, r.sig,
           r.err);
    free(g);
}

static void mode_forward(void) {
    void *g = malloc(64);
    strata_free(g); /* forwarded to glibc's free */
    printf("forwarded\n");
}
static void foreign_block_is_forwarded(void) {
    th_result r = th_self("forward", "foreign_free=forward");
    CHECKF(r.exited && r.code == 0 && strstr(r.out, "forwarded"), "exit %d sig %d: %s", r.code,
           r.sig, r.err);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        mode_forward();
        return 0;
    }
    RUN(malloc_is_not_replaced);
    RUN(strata_functions_work);
    RUN(side_by_side_with_glibc);
    RUN(foreign_block_is_refused);
    RUN(foreign_block_is_forwarded);
    return 0;
}
