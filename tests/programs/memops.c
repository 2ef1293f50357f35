/*
 * memops.c — libstrata-secure.so's guarded memcpy, memmove, memset and mempcpy (src/api/memops.c,
 * src/secure/bounds.c). In secure mode a copy past a block's end or before its start, by 1 or 32
 * bytes, of a small (8 B), medium (4 KiB) or large (256 KiB) block that is never freed, aborts at
 * the copy with one line naming the write, the block and its size; so does a copy that reads past
 * a block, or from a freed one. In-bounds copies, copies between buffers strata did not allocate
 * (stack, globals, read-only data), copies of 0 bytes anywhere and overlapping moves within a
 * block work, and go through strata's memcpy. In default mode (lib/libstrata.so, or
 * libstrata-secure.so with secure=0) nothing aborts.
 *
 * Each case runs in a child of this program started again with the library preloaded:
 * `memops CASE SIZE`, which does the copy and exits 0 if it returns.
 */
#include "harness.h"

#include <dlfcn.h>
#include <sys/mman.h>

static const char *root = STRATA_ROOT;

static const char *const sizes[] = {"small", "medium", "large"};
static size_t bytes_of(const char *size) {
    return !strcmp(size, "small") ? 8 : !strcmp(size, "medium") ? 4096 : (size_t)256 << 10;
}

/* ---- the child: one case ---- */

static char global_a[256], global_b[256];
static void *volatile sink;

static char *block(size_t n) {
    char *p = malloc(n);
    if (!p) _exit(90);
    sink = p;
    return p;
}

/* The function `name` the program calls must be strata's (in libstrata-secure.so). */
static void must_be_strata(const char *name) {
    Dl_info info;
    void *f = dlsym(RTLD_DEFAULT, name);
    if (!f || !dladdr(f, &info) || !info.dli_fname || !strstr(info.dli_fname, "libstrata-secure.so")) {
        fprintf(stderr, "%s is %s's, not libstrata-secure.so's\n", name,
                f && info.dli_fname ? info.dli_fname : "nobody");
        _exit(91);
    }
}

