/*
 * semantics.c — malloc, calloc, realloc, reallocarray and free behave as glibc documents.
 */
#include <malloc.h>
#include <stdint.h>
#include <sys/resource.h>

#include "harness.h"
#include "strata.h"

/* Sizes across every kind of block: size classes, large spans, huge mappings. */
static const size_t sizes[] = {0,    1,     7,     8,     15,     16,     17,      24,     31,
                               32,   33,    48,    63,    64,     65,     100,     127,    128,
                               129,  200,   255,   256,   257,    500,    1000,    1023,   1024,
                               1025, 2000,  4095,  4096,  4097,   8191,   8192,    8193,   10000,
                               32768, 65535, 65536, 65537, 100000, 131071, 131072, 131073, 262144,
                               1 << 20, 3 << 20, 5 << 20, 33 << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void malloc_zero_is_unique_and_freeable(void) {
    void *a = malloc(0), *b = malloc(0);
    CHECK(a != NULL && b != NULL);
    CHECK(a != b);
    /* (secure mode hands out a zero-size block, in memory nobody may touch) */
    const char *opt = getenv("STRATA_OPTIONS");
    CHECK(malloc_usable_size(a) >= 1 || (opt && strstr(opt, "secure=1")));
    free(a);
    free(b);
}

static void blocks_are_aligned_and_usable(void) {
    for (size_t i = 0; i < NSIZES; i++) {
        size_t n = sizes[i];
        unsigned char *p = malloc(n);
        CHECKF(p != NULL, "malloc(%zu) failed", n);
        if (n >= 16) CHECKF(((uintptr_t)p & 15) == 0, "malloc(%zu) = %p not 16-aligned", n, (void *)p);
        else CHECKF(((uintptr_t)p & 7) == 0, "malloc(%zu) = %p not 8-aligned", n, (void *)p);
        CHECKF(malloc_usable_size(p) >= n, "usable %zu < %zu", malloc_usable_size(p), n);
        th_fill(p, malloc_usable_size(p), (unsigned)n);
        CHECK(th_verify(p, malloc_usable_size(p), (unsigned)n));
        free(p);
    }
}

/* Waste within a size class is at most 12.5% for requests of 128 bytes or more; below that the
 * 16-byte alignment floor bounds it at 15 bytes. */
static void size_class_waste_is_bounded(void) {
    for (size_t n = 1; n <= 128 * 1024; n += (n < 4096 ? 1 : 61)) {
        void *p = malloc(n);
        CHECK(p != NULL);
        size_t u = malloc_usable_size(p);
        free(p);
        if (n < 128) CHECKF(u - n <= 15, "malloc(%zu): usable %zu", n, u);
        else CHECKF((u - n) * 8 <= u, "malloc(%zu): usable %zu wastes more than 12.5%%", n, u);
    }
}

static void many_live_blocks_do_not_overlap(void) {
    enum { N = 20000 };
    static unsigned char *p[N];
    static size_t len[N];
    unsigned seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245 + 12345;
        len[i] = (seed >> 8) % (i % 50 == 0 ? 70000 : 600);
        p[i] = malloc(len[i]);
        CHECK(p[i] != NULL);
        th_fill(p[i], len[i], (unsigned)i);
    }
    for (int i = 0; i < N; i += 2) {
        CHECKF(th_verify(p[i], len[i], (unsigned)i), "block %d (%zu bytes) corrupted", i, len[i]);
        free(p[i]);
    }
    for (int i = 0; i < N; i += 2) { /* refill the holes */
        p[i] = malloc(len[i]);
        CHECK(p[i] != NULL);
        th_fill(p[i], len[i], (unsigned)i);
    }
    for (int i = 0; i < N; i++) {
        CHECKF(th_verify(p[i], len[i], (unsigned)i), "block %d (%zu bytes) corrupted", i, len[i]);
        free(p[i]);
    }
}

static void calloc_zeroes_and_checks_overflow(void) {
    for (size_t i = 0; i < NSIZES; i++) {
        size_t n = sizes[i];
        /* dirty memory first, so calloc must really clear it */
        unsigned char *d = malloc(n);
        if (d) memset(d, 0xAB, n);
        free(d);
        unsigned char *p = calloc(1, n);
        CHECK(p != NULL);
        for (size_t j = 0; j < n; j++) CHECKF(p[j] == 0, "calloc(1, %zu)[%zu] = %d", n, j, p[j]);
        free(p);
    }
    errno = 0;
    CHECK(calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc((size_t)1 << 33, (size_t)1 << 33) == NULL && errno == ENOMEM);
    void *z = calloc(0, 10);
    CHECK(z != NULL);
    free(z);
}

