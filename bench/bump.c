/*
 * bump — the floor for bench-instr: a "malloc" that only moves a pointer forward and never
 * frees. No real allocator can do less work per call; the instructions a workload takes under it
 * are the workload's own. Preloaded like the others (build/bench/libbump.so), never for timing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK ((size_t)256 << 20) /* address space taken at a time: pages come on first touch */

static char *cur, *end;

static void *bump(size_t size, size_t align) {
    for (;;) {
        uintptr_t p = ((uintptr_t)cur + 16 + align - 1) & ~(uintptr_t)(align - 1); /* room for size */
        if (cur && size <= (uintptr_t)end - p) {
            ((size_t *)p)[-1] = size;
            cur = (char *)(p + size);
            return (void *)p;
        }
        size_t want = size + align + 16 > CHUNK ? size + align + 16 : CHUNK;
        char *c = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (c == MAP_FAILED) {
            errno = ENOMEM;
            return NULL;
        }
        cur = c;
        end = c + want;
    }
}

void *malloc(size_t size) { return bump(size, 16); }
void free(void *p) { (void)p; }
void *calloc(size_t n, size_t m) { return bump(n * m, 16); } /* fresh pages are zero */
void *realloc(void *p, size_t size) {
    void *q = bump(size, 16);
    if (p && q) memcpy(q, p, ((size_t *)p)[-1] < size ? ((size_t *)p)[-1] : size);
    return q;
}
void *memalign(size_t align, size_t size) { return bump(size, align < 16 ? 16 : align); }
void *aligned_alloc(size_t align, size_t size) { return memalign(align, size); }
int posix_memalign(void **out, size_t align, size_t size) {
    *out = memalign(align, size);
    return *out ? 0 : ENOMEM;
}
size_t malloc_usable_size(void *p) { return p ? ((size_t *)p)[-1] : 0; }