/* The copies that must work: exit 0, or 92 + what went wrong. */
static void copies_that_work(size_t n) {
    must_be_strata("memcpy");
    must_be_strata("memmove");
    must_be_strata("memset");
    must_be_strata("mempcpy");
    char *p = block(n), *q = block(n);
    /* every byte of the block, in one copy and in pieces */
    if (memset(p, 'x', n) != p || memcpy(q, p, n) != q || q[0] != 'x' || q[n - 1] != 'x') _exit(92);
    for (size_t i = 0; i < n; i += 3) memcpy(q + i, p + i, n - i < 3 ? n - i : 3);
    if ((char *)mempcpy(q, p, n) != q + n) _exit(93);
    /* overlapping moves within the block, both ways */
    for (size_t i = 0; i < n; i++) p[i] = (char)i;
    memmove(p + 1, p, n - 1);
    if (p[1] != 0 || p[n - 1] != (char)(n - 2)) _exit(94);
    memmove(p, p + 1, n - 1);
    if (p[0] != 0 || p[n - 2] != (char)(n - 2)) _exit(95);
    /* 0 bytes, anywhere: nothing is touched */
    memcpy(p + n, q, 0);
    memcpy(p - 1, q + n + 64, 0);
    memmove(p + n + 32, p - 32, 0);
    memset(p + n, 0, 0);
    /* buffers strata did not allocate: the stack, globals, read-only data */
    char stack_a[256], stack_b[256];
    memset(stack_a, 'y', sizeof stack_a);
    memcpy(stack_b, stack_a, sizeof stack_b);
    memcpy(global_a, stack_b, sizeof global_a);
    memmove(global_b, global_a, sizeof global_b);
    memcpy(stack_a, "read-only data", 15);
    if (global_b[255] != 'y' || strcmp(stack_a, "read-only data")) _exit(96);
    /* between a block and the stack */
    size_t k = n < sizeof stack_a ? n : sizeof stack_a;
    memcpy(stack_a, p, k);
    memcpy(p + n - k, stack_b, k);
    /* a block grown by realloc may take the new size; calloc's and aligned blocks are blocks too */
    char *r = realloc(q, n + 100);
    if (!r) _exit(97);
    memset(r, 'z', n + 100);
    char *c = calloc(n, 1), *a = aligned_alloc(64, n), *big = aligned_alloc(262144, n);
    if (!c || !a || !big) _exit(98);
    memcpy(c, r, n);
    memcpy(a, c, n);
    memcpy(big, a, n);
    /* memory of somebody else's in the 4 MiB where a huge block (a mapping of its own, smaller
     * than 4 MiB) starts: not strata's, not checked */
    char *h = block(200000);
    char *hint = (char *)(((uintptr_t)h & ~(uintptr_t)((4 << 20) - 1)) + (2 << 20));
    char *other = mmap(hint, 65536, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (other == hint) {
        memset(other, 1, 65536);
        memcpy(other + 100, h, 1000);
        memmove(h, other, 1000);
    }
    _exit(0);
}

/* One misuse; exit 0 if it returns. */
static void misuse(const char *what, size_t n) {
    char *p = block(n), stack[64];
    size_t k = !strncmp(what + strlen(what) - 2, "32", 2) ? 32 : 1;
    char *src = block(n + 32);
    memset(src, 'A', n + 32);
    if (!strncmp(what, "over-", 5)) memcpy(p, src, n + k);
    else if (!strncmp(what, "under-", 6)) memcpy(p - k, src, k);
    else if (!strcmp(what, "read-past")) memcpy(src, p, n + 1);
    else if (!strcmp(what, "read-freed")) {
        char *f = block(n);
        free(f);
        memcpy(stack, f, sizeof stack < n ? sizeof stack : n);
    } else if (!strcmp(what, "memset-over")) memset(p, 0, n + 1);
    else if (!strcmp(what, "memmove-under")) memmove(p - 1, p, n);
    else if (!strcmp(what, "mempcpy-over")) mempcpy(p, src, n + 1);
    else if (!strcmp(what, "aligned-under")) { /* a large block starts past its span's start */
        char *a = aligned_alloc(262144, n);
        if (!a) _exit(90);
        memcpy(a - 1, src, 1);
    }
    else _exit(89);
    _exit(0); /* no free: the block is never checked again */
}

/* ---- the parent ---- */

static th_result run_case(const char *lib, const char *options, const char *what, const char *size) {
    char pre[4400], opt[256];
    snprintf(pre, sizeof pre, "LD_PRELOAD=%s/lib/%s", root, lib);
    snprintf(opt, sizeof opt, "STRATA_OPTIONS=%s", options);
    char *argv[] = {(char *)"self", (char *)what, (char *)size, NULL};
    char *env[] = {pre, opt, NULL};
    return th_exec_in(argv, env, true);
}

/* The case must abort with one line "strata: FN(): OP of N bytes at ..." holding `want`. */
static void expect_abort(const char *what, const char *size, const char *head, const char *want) {
    th_result r = run_case("libstrata-secure.so", "", what, size);
    CHECKF(th_aborted_with(&r, head), "%s %s: expected an abort saying '%s'; got exit %d signal %d: %.300s",
           what, size, head, r.code, r.sig, r.err);
    CHECKF(!want || strstr(r.err, want), "%s %s: the message does not say '%s': %.300s", what, size, want,
           r.err);
}

static void overflows_abort(void) {
    for (int s = 0; s < 3; s++) {
        size_t n = bytes_of(sizes[s]);
        char head[128], want[64];
        snprintf(head, sizeof head, "strata: memcpy(): write of %zu bytes at ", n + 1);
        snprintf(want, sizeof want, "overflows the %zu-byte block at ", n);
        expect_abort("over-1", sizes[s], head, want);
        snprintf(head, sizeof head, "strata: memcpy(): write of %zu bytes at ", n + 32);
        expect_abort("over-32", sizes[s], head, want);
    }
}

static void underflows_abort(void) {
    for (int s = 0; s < 3; s++) {
        size_t n = bytes_of(sizes[s]);
        char want[64];
        snprintf(want, sizeof want, "underflows the %zu-byte block at ", n);
        expect_abort("under-1", sizes[s], "strata: memcpy(): write of 1 bytes at ", want);
        /* 32 bytes before an 8-byte block may be another live block's start: its overflow then */
        expect_abort("under-32", sizes[s], "strata: memcpy(): write of 32 bytes at ", s ? want : NULL);
    }
}

static void reads_and_other_functions_abort(void) {
    for (int s = 0; s < 3; s++) {
        size_t n = bytes_of(sizes[s]);
        char head[128], want[64];
        snprintf(want, sizeof want, "overflows the %zu-byte block at ", n);
        snprintf(head, sizeof head, "strata: memcpy(): read of %zu bytes at ", n + 1);
        expect_abort("read-past", sizes[s], head, want);
        snprintf(head, sizeof head, "strata: memset(): write of %zu bytes at ", n + 1);
        expect_abort("memset-over", sizes[s], head, want);
        snprintf(head, sizeof head, "strata: mempcpy(): write of %zu bytes at ", n + 1);
        expect_abort("mempcpy-over", sizes[s], head, want);
        snprintf(head, sizeof head, "strata: memmove(): write of %zu bytes at ", n);
        snprintf(want, sizeof want, "underflows the %zu-byte block at ", n);
        expect_abort("memmove-under", sizes[s], head, want);
    }
    for (int s = 0; s < 3; s++) {
        char want[64];
        snprintf(want, sizeof want, "underflows the %zu-byte block at ", bytes_of(sizes[s]));
        expect_abort("aligned-under", sizes[s], "strata: memcpy(): write of 1 bytes at ", want);
    }
    /* (not the large block: a freed huge block's mapping is inaccessible, and strata's no more) */
    for (int s = 0; s < 2; s++)
        expect_abort("read-freed", sizes[s], "strata: memcpy(): read of ", "is in the free block at ");
}

static void in_bounds_copies_work(void) {
    for (int s = 0; s < 3; s++) {
        th_result r = run_case("libstrata-secure.so", "", "work", sizes[s]);
        CHECKF(r.exited && r.code == 0 && !r.err[0], "%s: exit %d signal %d: %.300s", sizes[s], r.code,
               r.sig, r.err);
    }
}

/* Default mode checks nothing: the misuses run to their end (the blocks are never used again). */
static void default_mode_does_not_check(void) {
    static const char *const cases[] = {"over-1", "over-32", "under-1", "read-past", "memset-over"};
    static const struct {
        const char *lib, *options;
    } modes[] = {{"libstrata.so", "profile_rate=0"}, {"libstrata-secure.so", "secure=0"}};
    for (size_t m = 0; m < 2; m++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            for (int s = 0; s < 3; s++) {
                th_result r = run_case(modes[m].lib, modes[m].options, cases[c], sizes[s]);
                CHECKF(r.exited && r.code == 0, "%s %s %s %s: exit %d signal %d: %.300s", modes[m].lib,
                       modes[m].options, cases[c], sizes[s], r.code, r.sig, r.err);
            }
    th_result r = run_case("libstrata-secure.so", "secure=0", "work", "medium");
    CHECKF(r.exited && r.code == 0, "secure=0, in-bounds copies: exit %d signal %d: %.300s", r.code, r.sig,
           r.err);
}

int main(int argc, char **argv) {
    if (argc == 3) {
        size_t n = bytes_of(argv[2]);
        if (!strcmp(argv[1], "work")) copies_that_work(n);
        misuse(argv[1], n);
    }
    char lib[4200];
    snprintf(lib, sizeof lib, "%s/lib/libstrata-secure.so", root);
    if (access(lib, R_OK) != 0) {
        printf("not ok setup: %s is not built\n", lib);
        return 0;
    }
    RUN(overflows_abort);
    RUN(underflows_abort);
    RUN(reads_and_other_functions_abort);
    RUN(in_bounds_copies_work);
    RUN(default_mode_does_not_check);
    return 0;
}
