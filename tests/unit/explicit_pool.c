/*
 * explicit_pool.c — strata_pool: allocation and alignment, strings, child pools, cleanup order,
 * reset reusing memory, large blocks, use after destroy caught with pool_debug=1, out of memory.
 */
#include <stdint.h>

#include "harness.h"
#include "strata.h"

static struct strata_pool_stats pstats(strata_pool *p) {
    struct strata_pool_stats s;
    strata_pool_get_stats(p, &s);
    return s;
}

/* Thousands of blocks of mixed sizes: each aligned, none overlapping (patterns intact). */
static void pool_allocations_are_distinct(void) {
    enum { N = 20000 };
    static void *blocks[N];
    static size_t sizes[N];
    strata_pool *p = strata_pool_create(NULL);
    CHECK(p != NULL);
    unsigned seed = 7;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245 + 12345;
        sizes[i] = (seed >> 16) % (i % 100 == 0 ? 20000 : 300);
        blocks[i] = strata_pool_alloc(p, sizes[i]);
        CHECK(blocks[i] != NULL);
        CHECKF((uintptr_t)blocks[i] % 16 == 0, "block %d at %p", i, blocks[i]);
        th_fill(blocks[i], sizes[i], (unsigned)i);
    }
    for (int i = 0; i < N; i++) CHECKF(th_verify(blocks[i], sizes[i], (unsigned)i), "block %d", i);
    void *a = strata_pool_alloc(p, 0), *b = strata_pool_alloc(p, 0);
    CHECK(a && b && a != b);
    struct strata_pool_stats s = pstats(p);
    CHECK(s.allocs == N + 2);
    CHECK(s.large_count > 0 && s.chunks > 0);
    strata_pool_destroy(p);
}

static void pool_every_alignment(void) {
    strata_pool *p = strata_pool_create(NULL);
    for (size_t align = 1; align <= ((size_t)1 << 21); align *= 2) {
        size_t sizes[] = {1, 24, 100, 5000};
        for (int k = 0; k < 4; k++) {
            char *q = strata_pool_aligned_alloc(p, align, sizes[k]);
            CHECKF(q && (uintptr_t)q % align == 0, "alignment %zu size %zu: %p", align, sizes[k], (void *)q);
            memset(q, 0x5a, sizes[k]);
        }
    }
    errno = 0;
    CHECK(strata_pool_aligned_alloc(p, 24, 10) == NULL && errno == EINVAL);
    strata_pool_destroy(p);
}