static void impossible_requests_fail_with_enomem(void) {
    errno = 0;
    CHECK(malloc(SIZE_MAX) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(malloc((size_t)PTRDIFF_MAX + 1) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(malloc(SIZE_MAX - 4096) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(malloc((size_t)1 << 60) == NULL && errno == ENOMEM); /* more than the address space */
    void *p = malloc(100); /* and allocation still works */
    CHECK(p != NULL);
    free(p);
}

/* The seeds' question: can a machine with less memory malloc 1.2 GiB? Yes: nothing is touched. */
static void big_request_is_lazy(void) {
    SKIP_IF_EMULATED(TH_EMU_RSS);
    long before = th_rss_kb();
    size_t n = (size_t)1229 << 20;
    char *p = malloc(n);
    CHECK(p != NULL);
    long during = th_rss_kb();
    CHECKF(during - before < 4096, "RSS grew by %ld KiB for an untouched 1.2 GiB block",
           during - before);
    p[0] = 1;
    p[n - 1] = 2; /* both ends usable */
    CHECK(p[0] == 1 && p[n - 1] == 2);
    free(p);
    char *z = calloc(1, n); /* calloc of fresh mapped memory is lazy too */
    CHECK(z != NULL && z[n / 2] == 0);
    CHECKF(th_rss_kb() - before < 8192, "calloc of 1.2 GiB touched its pages");
    free(z);
}

static void realloc_semantics(void) {
    /* realloc(NULL, n) is malloc(n) */
    char *p = realloc(NULL, 100);
    CHECK(p != NULL);
    th_fill(p, 100, 7);
    /* growing through every kind of block keeps the contents */
    size_t old = 100;
    for (size_t n = 200; n <= (size_t)40 << 20; n *= 3) {
        p = realloc(p, n);
        CHECKF(p != NULL, "realloc to %zu failed", n);
        CHECKF(th_verify(p, 100, 7), "contents lost growing %zu -> %zu", old, n);
        old = n;
    }
    /* and shrinking back */
    for (size_t n = old; n >= 50; n /= 5) {
        p = realloc(p, n);
        CHECK(p != NULL);
        CHECKF(th_verify(p, n < 100 ? n : 100, 7), "contents lost shrinking to %zu", n);
        CHECK(malloc_usable_size(p) >= n);
    }
    /* realloc(p, 0) frees p and returns NULL, as glibc does */
    CHECK(realloc(p, 0) == NULL);
}

static void realloc_shrink_in_place(void) {
    char *p = malloc(1000);
    CHECK(p != NULL);
    char *q = realloc(p, 900);
    CHECK(q == p); /* same size class range: stays */
    q = realloc(q, 1000);
    CHECK(q == p);
    free(q);
}

static void failed_realloc_leaves_block_intact(void) {
    char *p = malloc(5000);
    CHECK(p != NULL);
    th_fill(p, 5000, 3);
    errno = 0;
    CHECK(realloc(p, SIZE_MAX - 100) == NULL && errno == ENOMEM);
    CHECK(realloc(p, (size_t)1 << 60) == NULL && errno == ENOMEM);
    CHECK(th_verify(p, 5000, 3));
    free(p);
}

static void reallocarray_checks_overflow(void) {
    int *a = reallocarray(NULL, 10, sizeof(int));
    CHECK(a != NULL);
    for (int i = 0; i < 10; i++) a[i] = i;
    a = reallocarray(a, 1000, sizeof(int));
    CHECK(a != NULL && a[9] == 9);
    errno = 0;
    CHECK(reallocarray(a, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM);
    CHECK(a[9] == 9); /* untouched */
    free(a);
}

static void free_null_is_a_no_op(void) {
    errno = 4321;
    free(NULL);
    CHECK(errno == 4321);
}

/* glibc 2.33+: free preserves errno, even when it gives memory back to the kernel. */
static void free_preserves_errno(void) {
    void *small = malloc(10), *huge = malloc(8 << 20);
    CHECK(small && huge);
    errno = 1234;
    free(small);
    free(huge);
    CHECK(errno == 1234);
}

static void usable_size_is_writable(void) {
    for (size_t i = 0; i < NSIZES; i++) {
        size_t n = sizes[i];
        char *p = malloc(n);
        CHECK(p != NULL);
        size_t u = malloc_usable_size(p);
        memset(p, 0x5A, u); /* the whole usable size belongs to the caller */
        char *q = malloc(n);
        CHECK(q != NULL);
        memset(q, 0xA5, malloc_usable_size(q));
        for (size_t j = 0; j < u; j++) CHECKF((unsigned char)p[j] == 0x5A, "byte %zu of %zu", j, u);
        free(q);
        free(p);
    }
    CHECK(malloc_usable_size(NULL) == 0);
}

int main(void) {
    RUN(malloc_zero_is_unique_and_freeable);
    RUN(blocks_are_aligned_and_usable);
    RUN(size_class_waste_is_bounded);
    RUN(many_live_blocks_do_not_overlap);
    RUN(calloc_zeroes_and_checks_overflow);
    RUN(impossible_requests_fail_with_enomem);
    RUN(big_request_is_lazy);
    RUN(realloc_semantics);
    RUN(realloc_shrink_in_place);
    RUN(failed_realloc_leaves_block_intact);
    RUN(reallocarray_checks_overflow);
    RUN(free_null_is_a_no_op);
    RUN(free_preserves_errno);
    RUN(usable_size_is_writable);
    return 0;
}
