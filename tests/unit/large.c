/*
 * large.c — big blocks: the mmap threshold (128 KiB, adapting upward to 32 MiB like glibc's),
 * blocks with their own mapping, realloc with mremap, large blocks resized in place.
 */
#include <malloc.h>
#include <stdint.h>

#include "harness.h"
#include "strata.h"

static struct strata_stats stats(void) {
    struct strata_stats s;
    strata_get_stats(&s);
    return s;
}

/* Must run first: the threshold adapts as the process frees big blocks. */
static void threshold_starts_at_128k(void) {
    CHECK(stats().mmap_threshold == 128 * 1024);
    size_t h0 = stats().huge_count;
    void *below = malloc(128 * 1024 - 1);
    CHECK(below != NULL);
    CHECKF(stats().huge_count == h0, "a block below the threshold got its own mapping");
    void *at = malloc(128 * 1024);
    CHECK(at != NULL);
    CHECKF(stats().huge_count == h0 + 1, "a block at the threshold has no mapping of its own");
    free(below);
    free(at);
    CHECK(stats().huge_count == h0);
}

static void threshold_adapts_to_freed_blocks(void) {
    void *p = malloc(300 * 1024);
    CHECK(p != NULL);
    free(p);
    struct strata_stats s = stats();
    CHECKF(s.mmap_threshold >= 300 * 1024 && s.mmap_threshold < 316 * 1024 + th_page_size(),
           "threshold %zu after freeing a 300 KiB block", s.mmap_threshold);
    CHECK(s.trim_threshold == 2 * s.mmap_threshold);
    size_t h0 = s.huge_count;
    void *q = malloc(250 * 1024); /* now below the threshold: from a segment */
    CHECK(q != NULL);
    CHECK(stats().huge_count == h0);
    free(q);
    void *big = malloc(40 << 20); /* above the 32 MiB ceiling: the threshold does not follow */
    CHECK(big != NULL);
    free(big);
    CHECK(stats().mmap_threshold < (32u << 20));
}

static void mallopt_fixes_threshold(void *arg) {
    (void)arg;
    if (mallopt(M_MMAP_THRESHOLD, 64 * 1024) != 1) _exit(1);
    if (stats().mmap_threshold != 64 * 1024) _exit(2);
    size_t h0 = stats().huge_count;
    void *p = malloc(70 * 1024);
    if (stats().huge_count != h0 + 1) _exit(3);
    free(p);
    if (stats().mmap_threshold != 64 * 1024) _exit(4); /* fixed: no longer adapts */
    if (mallopt(M_MMAP_THRESHOLD, 64 << 20) != 0) _exit(5); /* above glibc's maximum */
    if (mallopt(M_MMAP_THRESHOLD, 512) != 1) _exit(6);     /* even tiny thresholds are honoured */
    h0 = stats().huge_count;
    void *q = malloc(600);
    if (!q || stats().huge_count != h0 + 1) _exit(7);
    free(q);
    void *r = malloc(100);
    if (!r || stats().huge_count != h0) _exit(8);
    free(r);
}
static void mallopt_threshold_is_honoured(void) {
    th_result r = th_child(mallopt_fixes_threshold, NULL);
    CHECKF(r.exited && r.code == 0, "child exited %d (signal %d): %s", r.code, r.sig, r.err);
}

static void huge_blocks_return_memory(void) {
    long before = th_rss_kb();
    size_t n = 64 << 20;
    char *p = malloc(n);
    CHECK(p != NULL);
    memset(p, 1, n);
    CHECK(th_rss_kb() - before > 60 * 1024);
    size_t unmaps = stats().munmap_calls;
    free(p);
    CHECK(stats().munmap_calls > unmaps);
    CHECKF(th_rss_kb() - before < 4 * 1024, "RSS still %ld KiB above the start after free",
           th_rss_kb() - before);
}

static void huge_realloc_uses_mremap(void) {
    size_t n = 2 << 20;
    char *p = malloc(n);
    CHECK(p != NULL);
    th_fill(p, n, 77);
    size_t remaps = stats().mremap_calls;
    for (int i = 0; i < 6; i++) {
        size_t m = n * 2;
        p = realloc(p, m);
        CHECK(p != NULL);
        CHECKF(th_verify(p, n, 77), "contents lost growing to %zu", m);
        th_fill(p, m, 77);
        n = m;
    }
    CHECK(stats().mremap_calls > remaps);
    p = realloc(p, n / 3); /* shrink in place */
    CHECK(p != NULL && th_verify(p, n / 3, 77));
    p = realloc(p, 1000); /* small again: moves into a size class */
    CHECK(p != NULL && th_verify(p, 1000, 77));
    CHECK(malloc_usable_size(p) < 4096);
    free(p);
}

