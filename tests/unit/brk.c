/*
 * brk.c — the heap grows with the program break and shows as [heap], the top is trimmed, foreign
 * movers of the break are respected, and brk failures fall back to mmap.
 */
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>

#include "harness.h"
#include "strata.h"

/* The [heap] line of /proc/self/maps. */
static int heap_range(uintptr_t *lo, uintptr_t *hi) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "[heap]")) {
            unsigned long a, b;
            if (sscanf(line, "%lx-%lx", &a, &b) == 2) *lo = a, *hi = b, found = 1;
        }
    }
    fclose(f);
    return found;
}

static int stats_heap_bytes_positive(void) {
    struct strata_stats s;
    strata_get_stats(&s);
    return s.heap_bytes > 0;
}

static void small_blocks_live_in_heap(void) {
    SKIP_IF_EMULATED(TH_EMU_BRK);
    char *p = malloc(100);
    CHECK(p != NULL);
    uintptr_t lo, hi;
    CHECKF(heap_range(&lo, &hi), "no [heap] in /proc/self/maps");
    CHECKF((uintptr_t)p >= lo && (uintptr_t)p < hi, "%p not in [heap] %lx-%lx", (void *)p,
           (unsigned long)lo, (unsigned long)hi);
    CHECK(stats_heap_bytes_positive());
    free(p);
}

static void break_grows_and_is_trimmed(void) {
    enum { N = 24000 };
    static void *p[N];
    uintptr_t start = (uintptr_t)sbrk(0);
    for (int i = 0; i < N; i++) {
        p[i] = malloc(1000);
        CHECK(p[i] != NULL);
        memset(p[i], i, 1000);
    }
    uintptr_t grown = (uintptr_t)sbrk(0);
    CHECKF(grown - start >= (16u << 20), "break grew by %lu for 24 MB of blocks",
           (unsigned long)(grown - start));
    for (int i = 0; i < N; i++) free(p[i]);
    uintptr_t after = (uintptr_t)sbrk(0);
    CHECKF(grown - after >= (12u << 20), "break went down only by %lu bytes after freeing",
           (unsigned long)(grown - after));
    malloc_trim(0);
    uintptr_t trimmed = (uintptr_t)sbrk(0);
    CHECKF(trimmed <= after, "malloc_trim raised the break");
    CHECKF(trimmed < start + (5u << 20), "break %lu above the start after malloc_trim",
           (unsigned long)(trimmed - start));
}

/* Another user of sbrk between strata's calls: its memory is never touched or given back. */
static void foreign_sbrk_is_respected(void) {
    void *a = malloc(200);
    CHECK(a != NULL);
    char *mine = sbrk(1 << 20);
    CHECK(mine != (void *)-1);
    memset(mine, 0x3C, 1 << 20);
    enum { N = 20000 };
    static void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(1500);
        CHECK(p[i] != NULL);
        memset(p[i], 0x77, 1500);
        CHECK((char *)p[i] + 1500 <= mine || (char *)p[i] >= mine + (1 << 20));
    }
    for (int i = 0; i < N; i++) free(p[i]);
    free(a);
    malloc_trim(0);
    CHECK((char *)sbrk(0) >= mine + (1 << 20)); /* never lowered below foreign memory */
    for (int i = 0; i < (1 << 20); i++) CHECKF(mine[i] == 0x3C, "foreign byte %d changed", i);
}

/* A mapping just past the break stops brk: strata must go on with mmap'd segments. */
static void blocked_brk_child(void *arg) {
    (void)arg;
    uintptr_t cur = (uintptr_t)sbrk(0);
    uintptr_t at = (cur + (2u << 20)) & ~(uintptr_t)4095;
    void *wall = mmap((void *)at, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                      -1, 0);
    if (wall == MAP_FAILED) _exit(10);
    enum { N = 40000 };
    static char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(700);
        if (!p[i]) _exit(1);
        memset(p[i], (char)i, 700);
    }
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 700; j++)
            if (p[i][j] != (char)i) _exit(2);
        free(p[i]);
    }
}
static void brk_failure_falls_back_to_mmap(void) {
    th_result r = th_child(blocked_brk_child, NULL);
    CHECKF(r.exited && r.code == 0, "child exited %d (signal %d): %s", r.code, r.sig, r.err);
}

static void mode_brk_off(void) {
    void *p = malloc(100);
    uintptr_t lo = 0, hi = 0;
    int has = heap_range(&lo, &hi);
    int inside = has && (uintptr_t)p >= lo && (uintptr_t)p < hi;
    printf("%s\n", inside ? "in-heap" : "not-in-heap");
    free(p);
}
/* Without the heap profile: a block it samples lives in a mapping of its own, not in [heap]. */
static void option_brk_off_uses_mmap(void) {
    SKIP_IF_EMULATED(TH_EMU_BRK);
    th_result r = th_self("brk-off", "brk=0,profile_rate=0");
    CHECKF(r.exited && r.code == 0, "exit %d: %s", r.code, r.err);
    CHECKF(strstr(r.out, "not-in-heap") != NULL, "with brk=0: %s", r.out);
    r = th_self("brk-off", "brk=1,profile_rate=0");
    CHECKF(strstr(r.out, "in-heap") == r.out, "with brk=1: %s", r.out);
}

