/*
 * broken_alloc — an allocator that is wrong on purpose, for tests/programs/bench.c: every few
 * calls malloc hands out a block that is still in use. A benchmark workload run on it must fail
 * its own checks instead of reporting a time.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

static char *arena, *cur;
static void *last;
static unsigned long calls;

void *malloc(size_t n) {
    if (!arena) arena = cur = mmap(NULL, (size_t)16 << 30, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (++calls % 97 == 0 && last) return last; /* the bug: a live block, again */
    cur = (char *)(((uintptr_t)cur + 15) & ~(uintptr_t)15);
    last = cur;
    cur += n ? n : 1;
    return last;
}
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b) {
    void *p = malloc(a * b);
    memset(p, 0, a * b);
    return p;
}
void *realloc(void *p, size_t n) {
    void *q = malloc(n);
    if (p) memmove(q, p, n); /* may read past the old block: it is all one mapping */
    return q;
}
void *memalign(size_t a, size_t n) {
    (void)a;
    return malloc(n + 4096);
}
int posix_memalign(void **out, size_t a, size_t n) {
    *out = memalign(a, n);
    return 0;
}
void *aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
