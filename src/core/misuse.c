/*
 * misuse.c — what strata does with pointers it should never have been given.
 *
 * A pointer into strata's memory that is not a live block (an interior pointer, one into free or
 * header memory) and a block freed twice are heap corruption in the making: strata says so in one
 * line naming the call and the address, and aborts, as glibc does.
 *
 * A pointer outside strata's segments is "foreign": a stack or global address, or a block from
 * another allocator living in the same process (a statically linked jemalloc, a custom pool). The
 * option foreign_free decides: abort (the default), forward it to the next allocator in link
 * order (dlsym(RTLD_NEXT)), or ignore it. realloc and malloc_usable_size cannot ignore a block,
 * so with ignore they forward as well.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

#include "core.h"
#include "strata.h"

bool sx_is_foreign(const sx_segment *seg, const sx_page *pg, const void *p) {
    /* Past the committed end of the brk top segment, or in its reserved tail, lies memory that
     * another user of sbrk took: not strata's. */
    return (uintptr_t)p >= atomic_load_explicit(&seg->commit_end, memory_order_relaxed) ||
           pg->kind == SX_SPAN_RESERVED;
}

_Noreturn void sx_free_invalid(void *p, const char *fn, sx_segment *seg, sx_page *pg) {
    uintptr_t a = (uintptr_t)p;
    /* A freed block keeps its free key until it is handed out again, even when its page or span
     * has been given back: name the double free for what it is. */
    if ((a & 15) == 0 && a + sizeof(sx_block) <= atomic_load(&seg->commit_end) &&
        ((sx_block *)p)->key == (sx_secret ^ a))
        sx_double_free(p, fn);
    if (pg->kind == SX_SPAN_PAGE || pg->kind == SX_SPAN_LARGE || pg->kind == SX_SPAN_HUGE) {
        uintptr_t off = a - (uintptr_t)pg->start;
        size_t bsize = pg->kind == SX_SPAN_PAGE ? pg->block_size : 0;
        if (bsize && off < (uintptr_t)pg->reserved * bsize) {
            void *blk = pg->start + off / bsize * bsize;
            sx_fatal("%s(): invalid pointer %p (%zu bytes into a %zu-byte block at %p)", fn, p,
                     (size_t)(a - (uintptr_t)blk), bsize, blk);
        }
        if (!bsize && a > (uintptr_t)pg->start)
            sx_fatal("%s(): invalid pointer %p (%zu bytes into the block at %p)", fn, p,
                     (size_t)off, (void *)pg->start);
    }
    if (pg->kind == SX_SPAN_FREE)
        sx_fatal("%s(): double free or invalid pointer %p (no block is allocated there)", fn, p);
    sx_fatal("%s(): invalid pointer %p (not the start of an allocated block)", fn, p);
}

void sx_free_bad(void *p, sx_segment *seg, sx_page *pg) {
    if (sx_is_foreign(seg, pg, p)) sx_free_foreign(p, "free");
    else sx_free_invalid(p, "free", seg, pg);
}

_Noreturn void sx_double_free(void *p, const char *fn) {
    sx_fatal("%s(): double free of %p detected", fn, p);
}

/* Could a request of `size` bytes have got a block of class bin: unaligned, or aligned to a
 * power of two that the class's size is a multiple of? (A sized free of an aligned block is
 * allowed here: C++ classes with an aligned operator new of their own reach the global sized
 * delete.) */
static bool class_fits(size_t size, unsigned bin) {
    if (sx_bin_for(size) == bin) return true;
    size_t cs = sx_bin_size(bin);
    for (size_t a = 32; a <= SX_SLICE_SIZE && cs % a == 0; a *= 2)
        if (sx_aligned_bin(size, a) == (int)bin) return true;
    return false;
}

sx_noinline void sx_size_check(void *p, size_t size, const char *fn) {
    sx_segment *seg = sx_segment_of(p);
    if (!sx_segmap_contains(seg)) return;
    sx_page *pg = sx_page_of(seg, p);
    /* a pointer that is no live block: free says what it is */
    if (!sx_block_valid(pg, p) || ((sx_block *)p)->key == (sx_secret ^ (uintptr_t)p)) return;
    size_t usable = sx_block_size(seg, pg, p), low;
    bool bad;
    switch (pg->kind) {
    case SX_SPAN_PAGE: /* its class, or one realloc stayed in: at least half of it */
        bad = size > usable || (size < usable / 2 && !class_fits(size, pg->bin));
        break;
    case SX_SPAN_LARGE: /* aligned requests of any size get one too */
        bad = size > usable;
        break;
    case SX_SPAN_HUGE: /* unaligned (bin: log2 of 16): at the mmap threshold of its time, or
                        * past the classes */
        low = atomic_load_explicit(&sx_mmap_threshold_low, memory_order_relaxed);
        bad = size > usable ||
              (pg->bin <= 4 && size < (low < SX_MEDIUM_MAX - SX_PAD ? low : SX_MEDIUM_MAX - SX_PAD));
        break;
    default:
        return;
    }
    if (bad)
        sx_fatal("%s(): size %zu given for the %zu-byte block at %p, which no request of that size gets "
                 "(delete of a new[] array, or of another type)", fn, size, usable, p);
}

