/*
 * secure.c — what secure mode does beyond the security corpus's single misuses: malloc(0)
 * addresses that never repeat, freed huge blocks zeroed, held inaccessible and reused, large
 * blocks zeroed at free, writes after free into big blocks caught although the quarantine checks
 * a sample of each. The program runs itself again with STRATA_OPTIONS=secure=1.
 */
#include <malloc.h>
#include <stdint.h>

#include "harness.h"
#include "strata.h"

static bool all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

static void secure_mode_is_on(void) {
    void *p = malloc(5);
    CHECKF(malloc_usable_size(p) == 5, "usable %zu: not in secure mode", malloc_usable_size(p));
    free(p);
}

/* Far more zero-size blocks than the first region holds (64 MiB / 16): no address comes twice,
 * and each can be freed, resized and measured. */
static void zero_size_blocks_never_repeat(void) {
    enum { KEEP = 1000, MORE = 4500000 };
    static void *kept[KEEP];
    for (int i = 0; i < KEEP; i++) kept[i] = malloc(0);
    uintptr_t lo = (uintptr_t)kept[0], hi = (uintptr_t)kept[KEEP - 1];
    for (int i = 1; i < KEEP; i++) CHECK(kept[i] != NULL && kept[i] != kept[i - 1]);
    for (long i = 0; i < MORE; i++) {
        void *z = malloc(0);
        CHECK(z != NULL);
        CHECKF((uintptr_t)z < lo || (uintptr_t)z > hi, "malloc(0) #%ld = %p, handed out before", i, z);
        free(z);
    }
    CHECK(malloc_usable_size(kept[0]) == 0);
    char *r = realloc(kept[0], 10);
    CHECK(r != NULL && malloc_usable_size(r) == 10);
    memcpy(r, "123456789", 10);
    free(r);
    for (int i = 1; i < KEEP; i++) free(kept[i]);
}

static void touch_zero_block(void *arg) {
    volatile char *z = malloc(0);
    z[(uintptr_t)arg] = 1;
}
static void zero_size_blocks_fault(void) {
    th_result r = th_child(touch_zero_block, (void *)(uintptr_t)0);
    CHECKF(r.signaled && r.sig == SIGSEGV, "writing malloc(0): exit %d signal %d", r.code, r.sig);
}

/* Freed huge blocks come back zeroed, whether the mapping was reused or made anew, and whether
 * the program touched every page of them or only some. */
static void huge_blocks_come_back_zeroed(void) {
    enum { N = 12 };
    static const size_t sizes[N] = {200000, 1 << 20, 3 << 20, 300000, 5 << 20, 1 << 20,
                                     2 << 20, 700000, 1 << 20, 4 << 20, 150000, 6 << 20};
    for (int round = 0; round < 3; round++) {
        unsigned char *p[N];
        for (int i = 0; i < N; i++) {
            size_t n = sizes[(i + round) % N];
            p[i] = malloc(n);
            CHECK(p[i] != NULL);
            CHECKF(all_zero(p[i], n), "round %d: a %zu-byte huge block came back dirty", round, n);
            if (i % 2) memset(p[i], 0xa5, n);                                /* every page */
            else for (size_t o = 0; o < n; o += 3 * 4096) p[i][o] = 0x5a; /* some pages */
        }
        for (int i = 0; i < N; i++) free(p[i]);
    }
}

static void read_freed_huge(void *arg) {
    volatile unsigned char *p = malloc(1 << 20);
    p[100] = 1;
    free((void *)p);
    (void)p[100];
}
static void free_huge_twice(void *arg) {
    void *p = malloc(1 << 20);
    free(p);
    free(p);
}
static void freed_huge_blocks_are_held(void) {
    th_result r = th_child(read_freed_huge, NULL);
    CHECKF(r.signaled && r.sig == SIGSEGV, "read after free of a huge block: exit %d signal %d", r.code,
           r.sig);
    CHECK_ABORTS(free_huge_twice, NULL, "free(): double free of 0x");
}

/* A large block (an alignment no size class has) reads back zero once freed, but for the two words
 * the core keeps in a free block (its link and its free key). */
static void large_blocks_are_zeroed_at_free(void) {
    void *p = NULL;
    CHECK(posix_memalign(&p, 256 << 10, 5000) == 0);
    CHECK(((uintptr_t)p & ((256 << 10) - 1)) == 0);
    memset(p, 0x77, 5000);
    free(p);
    CHECK(all_zero((unsigned char *)p + 16, 5000 - 16)); /* the span stays mapped */
}

/* A write after free into a big block (over 512 bytes: its release from the quarantine checks a
 * sample of it, secure_verify) is caught wherever it lands once malloc_trim checks the quarantine,
 * and in the block's first 64 bytes whenever the block leaves the quarantine. */
static void write_freed_then_trim(void *arg) {
    volatile unsigned char *p = malloc(4096);
    free((void *)p);
    p[(uintptr_t)arg] = 1;
    malloc_trim(0);
}
static void write_freed_then_churn(void *arg) {
    (void)arg;
    volatile unsigned char *p = malloc(4096);
    free((void *)p);
    p[40] = 1;
    for (int i = 0; i < 3000; i++) free(malloc(4096)); /* p leaves the quarantine, at random */
}
static void sampled_release_still_catches(void) {
    for (uintptr_t at = 24; at < 4096; at += 1000)
        CHECK_ABORTS(write_freed_then_trim, (void *)at, "malloc_trim(): write after free");
    CHECK_ABORTS(write_freed_then_churn, NULL, "free(): write after free");
}

int main(int argc, char **argv) {
    const char *opt = getenv("STRATA_OPTIONS");
    if (!opt || !strstr(opt, "secure=1")) {
        setenv("STRATA_OPTIONS", "secure=1", 1);
        th_exec_self(argv);
        printf("not ok setup: cannot run again in secure mode: %s\n", strerror(errno));
        return 1;
    }
    RUN(secure_mode_is_on);
    RUN(zero_size_blocks_never_repeat);
    RUN(zero_size_blocks_fault);
    RUN(huge_blocks_come_back_zeroed);
    RUN(freed_huge_blocks_are_held);
    RUN(large_blocks_are_zeroed_at_free);
    RUN(sampled_release_still_catches);
    return 0;
}