static void pool_strings_and_calloc(void) {
    strata_pool *p = strata_pool_create(NULL);
    char *s = strata_pool_strdup(p, "pool of strings");
    CHECK(s && !strcmp(s, "pool of strings"));
    char *n = strata_pool_strndup(p, "abcdefgh", 3);
    CHECK(n && !strcmp(n, "abc"));
    char *m = strata_pool_strndup(p, "ab", 10);
    CHECK(m && !strcmp(m, "ab"));
    int src[5] = {1, 2, 3, 4, 5};
    int *d = strata_pool_memdup(p, src, sizeof src);
    CHECK(d && d != src && !memcmp(d, src, sizeof src));
    /* calloc must zero memory that a reset made available again */
    unsigned char *x = strata_pool_alloc(p, 4000);
    memset(x, 0xff, 4000);
    strata_pool_reset(p);
    unsigned char *z = strata_pool_calloc(p, 1000, 4);
    CHECK(z != NULL);
    for (int i = 0; i < 4000; i++) CHECKF(z[i] == 0, "byte %d is %d", i, z[i]);
    errno = 0;
    CHECK(strata_pool_calloc(p, SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
    strata_pool_destroy(p);
}

/* ---- cleanups and children ---- */

static char order[64];
static void note(void *arg) { strncat(order, (const char *)arg, sizeof order - strlen(order) - 1); }

static void pool_cleanups_run_last_first(void) {
    order[0] = '\0';
    strata_pool *p = strata_pool_create(NULL);
    CHECK(strata_pool_cleanup(p, note, "a") == 0);
    CHECK(strata_pool_cleanup(p, note, "b") == 0);
    CHECK(strata_pool_cleanup(p, note, "c") == 0);
    CHECK(pstats(p).cleanups == 3);
    strata_pool_reset(p);
    CHECKF(!strcmp(order, "cba"), "order %s", order);
    CHECK(pstats(p).cleanups == 0);
    CHECK(strata_pool_cleanup(p, note, "d") == 0);
    strata_pool_destroy(p);
    CHECKF(!strcmp(order, "cbad"), "after destroy: %s (reset's cleanups ran again?)", order);
}

static void pool_children_go_with_parent(void) {
    order[0] = '\0';
    strata_pool *parent = strata_pool_create(NULL);
    strata_pool *c1 = strata_pool_create(parent);
    strata_pool *c2 = strata_pool_create(parent);
    strata_pool *g = strata_pool_create(c1);
    CHECK(parent && c1 && c2 && g);
    CHECK(pstats(parent).children == 2 && pstats(c1).children == 1);
    strata_pool_cleanup(parent, note, "P");
    strata_pool_cleanup(c1, note, "1");
    strata_pool_cleanup(c2, note, "2");
    strata_pool_cleanup(g, note, "g");
    for (int i = 0; i < 1000; i++) th_use(strata_pool_alloc(i % 2 ? c1 : g, 100));
    /* a child destroyed on its own leaves its parent */
    strata_pool *c3 = strata_pool_create(parent);
    strata_pool_destroy(c3);
    CHECK(pstats(parent).children == 2);
    /* destroy: children youngest first (c2, then c1 after its own child g), then the parent */
    strata_pool_destroy(parent);
    CHECKF(!strcmp(order, "2g1P"), "order %s", order);
}

/* ---- memory ---- */

static void pool_reset_reuses_memory(void) {
    strata_pool *p = strata_pool_create(NULL);
    void *first = NULL;
    size_t chunk_bytes = 0;
    long rss_after_first = 0;
    for (int round = 0; round < 30; round++) {
        void *a = strata_pool_alloc(p, 40);
        for (int i = 0; i < 100000; i++) memset(strata_pool_alloc(p, 64), 1, 64); /* 6.4 MB */
        struct strata_pool_stats s = pstats(p);
        if (round == 0) {
            first = a;
            chunk_bytes = s.chunk_bytes;
            rss_after_first = th_rss_kb();
        } else if (!s.debug) {
            CHECKF(a == first, "round %d starts at %p, not %p", round, a, first);
            CHECKF(s.chunk_bytes == chunk_bytes, "round %d holds %zu bytes, not %zu", round,
                   s.chunk_bytes, chunk_bytes);
        }
        strata_pool_reset(p);
        s = pstats(p);
        CHECK(s.allocs == 0 && s.resets == (size_t)round + 1);
        if (s.debug) CHECK(s.chunk_bytes == 0); /* debug: retired, never reused */
    }
    long grew = th_rss_kb() - rss_after_first;
    strata_pool_destroy(p);
    if (th_under_valgrind()) SKIP("under valgrind, whose records of the blocks count in RSS (reuse checked)");
    CHECKF(grew < 4096, "RSS grew by %ld KiB over 29 reset rounds", grew);
}

static void pool_large_blocks_go_on_reset(void) {
    strata_pool *p = strata_pool_create(NULL);
    for (int i = 0; i < 10; i++) {
        char *q = strata_pool_alloc(p, (size_t)1 << 20);
        CHECK(q != NULL);
        memset(q, i, (size_t)1 << 20);
    }
    struct strata_pool_stats s = pstats(p);
    CHECK(s.large_count == 10 && s.large_bytes == (size_t)10 << 20);
    strata_pool_reset(p);
    s = pstats(p);
    CHECK(s.large_count == 0 && s.large_bytes == 0);
    strata_pool_destroy(p);
}

/* ---- misuse and out of memory (in children) ---- */

static void use_destroyed(void *arg) {
    strata_pool *p = strata_pool_create(NULL);
    th_use(strata_pool_alloc(p, 10));
    strata_pool_destroy(p);
    th_use(strata_pool_alloc(p, 10));
}

static void touch_destroyed(void *arg) {
    strata_pool *p = strata_pool_create(NULL);
    volatile char *q = strata_pool_alloc(p, 10);
    q[0] = 1;
    strata_pool_destroy(p);
    q[0] = 2; /* faults with pool_debug=1 */
}

static void touch_after_reset(void *arg) {
    strata_pool *p = strata_pool_create(NULL);
    volatile char *q = strata_pool_alloc(p, 10);
    strata_pool_reset(p);
    th_use(strata_pool_alloc(p, 10));
    q[0] = 2;
}

static void pool_use_after_destroy_caught_in_debug_mode(void) {
    th_result r = th_self("use-destroyed", "pool_debug=1");
    CHECKF(th_aborted_with(&r, "strata_pool_alloc(): pool 0x") && strstr(r.err, "used after it was destroyed"),
           "exit %d signal %d: %s", r.code, r.sig, r.err);
    r = th_self("touch-destroyed", "pool_debug=1");
    CHECKF(r.signaled && r.sig == SIGSEGV, "write after destroy: exit %d signal %d", r.code, r.sig);
    r = th_self("touch-after-reset", "pool_debug=1");
    CHECKF(r.signaled && r.sig == SIGSEGV, "write after reset: exit %d signal %d", r.code, r.sig);
    r = th_self("touch-after-reset", "pool_debug=0");
    CHECKF(r.exited && r.code == 0, "pool_debug=0: exit %d signal %d: %s", r.code, r.sig, r.err);
}

static void exhaust(void *arg) {
    th_limit_as((size_t)64 << 20);
    strata_pool *p = strata_pool_create(NULL);
    size_t sizes[] = {100, 3000, 200000};
    for (int k = 0; k < 3; k++) {
        size_t n = 0;
        errno = 0;
        for (; n < 10000000; n++) {
            char *q = strata_pool_alloc(p, sizes[k]);
            if (!q) break;
            q[0] = 1;
        }
        if (n == 10000000) _exit(10 + k);
        if (errno != ENOMEM) _exit(20 + k);
        strata_pool_reset(p);
        if (!strata_pool_alloc(p, sizes[k])) _exit(30 + k); /* usable again */
        strata_pool_reset(p);
    }
    errno = 0;
    if (strata_pool_alloc(p, SIZE_MAX - 10) || errno != ENOMEM) _exit(40);
    if (strata_pool_aligned_alloc(p, (size_t)1 << 40, 10)) _exit(41);
    strata_pool_destroy(p);
}

static void pool_out_of_memory(void) {
    SKIP_IF_EMULATED(TH_EMU_AS);
    if (th_under_valgrind()) SKIP("under valgrind, whose own memory counts against RLIMIT_AS");
    CHECK_CHILD_OK(exhaust, NULL);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        if (!strcmp(argv[1], "use-destroyed")) use_destroyed(NULL);
        if (!strcmp(argv[1], "touch-destroyed")) touch_destroyed(NULL);
        if (!strcmp(argv[1], "touch-after-reset")) touch_after_reset(NULL);
        return 0;
    }
    RUN(pool_allocations_are_distinct);
    RUN(pool_every_alignment);
    RUN(pool_strings_and_calloc);
    RUN(pool_cleanups_run_last_first);
    RUN(pool_children_go_with_parent);
    RUN(pool_reset_reuses_memory);
    RUN(pool_large_blocks_go_on_reset);
    RUN(pool_use_after_destroy_caught_in_debug_mode);
    RUN(pool_out_of_memory);
    return 0;
}