/* malloc_trim's pad is a size: a huge one keeps everything, it does not wrap around. */
static void trim_with_huge_pad_keeps_live_blocks(void) {
    char *keep = malloc(1 << 20), *drop = malloc(1 << 20);
    CHECK(keep && drop);
    memset(keep, 1, 1 << 20);
    free(drop);
    malloc_trim(SIZE_MAX - (1 << 20));
    memset(keep, 2, 1 << 20); /* still mapped */
    CHECK(keep[(1 << 20) - 1] == 2);
    free(keep);
}

/* M_TRIM_THRESHOLD of -1 means "never trim", as in glibc. */
static void no_trim_child(void *arg) {
    mallopt(M_TRIM_THRESHOLD, -1);
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    char *a = malloc(100);
    char *big = malloc(2 << 20);
    if (!a || !big) _exit(1);
    memset(big, 1, 2 << 20);
    void *before = sbrk(0);
    free(big);
    if (sbrk(0) != before) _exit(2);
    free(a);
}
static void trim_threshold_minus_one_never_trims(void) {
    th_result r = th_child(no_trim_child, NULL);
    CHECKF(r.exited && r.code == 0, "child exited %d (signal %d): %s", r.code, r.sig, r.err);
}

/* Address space of the process now (VmSize, KiB). */
static long vm_size_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* Empty segments below one still in use cannot go back by lowering the break: malloc_trim gives
 * back their address space anyway (all but a page of each), and they are used again after. */
enum { PIN_N = 1500 };
static void *pin_blocks[PIN_N];
static void *pin_fill(void) {
    for (int i = 0; i < PIN_N; i++) {
        pin_blocks[i] = malloc(64 << 10);
        if (!pin_blocks[i]) _exit(10);
        th_fill(pin_blocks[i], 64 << 10, (unsigned)i);
    }
    void *pin = malloc(64 << 10); /* the highest block: the break cannot come down past it */
    for (int i = 0; i < PIN_N; i++) free(pin_blocks[i]);
    return pin;
}
static void punched_child(void *arg) {
    uintptr_t lo, hi;
    void *pin = pin_fill();
    if (!heap_range(&lo, &hi) || (uintptr_t)pin < lo || (uintptr_t)pin >= hi) _exit(11); /* in [heap] */
    long before = vm_size_kb();
    malloc_trim(0);
    long after = vm_size_kb();
    if (before - after < 64 << 10) { /* 94 MiB of empty segments: most of it must go */
        fprintf(stderr, "address space %ld -> %ld KiB\n", before, after);
        _exit(12);
    }
    for (int i = 0; i < PIN_N; i++) { /* the holes are mapped again */
        pin_blocks[i] = malloc(64 << 10);
        if (!pin_blocks[i]) _exit(13);
        th_fill(pin_blocks[i], 64 << 10, (unsigned)i);
    }
    for (int i = 0; i < PIN_N; i++)
        if (!th_verify(pin_blocks[i], 64 << 10, (unsigned)i)) _exit(14);
    for (int i = 0; i < PIN_N; i++) free(pin_blocks[i]);
    free(pin);
}
static void empty_segments_below_the_top_give_back_address_space(void) {
    SKIP_IF_EMULATED(TH_EMU_BRK);
    CHECK_CHILD_OK(punched_child, NULL);
}

/* Someone maps into a hole left that way: strata never uses that segment again, and never lowers
 * the break through that mapping. */
static void taken_hole_child(void *arg) {
    void *pin = pin_fill();
    malloc_trim(0);
    /* a 4 MiB-aligned address below the pinned block: a punched segment, its body unmapped */
    uintptr_t seg = ((uintptr_t)pin & ~(uintptr_t)((4 << 20) - 1)) - (8 << 20);
    char *theirs = mmap((void *)(seg + (1 << 20)), 4096, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (theirs == MAP_FAILED) _exit(21); /* the hole was not there */
    strcpy(theirs, "not strata's");
    for (int i = 0; i < PIN_N; i++) {
        pin_blocks[i] = malloc(64 << 10);
        if (!pin_blocks[i]) _exit(22);
        th_fill(pin_blocks[i], 64 << 10, (unsigned)i);
        if ((char *)pin_blocks[i] + (64 << 10) > theirs && (char *)pin_blocks[i] < theirs + 4096) _exit(23);
    }
    for (int i = 0; i < PIN_N; i++)
        if (!th_verify(pin_blocks[i], 64 << 10, (unsigned)i)) _exit(24);
    for (int i = 0; i < PIN_N; i++) free(pin_blocks[i]);
    free(pin);
    malloc_trim(0); /* everything empty: the break comes down as far as it can */
    if (strcmp(theirs, "not strata's")) _exit(25);
}
static void a_hole_someone_took_is_left_alone(void) { CHECK_CHILD_OK(taken_hole_child, NULL); }

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "brk-off")) {
        mode_brk_off();
        return 0;
    }
    th_without_profile(argv); /* they look at where blocks lie in the brk heap */
    RUN(small_blocks_live_in_heap);
    RUN(break_grows_and_is_trimmed);
    RUN(empty_segments_below_the_top_give_back_address_space); /* before anyone else moves the break */
    RUN(a_hole_someone_took_is_left_alone);
    RUN(foreign_sbrk_is_respected);
    RUN(brk_failure_falls_back_to_mmap);
    RUN(option_brk_off_uses_mmap);
    RUN(trim_with_huge_pad_keeps_live_blocks);
    RUN(trim_threshold_minus_one_never_trims);
    return 0;
}
