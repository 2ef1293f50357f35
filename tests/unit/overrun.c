/*
 * overrun.c — what default mode sees around blocks without a header beside each: the canary in
 * the pad of the classes above 1 KiB (an overflow past a block, an underflow of the block after
 * it), the bytes below a huge block, the link of the block freed last in a page (a write after
 * free), and the size a sized free gives. Each misuse aborts with one "strata: " line naming the
 * block; the program's own bytes, up to malloc_usable_size, are never taken for one.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>

#include "harness.h"
#include "strata.h"

void free_sized(void *ptr, size_t size); /* C23; glibc 2.36's headers do not declare it yet */

static void expect_abort(void (*fn)(void *), void *arg, const char *what) { th_expect_abort(fn, arg, what, true); }

static const size_t padded_sizes[] = {1025, 1200, 2000, 4096, 5000, 8192, 20000, 65536, 100000};
enum { NPADDED = sizeof padded_sizes / sizeof padded_sizes[0] };

/* ---- the pad: overflows ---- */

/* The bytes a stray write most often leaves: a string's NUL, text, and the ends of a byte's range.
 * The canary's edge bytes can never be any of them, so these overflows are caught every time, not
 * 255 times in 256. */
static const unsigned char stray_bytes[] = {0x00, ' ', 'A', 'z', 0x7f, 0xff};
enum { NSTRAY = sizeof stray_bytes / sizeof stray_bytes[0] };
static unsigned char stray; /* the byte the child writes */
enum { PAD_ROOM = 64 };   /* at most what a block of a class keeps past usable */

static void write_past_usable(void *p) {
    char *c = p;
    c[malloc_usable_size(p)] = (char)stray; /* one byte */
    free(p);
}
static void write_32_past_usable(void *p) {
    char *c = p;
    memset(c + malloc_usable_size(p), 'A', 32);
    free(p);
}
static void overflow_by_one_byte(void) {
    for (int i = 0; i < NPADDED; i++) {
        void *p = malloc(padded_sizes[i]);
        CHECK(p != NULL);
        stray = 'A';
        expect_abort(write_past_usable, p, "free(): heap overflow at the ");
        if (th_failed) return;
        free(p);
    }
}
/* Every padded class, each stray byte. */
static void overflow_by_one_stray_byte_in_every_class(void) {
    int classes = 0;
    for (size_t n = 1025; n < (128 << 10) - PAD_ROOM; classes++) { /* below the mmap threshold */
        char *p = malloc(n);
        CHECK(p != NULL);
        for (int v = 0; v < NSTRAY; v++) {
            stray = stray_bytes[v];
            expect_abort(write_past_usable, p, "free(): heap overflow at the ");
            if (th_failed) {
                printf("# %zu-byte block, byte 0x%02x\n", n, stray);
                return;
            }
        }
        n = malloc_usable_size(p) + 1;
        free(p);
    }
    CHECKF(classes >= 16, "only %d classes above 1 KiB", classes);
}
static void overflow_by_32_bytes(void) {
    void *p = malloc(4096);
    expect_abort(write_32_past_usable, p, "free(): heap overflow at the ");
    free(p);
}

/* An underflow of a block writes the end of the block before it: the pad's canary, checked when
 * that block is freed. A block's neighbour is found among a batch of blocks of its class (the
 * smallest gap between two of them), not assumed to be the next one malloc returns: that one may
 * come from another page, or from a free list in another order. */
enum { NBATCH = 32 };
static char *next_block; /* the block right after the one the child is given */
static void write_before_next(void *p) {
    char *b = next_block;
    b[-1] = (char)stray;
    free(b); /* b itself is whole */
    free(p);
}
static void underflow_of_the_next_block(void) {
    char *blocks[NBATCH], *lo = NULL;
    size_t gap = SIZE_MAX;
    for (int i = 0; i < NBATCH; i++) CHECK((blocks[i] = malloc(4096)) != NULL);
    for (int i = 0; i < NBATCH; i++)
        for (int j = 0; j < NBATCH; j++)
            if (blocks[j] > blocks[i] && (size_t)(blocks[j] - blocks[i]) < gap) {
                gap = (size_t)(blocks[j] - blocks[i]);
                lo = blocks[i];
                next_block = blocks[j];
            }
    CHECKF(lo != NULL && gap >= malloc_usable_size(lo) && gap <= 4096 + 1024,
           "no two of %d blocks of 4096 bytes are neighbours (smallest gap %zu)", NBATCH, gap);
    for (int v = 0; v < NSTRAY && !th_failed; v++) {
        stray = stray_bytes[v];
        expect_abort(write_before_next, lo, "free(): heap overflow at the ");
    }
    for (int i = 0; i < NBATCH; i++) free(blocks[i]);
}

