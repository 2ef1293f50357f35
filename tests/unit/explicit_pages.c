/*
 * explicit_pages.c — strata_pages, the buddy allocator: blocks aligned to their size, split and
 * merge (every page taken, then freed in random order, gives back one top-level block, which is
 * then unmapped), per-order counts that add up, the kept block and trim, decommit, many threads,
 * misuse caught with a message, out of memory.
 */
#include <pthread.h>
#include <stdint.h>

#include "harness.h"
#include "strata.h"

static struct strata_pages_stats pstats(strata_pages *pa) {
    struct strata_pages_stats s;
    strata_pages_get_stats(pa, &s);
    return s;
}

/* The free lists account for exactly the free bytes. */
static int lists_add_up(strata_pages *pa) {
    struct strata_pages_stats s = pstats(pa);
    size_t pages = 0;
    for (unsigned o = 0; o <= s.max_order; o++) pages += s.free_blocks[o] << o;
    return pages * s.page_size == s.free_bytes && s.free_bytes + s.in_use_bytes == s.mapped_bytes;
}

static void pages_blocks_aligned_to_their_size(void) {
    strata_pages *pa = strata_pages_create(10, 0);
    CHECK(pa != NULL);
    size_t page = pstats(pa).page_size;
    CHECK(page == th_page_size());
    char *blocks[11];
    for (unsigned o = 0; o <= 10; o++) {
        blocks[o] = strata_pages_alloc(pa, o);
        CHECKF(blocks[o] && (uintptr_t)blocks[o] % (page << o) == 0, "order %u: %p", o, (void *)blocks[o]);
        memset(blocks[o], (int)o, page << o);
    }
    for (unsigned o = 0; o <= 10; o++) {
        CHECK(blocks[o][0] == (char)o && blocks[o][(page << o) - 1] == (char)o);
        strata_pages_free(pa, blocks[o], o);
    }
    errno = 0;
    CHECK(strata_pages_alloc(pa, 11) == NULL && errno == EINVAL);
    strata_pages_destroy(pa);
    errno = 0;
    CHECK(strata_pages_create(STRATA_PAGES_MAX_ORDER + 1, 0) == NULL && errno == EINVAL);
    /* the process-wide allocator */
    void *p = strata_pages_alloc(NULL, 3);
    CHECK(p && (uintptr_t)p % (page << 3) == 0);
    strata_pages_free(NULL, p, 3);
}

