/*
 * misuse.c — double frees and invalid frees are caught: one line on stderr starting "strata: "
 * that names the call and the address, then abort. Foreign pointers obey foreign_free.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#include "harness.h"
#include "strata.h"

static char global_buf[64];

static void expect_abort(void (*fn)(void *), void *arg, const char *what) {
    th_expect_abort(fn, arg, what, arg != NULL);
}

/* ---- double free ---- */

static void free_twice(void *size) {
    void *p = malloc((size_t)(uintptr_t)size);
    free(p);
    free(p);
}
static void double_free_small(void) { expect_abort(free_twice, NULL, "free(): double free of 0x"); }

/* Each size is checked in its own child with the pointer known in advance, so the message can be
 * matched against the address. */
static size_t df_size;
static void *df_block;
static void free_block_twice(void *p) {
    free(p);
    free(p);
}
static void double_free_each_kind(void) {
    static const size_t sizes[] = {1, 16, 100, 1024, 5000, 70000, 128 * 1024 - 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        df_size = sizes[i];
        df_block = malloc(df_size);
        expect_abort(free_block_twice, df_block, "double free of");
        if (th_failed) return;
        free(df_block);
    }
}

/* ---- a free block's link overwritten ---- */

/* Overflow from a block into the free block after it (found among a batch: the next block malloc
 * returns may be on another page), then allocate until the list reaches the rewritten link. */
static void overflow_into_free_block(void *byte) {
    char *blocks[64], *a = NULL, *b = NULL;
    for (int i = 0; i < 64 && !b; i++) {
        blocks[i] = malloc(200);
        for (int j = 0; j < i && !b; j++) {
            if (blocks[i] == blocks[j] + 208) a = blocks[j], b = blocks[i];
            if (blocks[j] == blocks[i] + 208) a = blocks[i], b = blocks[j];
        }
    }
    if (!b) _exit(3); /* no neighbours: nothing to test */
    free(b);
    memset(a + 200, (int)(uintptr_t)byte, 16); /* 8 bytes too far: b's link */
    for (int i = 0; i < 1000; i++) (void)malloc(200);
    _exit(0);
}
static void free_list_corruption(void) {
    for (uintptr_t byte = 0x41; byte < 256; byte += 0x41) { /* (zeros: a list cut short, no harm) */
        th_result r = th_child(overflow_into_free_block, (void *)byte);
        CHECKF(th_aborted_with(&r, "malloc(): free list corrupted at the 208-byte block 0x"),
               "byte %#lx: exit %d signal %d: %s", (unsigned long)byte, r.code, r.sig, r.err);
    }
}

static void free_huge_twice(void *p) {
    free(p);
    free(p); /* unmapped by the first free, but remembered */
}
static void double_free_huge(void) {
    void *p = malloc(1 << 20);
    expect_abort(free_huge_twice, p, "free(): double free of");
    free(p);
}
/* The case: 300 KB, between other huge blocks' frees, and kept mappings (below the
 * threshold, once it has risen) as well as unmapped ones. */
static void free_huge_twice_later(void *unused) {
    mallopt(M_MMAP_THRESHOLD, 128 << 10); /* earlier tests raised it: a 300 KB block is huge again */
    void *p = malloc(300000);
    free(p);
    for (int i = 0; i < 20; i++) free(malloc(((size_t)i + 1) << 20)); /* others come and go */
    free(p);
}
static void double_free_huge_later(void) {
    expect_abort(free_huge_twice_later, NULL, "free(): double free of");
}
static void realloc_huge_after_free(void *unused) {
    mallopt(M_MMAP_THRESHOLD, 128 << 10);
    void *p = malloc(1 << 20);
    free(p);
    void *q = realloc(p, 10);
    th_use(q);
}
static void realloc_of_freed_huge_block(void) {
    expect_abort(realloc_huge_after_free, NULL, "(the block was already freed)");
}

static void free_large_twice(void *unused) {
    mallopt(M_MMAP_THRESHOLD, 4 << 20); /* keep it in a segment */
    void *p = malloc(1 << 20);
    free(p);
    free(p);
}
static void double_free_large(void) {
    expect_abort(free_large_twice, NULL, "free(): double free of 0x");
}

static void free_delayed_twice(void *unused) {
    void *a = malloc(40), *b = malloc(40), *c = malloc(40);
    free(a);
    free(b);
    free(c);
    free(a); /* not the last block freed */
}
static void double_free_delayed(void) { expect_abort(free_delayed_twice, NULL, "double free of"); }

static void free_after_reuse(void *unused) {
    void *a = malloc(48);
    free(a);
    void *b = malloc(48); /* very likely the same block */
    free(b);
    free(a == b ? b : b);
}
static void double_free_after_reuse(void) { expect_abort(free_after_reuse, NULL, "double free of"); }

static void *remote_free(void *p) {
    free(p);
    return NULL;
}
static void free_in_two_threads(void *unused) {
    void *p = malloc(64);
    pthread_t t;
    pthread_create(&t, NULL, remote_free, p);
    pthread_join(t, NULL);
    free(p); /* the other thread freed it already */
}
static void double_free_across_threads(void) {
    expect_abort(free_in_two_threads, NULL, "double free of");
}

static void realloc_freed(void *unused) {
    void *p = malloc(64);
    free(p);
    p = realloc(p, 128);
}
static void realloc_after_free(void) {
    expect_abort(realloc_freed, NULL, "realloc(): invalid pointer");
}

/* ---- invalid pointers ---- */

static void free_ptr(void *p) { free(p); }

