/*
 * guardcost — what it costs the kernel to put a block on a page of its own and take it off again
 * (one malloc and one free of a guard-page allocator), by each way there is. The floor under
 * `strata guard` (every block) and under libstrata's sampled guard (guard_sample=N: one in N).
 *
 *   guardcost [ROUNDS]
 *
 * Each way opens a page (makes it accessible), writes to it (as a program writes its block), and
 * closes it again, over 4096 pages that alternate with guard pages, ROUNDS times (20):
 *
 *   markers        madvise(MADV_GUARD_REMOVE), write (a page fault: the page was dropped),
 *                  madvise(MADV_GUARD_INSTALL): page-table markers, the mapping never split
 *                  (Linux 6.13; strata guard's way where the kernel has them)
 *   mprotect       mprotect(RW) in a PROT_NONE mapping, write, madvise(MADV_DONTNEED),
 *                  mprotect(PROT_NONE): the kernel splits the mapping and merges it back each time
 *                  (strata guard's way on older kernels)
 *   mprotect-kept  mprotect(RW), write, mprotect(PROT_NONE) of a page that is a mapping of its own
 *                  (its guards carry a flag it lacks, so nothing merges) and keeps its memory: no
 *                  split, no merge, no fault (the sampled guard's way: 2 mappings a slot, so only
 *                  for a small fixed pool)
 *
 * and prints microseconds per open-write-close. Divide a program's allocation count by 1e6 and
 * multiply: that many seconds is the least a guard page per block can add.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif

enum { PAGES = 4096 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static char *map(size_t len, int prot) {
    char *m = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        perror("guardcost: mmap");
        exit(1);
    }
    return m;
}

static double markers(size_t ps, int rounds) {
    char *a = map(2 * PAGES * ps, PROT_READ | PROT_WRITE);
    if (madvise(a, 2 * PAGES * ps, MADV_GUARD_INSTALL) != 0) return -1; /* no markers here */
    double t = now();
    for (int r = 0; r < rounds; r++)
        for (size_t i = 0; i < PAGES; i++) {
            char *p = a + 2 * i * ps;
            madvise(p, ps, MADV_GUARD_REMOVE);
            p[0] = 1;
            madvise(p, ps, MADV_GUARD_INSTALL);
        }
    t = now() - t;
    munmap(a, 2 * PAGES * ps);
    return t;
}

static double split_merge(size_t ps, int rounds) {
    char *a = map(2 * PAGES * ps, PROT_NONE);
    double t = now();
    for (int r = 0; r < rounds; r++)
        for (size_t i = 0; i < PAGES; i++) {
            char *p = a + 2 * i * ps;
            mprotect(p, ps, PROT_READ | PROT_WRITE);
            p[0] = 1;
            madvise(p, ps, MADV_DONTNEED);
            mprotect(p, ps, PROT_NONE);
        }
    t = now() - t;
    munmap(a, 2 * PAGES * ps);
    return t;
}

static double kept(size_t ps, int rounds) {
    size_t n = 256; /* a small pool: each page is two mappings */
    char *a = map((2 * n + 1) * ps, PROT_READ | PROT_WRITE);
    for (size_t i = 0; i <= n; i++) {
        mprotect(a + 2 * i * ps, ps, PROT_NONE);
        madvise(a + 2 * i * ps, ps, MADV_NOHUGEPAGE); /* a flag the data pages lack: no merging */
    }
    for (size_t i = 0; i < n; i++) a[(2 * i + 1) * ps] = 1;
    double t = now();
    for (int r = 0; r < rounds * (int)(PAGES / n); r++)
        for (size_t i = 0; i < n; i++) {
            char *p = a + (2 * i + 1) * ps;
            mprotect(p, ps, PROT_NONE);
            mprotect(p, ps, PROT_READ | PROT_WRITE);
            p[0] = 1;
        }
    t = now() - t;
    munmap(a, (2 * n + 1) * ps);
    return t;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    if (rounds < 1) {
        fprintf(stderr, "usage: guardcost [ROUNDS]\n");
        return 2;
    }
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    double per = 1e6 / ((double)rounds * PAGES);
    double m = markers(ps, rounds), s = split_merge(ps, rounds), k = kept(ps, rounds);
    if (m < 0) printf("markers        (none: the kernel has no MADV_GUARD_INSTALL)\n");
    else printf("markers        %.2f us\n", m * per);
    printf("mprotect       %.2f us\n", s * per);
    printf("mprotect-kept  %.2f us\n", k * per);
    return 0;
}