static void pages_split_then_merge_back(void) {
    enum { ORDER = 8, PAGES = 1 << ORDER };
    strata_pages *pa = strata_pages_create(ORDER, 0);
    static char *p[PAGES];
    for (int i = 0; i < PAGES; i++) {
        p[i] = strata_pages_alloc(pa, 0);
        CHECK(p[i] != NULL);
        *(int *)p[i] = i;
    }
    struct strata_pages_stats s = pstats(pa);
    CHECKF(s.top_blocks == 1 && s.free_bytes == 0 && s.splits == PAGES - 1, "%zu top blocks, %zu free, %llu splits",
           s.top_blocks, s.free_bytes, s.splits);
    /* every page of the top-level block, each once */
    uintptr_t lo = UINTPTR_MAX;
    for (int i = 0; i < PAGES; i++) lo = (uintptr_t)p[i] < lo ? (uintptr_t)p[i] : lo;
    static char seen[PAGES];
    for (int i = 0; i < PAGES; i++) {
        size_t k = ((uintptr_t)p[i] - lo) / s.page_size;
        CHECK(k < PAGES && !seen[k] && *(int *)p[i] == i);
        seen[k] = 1;
    }
    CHECK(lo % (s.page_size << ORDER) == 0);
    /* free in random order */
    unsigned r = 12345;
    for (int i = PAGES - 1; i > 0; i--) {
        r = r * 1103515245 + 12345;
        int j = (int)((r >> 8) % (unsigned)(i + 1));
        char *t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    for (int i = 0; i < PAGES - 1; i++) {
        strata_pages_free(pa, p[i], 0);
        if (i % 17 == 0) CHECKF(lists_add_up(pa), "after %d frees", i + 1);
    }
    s = pstats(pa);
    CHECK(s.top_blocks == 1 && s.in_use_bytes == s.page_size);
    /* the last free merges it all into one block, which goes back to the system */
    strata_pages_free(pa, p[PAGES - 1], 0);
    s = pstats(pa);
    CHECKF(s.top_blocks == 0 && s.mapped_bytes == 0 && s.unmaps == 1,
           "%zu top blocks, %llu unmaps", s.top_blocks, s.unmaps);
    CHECKF(s.merges == PAGES - 1, "%llu merges, expected %d", s.merges, PAGES - 1);
    strata_pages_destroy(pa);
}

static void pages_random_orders_never_overlap(void) {
    enum { N = 400 };
    strata_pages *pa = strata_pages_create(9, 0);
    size_t page = pstats(pa).page_size;
    static char *blk[N];
    static unsigned ord[N];
    unsigned r = 99;
    for (int step = 0; step < 20000; step++) {
        r = r * 1103515245 + 12345;
        int i = (int)((r >> 8) % N);
        if (blk[i]) {
            CHECKF(blk[i][0] == (char)i && blk[i][(page << ord[i]) - 1] == (char)(i + 1), "block %d overwritten", i);
            strata_pages_free(pa, blk[i], ord[i]);
            blk[i] = NULL;
        } else {
            ord[i] = (r >> 20) % 6;
            blk[i] = strata_pages_alloc(pa, ord[i]);
            CHECK(blk[i] && (uintptr_t)blk[i] % (page << ord[i]) == 0);
            blk[i][0] = (char)i;
            blk[i][(page << ord[i]) - 1] = (char)(i + 1);
        }
        if (step % 1000 == 0) CHECK(lists_add_up(pa));
    }
    for (int i = 0; i < N; i++) strata_pages_free(pa, blk[i], ord[i]);
    struct strata_pages_stats s = pstats(pa);
    CHECKF(s.top_blocks == 0 && s.allocs == s.frees, "%zu top blocks left", s.top_blocks);
    strata_pages_destroy(pa);
}

static void pages_keep_and_trim(void) {
    strata_pages *pa = strata_pages_create(4, STRATA_PAGES_KEEP);
    void *a = strata_pages_alloc(pa, 4), *b = strata_pages_alloc(pa, 4);
    CHECK(a && b && pstats(pa).top_blocks == 2);
    strata_pages_free(pa, a, 4);
    strata_pages_free(pa, b, 4);
    struct strata_pages_stats s = pstats(pa);
    CHECKF(s.top_blocks == 1 && s.free_blocks[4] == 1, "%zu top blocks kept", s.top_blocks);
    void *c = strata_pages_alloc(pa, 0);
    CHECK(c != NULL && pstats(pa).maps == 2); /* reused, not mapped */
    strata_pages_free(pa, c, 0);
    strata_pages_destroy(pa);
    pa = strata_pages_create(4, STRATA_PAGES_KEEP);
    strata_pages_free(pa, strata_pages_alloc(pa, 2), 2);
    CHECK(strata_pages_trim(pa) == pstats(pa).page_size << 4);
    CHECK(pstats(pa).top_blocks == 0);
    strata_pages_destroy(pa);
}

static void pages_decommit_gives_memory_back(void) {
    strata_pages *pa = strata_pages_create(14, STRATA_PAGES_DECOMMIT);
    size_t page = pstats(pa).page_size;
    char *keep = strata_pages_alloc(pa, 0); /* holds the top-level block */
    char *big = strata_pages_alloc(pa, 13);
    memset(big, 1, page << 13);
    long rss1 = th_rss_kb();
    strata_pages_free(pa, big, 13);
    long rss2 = th_rss_kb();
    CHECKF(rss1 - rss2 > (long)((page << 13) / 1024) * 3 / 4, "RSS fell by %ld KiB", rss1 - rss2);
    CHECK(pstats(pa).top_blocks == 1);
    strata_pages_free(pa, keep, 0);
    strata_pages_destroy(pa);
}

enum { THREADS = 4 };
static strata_pages *shared;
static _Atomic int bad;
static void *worker(void *arg) {
    unsigned r = (unsigned)(uintptr_t)arg;
    char *mine[64] = {0};
    unsigned ord[64];
    for (int step = 0; step < 50000; step++) {
        r = r * 1103515245 + 12345;
        int i = (int)((r >> 8) % 64);
        if (mine[i]) {
            if (mine[i][0] != (char)(uintptr_t)arg || mine[i][1] != (char)i) bad = 1;
            strata_pages_free(shared, mine[i], ord[i]);
            mine[i] = NULL;
        } else {
            ord[i] = (r >> 20) % 4;
            if (!(mine[i] = strata_pages_alloc(shared, ord[i]))) {
                bad = 1;
                break;
            }
            mine[i][0] = (char)(uintptr_t)arg;
            mine[i][1] = (char)i;
        }
    }
    for (int i = 0; i < 64; i++) strata_pages_free(shared, mine[i], ord[i]);
    return NULL;
}

static void pages_threads(void) {
    shared = strata_pages_create(10, 0);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    CHECK(!bad);
    struct strata_pages_stats s = pstats(shared);
    CHECK(s.in_use_bytes == 0 && s.top_blocks == 0 && s.allocs == s.frees);
    strata_pages_destroy(shared);
}

/* ---- misuse and out of memory ---- */

static void double_free(void *arg) {
    strata_pages *pa = strata_pages_create(6, 0);
    void *keep = strata_pages_alloc(pa, 0), *p = strata_pages_alloc(pa, 1);
    th_use(keep);
    strata_pages_free(pa, p, 1);
    strata_pages_free(pa, p, 1);
}
static void wrong_order(void *arg) {
    strata_pages *pa = strata_pages_create(6, 0);
    strata_pages_free(pa, strata_pages_alloc(pa, 2), 1);
}
static void foreign(void *arg) {
    strata_pages *pa = strata_pages_create(6, 0), *other = strata_pages_create(6, 0);
    th_use(strata_pages_alloc(pa, 0));
    strata_pages_free(pa, strata_pages_alloc(other, 0), 0);
}
static void from_malloc(void *arg) {
    strata_pages *pa = strata_pages_create(6, 0);
    strata_pages_free(pa, malloc(100), 0);
}
static void inside(void *arg) {
    strata_pages *pa = strata_pages_create(6, 0);
    char *p = strata_pages_alloc(pa, 2);
    strata_pages_free(pa, p + 2 * th_page_size(), 0);
}
static void destroy_live(void *arg) {
    strata_pages *pa = strata_pages_create(6, 0);
    th_use(strata_pages_alloc(pa, 3));
    strata_pages_destroy(pa);
}

static void pages_misuse_aborts_with_message(void) {
    CHECK_ABORTS(double_free, NULL, "strata_pages_free(): double free of 0x");
    CHECK_ABORTS(wrong_order, NULL, "was allocated with order 2, freed with order 1");
    CHECK_ABORTS(foreign, NULL, "was not allocated by page allocator");
    CHECK_ABORTS(from_malloc, NULL, "was not allocated by page allocator");
    CHECK_ABORTS(inside, NULL, "no allocated block starts there");
    CHECK_ABORTS(destroy_live, NULL, "strata_pages_destroy(): 8 pages still allocated (a block of order 3 at 0x");
}

static void exhaust(void *arg) {
    th_limit_as((size_t)96 << 20);
    strata_pages *pa = strata_pages_create(10, 0);
    static void *b[100000];
    size_t n = 0;
    errno = 0;
    for (; n < 100000; n++)
        if (!(b[n] = strata_pages_alloc(pa, 6))) break;
    if (n == 100000) _exit(10);
    if (errno != ENOMEM) _exit(11);
    if (n * (th_page_size() << 6) < ((size_t)16 << 20)) _exit(12); /* at least 16 MiB */
    for (size_t i = 0; i < n; i++) strata_pages_free(pa, b[i], 6);
    if (pstats(pa).top_blocks != 0) _exit(13);
    if (!(b[0] = strata_pages_alloc(pa, 10))) _exit(14);
}

static void pages_out_of_memory(void) {
    SKIP_IF_EMULATED(TH_EMU_AS);
    if (th_under_valgrind()) SKIP("under valgrind, whose own memory counts against RLIMIT_AS");
    CHECK_CHILD_OK(exhaust, NULL);
}

int main(void) {
    RUN(pages_blocks_aligned_to_their_size);
    RUN(pages_split_then_merge_back);
    RUN(pages_random_orders_never_overlap);
    RUN(pages_keep_and_trim);
    RUN(pages_decommit_gives_memory_back);
    RUN(pages_threads);
    RUN(pages_misuse_aborts_with_message);
    RUN(pages_out_of_memory);
    return 0;
}