static void invalid_free_stack(void) {
    char buf[32];
    th_use(buf);
    expect_abort(free_ptr, buf, "free(): invalid pointer");
}
static void invalid_free_global(void) { expect_abort(free_ptr, global_buf, "free(): invalid pointer"); }
static void invalid_free_wild(void) {
    expect_abort(free_ptr, (void *)(uintptr_t)0x1000, "free(): invalid pointer");
    expect_abort(free_ptr, (void *)(uintptr_t)-64, "free(): invalid pointer");
    expect_abort(free_ptr, (void *)(uintptr_t)0x7fffffffffffULL, "free(): invalid pointer");
}
static void invalid_free_interior(void) {
    static const size_t sizes[] = {32, 256, 4096, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *p = malloc(sizes[i]);
        expect_abort(free_ptr, p + 16, "free(): invalid pointer");
        expect_abort(free_ptr, p + 1, "free(): invalid pointer");
        free(p);
        if (th_failed) return;
    }
    char *huge = malloc(8 << 20);
    expect_abort(free_ptr, huge + 4096, "free(): invalid pointer");
    free(huge);
}
static void invalid_free_before_block(void) {
    char *p = malloc(64);
    char *q = malloc(64);
    expect_abort(free_ptr, q - 8, "free(): invalid pointer");
    free(p);
    free(q);
}
static void invalid_free_mmap(void) {
    void *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    expect_abort(free_ptr, m, "free(): invalid pointer");
    munmap(m, 1 << 16);
}
static void usable_ptr(void *p) { th_use((void *)(uintptr_t)malloc_usable_size(p)); }
static void realloc_ptr(void *p) { th_use(realloc(p, 100)); }
static void invalid_realloc_and_usable_size(void) {
    char buf[16];
    th_use(buf);
    expect_abort(realloc_ptr, buf, "realloc(): invalid pointer");
    expect_abort(usable_ptr, buf, "malloc_usable_size(): invalid pointer");
    char *p = malloc(100);
    expect_abort(realloc_ptr, p + 32, "realloc(): invalid pointer");
    free(p);
}

/* ---- foreign_free ---- */

static void mode_foreign(const char *how) {
    char stack[32];
    th_use(stack);
    /* glibc's own malloc, found in libc itself: a block strata did not make */
    void *libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
    void *(*libc_malloc)(size_t) = libc ? (void *(*)(size_t))dlsym(libc, "malloc") : NULL;
    if (!libc_malloc || (void *)libc_malloc == (void *)malloc) {
        printf("no-libc-malloc\n");
        return;
    }
    if (!strcmp(how, "ignore")) {
        free(stack);
        free(global_buf);
        printf("survived\n");
    } else {
        char *g = libc_malloc(100);
        strcpy(g, "glibc block");
        size_t u = malloc_usable_size(g); /* forwarded */
        g = realloc(g, 200);              /* forwarded: stays a glibc block */
        int same = g && !strcmp(g, "glibc block");
        free(g); /* forwarded to glibc's free */
        printf("%s %s\n", same ? "forwarded" : "lost", u >= 100 ? "usable" : "bad-usable");
    }
}
static void foreign_free_ignore(void) {
    th_result r = th_self("foreign", "foreign_free=ignore");
    CHECKF(r.exited && r.code == 0 && strstr(r.out, "survived"), "exit %d sig %d: %s %s", r.code,
           r.sig, r.out, r.err);
    CHECK(r.err[0] == '\0');
}
static void foreign_free_forward(void) {
    th_result r = th_self("forward", "foreign_free=forward");
    if (strstr(r.out, "no-libc-malloc")) SKIP("glibc's malloc not reachable");
    CHECKF(r.exited && r.code == 0, "exit %d sig %d: %s", r.code, r.sig, r.err);
    CHECKF(strstr(r.out, "forwarded usable") != NULL, "%s", r.out);
}
static void foreign_free_abort_is_default(void) {
    th_result r = th_self("foreign", "");
    CHECKF(th_aborted_with(&r, "free(): invalid pointer"), "exit %d sig %d: %s", r.code, r.sig,
           r.err);
    CHECK(strstr(r.err, "not allocated by strata") != NULL);
}

/* With foreign_free=forward a second free of a huge block must not go to the next allocator. */
static void mode_huge_twice(void) {
    void *p = malloc(300000);
    th_use(p);
    free(p);
    free(p);
    printf("survived\n");
}
static void double_free_huge_forward(void) {
    th_result r = th_self("huge-twice", "foreign_free=forward");
    CHECKF(th_aborted_with(&r, "double free of"), "exit %d sig %d: %s %s", r.code, r.sig, r.out, r.err);
    r = th_self("huge-twice", "foreign_free=ignore");
    CHECKF(th_aborted_with(&r, "double free of"), "exit %d sig %d: %s %s", r.code, r.sig, r.out, r.err);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "huge-twice")) {
        mode_huge_twice();
        return 0;
    }
    if (argc > 1) {
        mode_foreign(!strcmp(argv[1], "foreign") ? "ignore" : "forward");
        return 0;
    }
    RUN(double_free_small);
    RUN(double_free_each_kind);
    RUN(double_free_huge);
    RUN(double_free_huge_later);
    RUN(double_free_huge_forward);
    RUN(realloc_of_freed_huge_block);
    RUN(double_free_large);
    RUN(double_free_delayed);
    RUN(double_free_after_reuse);
    RUN(double_free_across_threads);
    RUN(realloc_after_free);
    RUN(invalid_free_stack);
    RUN(invalid_free_global);
    RUN(invalid_free_wild);
    RUN(invalid_free_interior);
    RUN(invalid_free_before_block);
    RUN(invalid_free_mmap);
    RUN(invalid_realloc_and_usable_size);
    RUN(foreign_free_ignore);
    RUN(foreign_free_forward);
    RUN(foreign_free_abort_is_default);
    RUN(free_list_corruption);
    return 0;
}