/* Everything malloc_usable_size promises is the program's: no false alarm at free or realloc. */
static void usable_bytes_are_the_programs(void) {
    for (size_t n = 1; n <= 200000; n += n < 2048 ? 1 : 997) {
        char *p = malloc(n);
        CHECK(p != NULL);
        size_t u = malloc_usable_size(p);
        CHECKF(u >= n, "malloc(%zu): usable %zu", n, u);
        memset(p, 0xff, u);
        p = realloc(p, u); /* in place, or moved: either way intact */
        CHECK(p != NULL);
        memset(p, 0xee, malloc_usable_size(p));
        free(p);
    }
    for (int i = 0; i < NPADDED; i++) { /* calloc and the aligned kinds too */
        char *c = calloc(1, padded_sizes[i]), *m = NULL;
        CHECK(c != NULL && posix_memalign((void **)&m, 64, padded_sizes[i]) == 0);
        memset(c, 1, malloc_usable_size(c));
        memset(m, 1, malloc_usable_size(m));
        free(c);
        free(m);
    }
}

/* ---- below a huge block ---- */

static void write_before_huge(void *p) {
    ((char *)p)[-1] = (char)stray;
    free(p);
}
static void write_32_before_huge(void *p) {
    memset((char *)p - 32, 'A', 32);
    free(p);
}
static void underflow_of_a_huge_block(void) {
    void *p = malloc(1 << 20);
    for (int v = 0; v < NSTRAY && !th_failed; v++) {
        stray = stray_bytes[v];
        expect_abort(write_before_huge, p, "free(): heap underflow before the block at ");
    }
    expect_abort(write_32_before_huge, p, "free(): heap underflow before the block at ");
    free(p);
}

/* ---- a write after free, seen at the next free in the page ---- */

/* The check is of the block freed last in the page, so a and b must share one: two blocks in the
 * same 64 KiB-aligned window do (a page is whole slices of 64 KiB). The next block malloc returns
 * may be on another page: the first of a fresh page, or one on another page's list. */
static void write_after_free_then_free(void *size) {
    size_t n = (size_t)(uintptr_t)size;
    char *blocks[64], *a = NULL, *b = NULL;
    for (int i = 0; i < 64 && !b; i++) {
        blocks[i] = malloc(n);
        for (int j = 0; j < i && !b; j++)
            if (((uintptr_t)blocks[j] ^ (uintptr_t)blocks[i]) >> 16 == 0) a = blocks[j], b = blocks[i];
    }
    if (!b) _exit(3); /* no two blocks on one page: nothing to test */
    free(a);
    memset(a, 'A', 8); /* the stale pointer's first field */
    free(b);
    _exit(0);
}
static void write_after_free_is_seen_at_the_next_free(void) {
    static const size_t sizes[] = {8, 64, 700, 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        th_expect_abort(write_after_free_then_free, (void *)(uintptr_t)sizes[i], "free list corrupted at the", false);
        if (th_failed) {
            printf("# at %zu bytes\n", sizes[i]);
            return;
        }
    }
}

/* ---- sized frees ---- */

static void free_sized_wrong(void *p) { free_sized(p, 1); }
static void free_sized_larger(void *p) { free_sized(p, 2 * malloc_usable_size(p) + 1); }
static void sized_free_of_the_wrong_size(void) {
    void *p = malloc(4096);
    expect_abort(free_sized_wrong, p, "free_sized(): size 1 given for the ");
    expect_abort(free_sized_larger, p, "free_sized(): size ");
    free(p);
    mallopt(M_MMAP_THRESHOLD, 128 << 10); /* freed huge blocks raised it: 1 MiB is huge again */
    p = malloc(1 << 20);
    expect_abort(free_sized_wrong, p, "free_sized(): size 1 given for the ");
    free(p);
    p = malloc(24);
    expect_abort(free_sized_larger, p, "free_sized(): size ");
    free(p);
}
static void sized_free_of_the_right_size(void) {
    static const size_t sizes[] = {0, 1, 8, 16, 17, 100, 1024, 1025, 4096, 70000, 131072, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *p = malloc(sizes[i]);
        CHECK(p != NULL);
        free_sized(p, sizes[i]);
    }
    char *p = malloc(4000), *q = realloc(p, 2400); /* in place: the class of 4000 holds 2400 */
    CHECK(q != NULL);
    free_sized(q, 2400);
    mallopt(M_MMAP_THRESHOLD, 4096); /* huge blocks for small sizes, once */
    p = malloc(5000);
    free_sized(p, 5000);
    mallopt(M_MMAP_THRESHOLD, 128 << 10);
    p = malloc(5000);
    free_sized(p, 5000);
}

int main(void) {
    RUN(overflow_by_one_byte);
    RUN(overflow_by_one_stray_byte_in_every_class);
    RUN(overflow_by_32_bytes);
    RUN(underflow_of_the_next_block);
    RUN(usable_bytes_are_the_programs);
    RUN(underflow_of_a_huge_block);
    RUN(write_after_free_is_seen_at_the_next_free);
    RUN(sized_free_of_the_wrong_size);
    RUN(sized_free_of_the_right_size);
    return 0;
}