static void large_realloc_in_place_child(void *arg) {
    (void)arg;
    mallopt(M_MMAP_THRESHOLD, 8 << 20); /* keep large blocks in segments */
    char *p = malloc(200 * 1024);
    if (!p) _exit(1);
    th_fill(p, 200 * 1024, 5);
    char *q = realloc(p, 300 * 1024); /* the span after it is free in a fresh segment */
    if (q != p) _exit(2);
    if (!th_verify(q, 200 * 1024, 5)) _exit(3);
    q = realloc(q, 150 * 1024); /* shrink: gives the tail back */
    if (q != p || !th_verify(q, 150 * 1024, 5)) _exit(4);
    if (malloc_usable_size(q) >= 300 * 1024) _exit(5);
    char *r = malloc(100 * 1024); /* may land in the freed tail */
    if (!r) _exit(6);
    th_fill(r, 100 * 1024, 6);
    if (!th_verify(q, 150 * 1024, 5)) _exit(7);
    free(r);
    free(q);
}
static void large_realloc_in_place(void) {
    th_result r = th_child(large_realloc_in_place_child, NULL);
    CHECKF(r.exited && r.code == 0, "child exited %d (signal %d): %s", r.code, r.sig, r.err);
}

/* Many large blocks with random lifetimes: the span allocator splits and coalesces correctly. */
static void large_blocks_churn_child(void *arg) {
    (void)arg;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    enum { N = 64 };
    char *p[N] = {0};
    size_t n[N] = {0};
    unsigned seed = 99;
    for (int round = 0; round < 1500; round++) {
        seed = seed * 1103515245 + 12345;
        int i = (int)((seed >> 16) % N);
        if (p[i]) {
            if (!th_verify(p[i], n[i], (unsigned)i)) _exit(1);
            free(p[i]);
        }
        n[i] = 130 * 1024 + (seed >> 4) % (2 << 20);
        p[i] = (seed & 1) ? malloc(n[i]) : calloc(1, n[i]);
        if (!p[i]) _exit(2);
        th_fill(p[i], n[i], (unsigned)i);
    }
    for (int i = 0; i < N; i++) {
        if (p[i] && !th_verify(p[i], n[i], (unsigned)i)) _exit(3);
        free(p[i]);
    }
}
static void large_blocks_churn(void) {
    th_result r = th_child(large_blocks_churn_child, NULL);
    CHECKF(r.exited && r.code == 0, "child exited %d (signal %d): %s", r.code, r.sig, r.err);
}

/* A malloc/free loop costs no system call, even when the block is alone in its segment. */
static void loop_child(void *arg) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    char *fill = malloc(63 * 65536 - 4096); /* a whole segment's worth */
    if (!fill) _exit(1);
    struct strata_stats a, b;
    for (int round = 0; round < 2; round++) {
        strata_get_stats(&a);
        for (int i = 0; i < 20000; i++) {
            void *p = malloc(100);
            th_use(p);
            free(p);
            p = malloc(300000);
            th_use(p);
            free(p);
        }
        strata_get_stats(&b);
    }
    /* the second round starts warm: nothing at all may reach the kernel */
    if (b.brk_calls != a.brk_calls || b.mmap_calls != a.mmap_calls ||
        b.munmap_calls != a.munmap_calls || b.madvise_calls != a.madvise_calls)
        _exit(2);
    free(fill);
}
static void malloc_free_loop_makes_no_system_calls(void) {
    th_result r = th_child(loop_child, NULL);
    CHECKF(r.exited && r.code == 0, "child exited %d (signal %d): %s", r.code, r.sig, r.err);
}

/* Below the (adapted) threshold, freed huge blocks are kept and reused: a loop of big blocks
 * costs no system call after the first round, and malloc_trim gives the memory back. */
static void reuse_child(void *arg) {
    free(malloc(24 << 20)); /* the threshold adapts to ~24 MiB */
    struct strata_stats a, b;
    char *p = malloc(10 << 20);
    memset(p, 1, 10 << 20);
    free(p);
    strata_get_stats(&a);
    for (int i = 0; i < 50; i++) {
        size_t n = (size_t)(6 + i % 5) << 20;
        p = malloc(n);
        if (!p) _exit(1);
        memset(p, 2, n);
        free(p);
    }
    strata_get_stats(&b);
    if (b.mmap_calls != a.mmap_calls || b.munmap_calls != a.munmap_calls) _exit(2);
    p = malloc(9 << 20); /* calloc from a dirty cached mapping is zeroed */
    memset(p, 0xAB, 9 << 20);
    free(p);
    p = calloc(1, 9 << 20);
    for (size_t i = 0; i < (9u << 20); i += 512)
        if (p[i]) _exit(4);
    free(p);
    long before = th_rss_kb();
    malloc_trim(0);
    if (before - th_rss_kb() < 8 * 1024) _exit(3); /* the cached mapping went back */
}
static void huge_blocks_below_threshold_are_reused(void) {
    th_result r = th_child(reuse_child, NULL);
    CHECKF(r.exited && r.code == 0, "child exited %d (signal %d): %s", r.code, r.sig, r.err);
}

int main(void) {
    RUN(threshold_starts_at_128k);
    RUN(threshold_adapts_to_freed_blocks);
    RUN(mallopt_threshold_is_honoured);
    RUN(huge_blocks_return_memory);
    RUN(huge_realloc_uses_mremap);
    RUN(large_realloc_in_place);
    RUN(large_blocks_churn);
    RUN(malloc_free_loop_makes_no_system_calls);
    RUN(huge_blocks_below_threshold_are_reused);
    return 0;
}