/* Secure mode keeps its own canaries in the pad (secure/secure.c), and large blocks have none. */
sx_noinline void sx_free_padded(sx_segment *seg, sx_page *pg, sx_block *b) {
    if (pg->kind == SX_SPAN_PAGE && !sx_opt.secure && !sx_pad_intact(pg, b))
        sx_fatal("free(): heap overflow at the %zu-byte block %p: the bytes past its end were "
                 "overwritten (or, if it is freed first, an underflow of the block after it at %p)",
                 sx_page_usable(pg), (void *)b, (void *)((uint8_t *)b + pg->block_size));
    sx_free_block(seg, pg, b);
}

/* Is sym in this library (a definition of strata's own, which would call back here)? */
static bool ours(void *sym) {
    Dl_info at, self;
    return dladdr(sym, &at) && dladdr((void *)sx_free_foreign, &self) && at.dli_fbase == self.dli_fbase;
}

static void *next_symbol(const char *name, const char *fn, void *p) {
    void *sym = dlsym(RTLD_NEXT, name);
    if (!sym || ours(sym)) sx_fatal("%s(): pointer %p is not strata's and no other allocator provides %s()", fn, p, name);
    return sym;
}

void sx_free_foreign(void *p, const char *fn) {
    static void (*next_free)(void *);
    if (!p) return; /* free(NULL) comes here: no segment holds it */
    if (sx_sampled_owns(p)) {
        sx_sampled_free(p, fn);
        return;
    }
    sx_options_init(); /* a foreign free may come before any allocation: the option first */
    if (sx_huge_freed(p)) sx_double_free(p, fn); /* a huge block, already unmapped */
    switch (sx_opt.foreign_free) {
    case SX_FOREIGN_IGNORE: return;
    case SX_FOREIGN_FORWARD:
        if (!next_free) next_free = (void (*)(void *))next_symbol("free", fn, p);
        next_free(p);
        return;
    default:
        sx_fatal("%s(): invalid pointer %p (not allocated by strata; foreign_free=forward passes "
                 "such pointers on)", fn, p);
    }
}

/* realloc or malloc_usable_size of a huge block already freed */
static void check_freed(void *p, const char *fn) {
    if (sx_huge_freed(p)) sx_fatal("%s(): invalid pointer %p (the block was already freed)", fn, p);
}

void *sx_foreign_realloc(void *p, size_t size) {
    static void *(*next_realloc)(void *, size_t);
    if (sx_sampled_owns(p)) { /* a sampled block moves: a new one, maybe sampled too */
        size_t old = sx_sampled_size(p, "realloc");
        void *q = sx_core_alloc(size, 0, false);
        if (!q) return NULL;
        memcpy(q, p, old < size ? old : size);
        sx_sampled_free(p, "realloc");
        return q;
    }
    sx_options_init();
    check_freed(p, "realloc");
    if (sx_opt.foreign_free == SX_FOREIGN_ABORT)
        sx_fatal("realloc(): invalid pointer %p (not allocated by strata)", p);
    if (!next_realloc) next_realloc = (void *(*)(void *, size_t))next_symbol("realloc", "realloc", p);
    return next_realloc(p, size);
}

size_t sx_foreign_usable_size(void *p) {
    static size_t (*next_usable)(void *);
    if (sx_sampled_owns(p)) return sx_sampled_size(p, "malloc_usable_size");
    sx_options_init();
    check_freed(p, "malloc_usable_size");
    if (sx_opt.foreign_free == SX_FOREIGN_ABORT)
        sx_fatal("malloc_usable_size(): invalid pointer %p (not allocated by strata)", p);
    if (!next_usable)
        next_usable = (size_t (*)(void *))next_symbol("malloc_usable_size", "malloc_usable_size", p);
    return next_usable(p);
}
