/*
 * align.c — posix_memalign, aligned_alloc, memalign, valloc and pvalloc.
 */
#include <malloc.h>
#include <stdint.h>

#include "harness.h"
#include "strata.h"

static const size_t asizes[] = {0, 1, 8, 16, 24, 100, 1000, 4096, 5000, 65536, 100000,
                                200000, 1 << 20, 5 << 20};
#define NASIZES (sizeof asizes / sizeof asizes[0])

static void posix_memalign_all_alignments(void) {
    for (size_t a = sizeof(void *); a <= ((size_t)1 << 26); a <<= 1) {
        for (size_t i = 0; i < NASIZES; i++) {
            size_t n = asizes[i];
            void *p = (void *)1;
            errno = 777;
            int r = posix_memalign(&p, a, n);
            CHECKF(r == 0, "posix_memalign(%zu, %zu) = %d", a, n, r);
            CHECK(errno == 777); /* never touches errno */
            CHECKF(((uintptr_t)p & (a - 1)) == 0, "posix_memalign(%zu, %zu) = %p", a, n, p);
            CHECK(malloc_usable_size(p) >= n);
            th_fill(p, n, (unsigned)a);
            CHECK(th_verify(p, n, (unsigned)a));
            free(p);
        }
    }
}

static void posix_memalign_rejects_bad_alignment(void) {
    static const size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 48, 4097, (size_t)3 << 40};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = (void *)0x1234;
        errno = 555;
        int r = posix_memalign(&p, bad[i], 64);
        CHECKF(r == EINVAL, "posix_memalign(%zu) = %d, want EINVAL", bad[i], r);
        CHECK(p == (void *)0x1234); /* output untouched on failure */
        CHECK(errno == 555);
    }
}

static void posix_memalign_enomem_keeps_errno(void) {
    void *p = (void *)0x1234;
    errno = 555;
    int r = posix_memalign(&p, 64, SIZE_MAX - 10);
    CHECK(r == ENOMEM && errno == 555 && p == (void *)0x1234);
    r = posix_memalign(&p, (size_t)1 << 30, (size_t)1 << 62);
    CHECK(r == ENOMEM && errno == 555);
}

static void aligned_alloc_checks_power_of_two(void) {
    errno = 0;
    CHECK(aligned_alloc(3, 9) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(aligned_alloc(0, 16) == NULL && errno == EINVAL);
    for (size_t a = 1; a <= 8192; a <<= 1) {
        void *p = aligned_alloc(a, 3 * a);
        CHECK(p != NULL);
        CHECK(((uintptr_t)p & (a - 1)) == 0);
        free(p);
    }
    void *p = aligned_alloc(64, 100); /* size need not be a multiple of the alignment */
    CHECK(p != NULL && ((uintptr_t)p & 63) == 0);
    free(p);
}

static void memalign_rounds_alignment_up(void) {
    void *p = memalign(24, 100); /* glibc: rounded up to 32 */
    CHECK(p != NULL && ((uintptr_t)p & 31) == 0);
    free(p);
    p = memalign(0, 10);
    CHECK(p != NULL);
    free(p);
    p = memalign(3000, 10);
    CHECK(p != NULL && ((uintptr_t)p & 4095) == 0);
    free(p);
    errno = 0;
    CHECK(memalign(SIZE_MAX / 2 + 2, 16) == NULL && errno == EINVAL);
}

static void valloc_and_pvalloc_are_page_aligned(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < NASIZES; i++) {
        size_t n = asizes[i];
        void *v = valloc(n);
        CHECK(v != NULL && ((uintptr_t)v & (page - 1)) == 0);
        CHECK(malloc_usable_size(v) >= n);
        void *pv = pvalloc(n);
        CHECK(pv != NULL && ((uintptr_t)pv & (page - 1)) == 0);
        /* pvalloc rounds the size up to whole pages: all of it is usable */
        size_t rounded = (n + page - 1) & ~(page - 1);
        CHECKF(malloc_usable_size(pv) >= rounded, "pvalloc(%zu): usable %zu", n,
               malloc_usable_size(pv));
        memset(pv, 1, rounded);
        free(v);
        free(pv);
    }
    errno = 0;
    CHECK(pvalloc(SIZE_MAX - 10) == NULL && errno == ENOMEM);
}

/* Aligned blocks are ordinary blocks: realloc and free take them back. */
static void aligned_blocks_realloc_and_free(void) {
    for (size_t a = 32; a <= ((size_t)1 << 23); a <<= 2) {
        void *p;
        CHECK(posix_memalign(&p, a, 1000) == 0);
        th_fill(p, 1000, 9);
        p = realloc(p, 300000);
        CHECK(p != NULL && th_verify(p, 1000, 9));
        p = realloc(p, 10);
        CHECK(p != NULL && th_verify(p, 10, 9));
        free(p);
    }
}

/* Many aligned blocks at once: none overlap. */
static void aligned_blocks_do_not_overlap(void) {
    enum { N = 3000 };
    static void *p[N];
    static size_t n[N];
    for (int i = 0; i < N; i++) {
        size_t a = (size_t)16 << (i % 9); /* 16 .. 4096 */
        n[i] = (size_t)(i % 37) * 11 + 1;
        CHECK(posix_memalign(&p[i], a, n[i]) == 0);
        CHECK(((uintptr_t)p[i] & (a - 1)) == 0);
        th_fill(p[i], n[i], (unsigned)i);
    }
    for (int i = 0; i < N; i++) {
        CHECKF(th_verify(p[i], n[i], (unsigned)i), "block %d corrupted", i);
        free(p[i]);
    }
}

int main(void) {
    RUN(posix_memalign_all_alignments);
    RUN(posix_memalign_rejects_bad_alignment);
    RUN(posix_memalign_enomem_keeps_errno);
    RUN(aligned_alloc_checks_power_of_two);
    RUN(memalign_rounds_alignment_up);
    RUN(valloc_and_pvalloc_are_page_aligned);
    RUN(aligned_blocks_realloc_and_free);
    RUN(aligned_blocks_do_not_overlap);
    return 0;
}
