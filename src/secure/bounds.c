/*
 * bounds.c — secure mode's check of a range of memory against strata's blocks, for the guarded
 * copies (api/memops.c: memcpy, memmove, memset and mempcpy of libstrata-secure.so).
 *
 * An allocator knows in O(1) which block an address is in, as free does for a block's start:
 * the segment map says whether the 4 MiB around it are strata's, the slice descriptor gives the
 * span and its kind, and for a page the block's index is the offset divided by the class size
 * (a multiply, below). In secure mode a block's tail holds the size the program asked for
 * (secure.c), so the bytes the program may touch are exactly [block, block + size): a copy that
 * starts there and goes on past them is an overflow, one that starts in the bytes before a
 * block (the slack and tail of the block before it, a huge block's header) and reaches into it
 * an underflow, found at the copy itself even when the block is never freed (free's canary
 * check never runs then). An address outside strata's segments (a stack, a global, another
 * mapping, the second and later 4 MiB of a huge block, malloc(0)'s inaccessible region) is not
 * checked; nor is what follows a huge block's mapping in its 4 MiB, which the kernel may give
 * to anyone.
 */
#include "secure.h"

typedef enum {
    NOT_OURS, /* not in a segment of strata's, or not one the segment map finds: not checked */
    LIVE,     /* in a block handed out; its bytes are [block, block + size) */
    FREE,     /* in a block that is free, quarantined or not yet handed out */
    BROKEN,   /* in a block whose tail was overwritten */
    NO_BLOCK, /* strata's memory that holds no block: a header, a free span, a page's end */
} place_kind;

typedef struct {
    place_kind kind;
    const uint8_t *block;
    size_t size; /* LIVE: the bytes asked for; otherwise the block's, tail included */
} place;

/* floor(x / odd) by a multiply with ceil(2^32 / odd), for the odd part of a class size (at most
 * 15: sizeclass.h cuts each doubling into 8 steps) and x below 2^28 (x * (the rounding error,
 * below 15) stays under 2^32, so the quotient is exact): no divide on the path. */
#define RECIP(d) ((((uint64_t)1 << 32) + (d) - 1) / (d))
static const uint64_t odd_recip[8] = {RECIP(1), RECIP(3),  RECIP(5),  RECIP(7),
                                      RECIP(9), RECIP(11), RECIP(13), RECIP(15)};

/* The index of the block of page pg that byte `off` of it lies in. */
static inline size_t block_index(const sx_page *pg, size_t off) {
    uint32_t odd = pg->block_size >> pg->shift;
    size_t x = off >> pg->shift;
    if (sx_likely(odd <= 15)) return (size_t)((x * odd_recip[odd >> 1]) >> 32);
    return off / pg->block_size; /* no class has such a size today */
}

/* The block of bsize bytes (tail included) at b. */
static inline place block_place(const uint8_t *b, size_t bsize) {
    size_t v = sx_secure_requested((void *)b, bsize);
    if (sx_likely(v <= bsize - 8)) return (place){LIVE, b, v};
    return (place){v == SX_SECURE_FREE ? FREE : BROKEN, b, bsize};
}

/* What address a is part of. */
static place locate(const uint8_t *a) {
    sx_segment *seg = (sx_segment *)((uintptr_t)a & ~(uintptr_t)SX_SEG_MASK);
    if (!sx_segmap_contains(seg)) return (place){NOT_OURS, NULL, 0};
    const sx_page *pg = sx_page_of(seg, a);
    const uint8_t *start = pg->start;
    switch (pg->kind) {
    case SX_SPAN_PAGE: {
        size_t bsize = pg->block_size, i = block_index(pg, (size_t)(a - start));
        if (i >= __atomic_load_n(&pg->capacity, __ATOMIC_RELAXED)) /* not made yet, or past them */
            return (place){i < pg->reserved ? FREE : NO_BLOCK, start + i * bsize, bsize};
        return block_place(start + i * bsize, bsize);
    }
    case SX_SPAN_LARGE: /* an aligned one starts past its span's start */
        if (a >= start && a < start + pg->block_size) return block_place(start, pg->block_size);
        break;
    case SX_SPAN_HUGE: { /* a below the block: its header (the whole 4 MiB, if segment-aligned) */
        /* a mapping smaller than 4 MiB: the rest of them is anybody's (another mmap lands there) */
        if ((size_t)(a - (const uint8_t *)seg) >= seg->size) return (place){NOT_OURS, NULL, 0};
        size_t bsize = sx_huge_usable(seg, start);
        if (a >= start && a < start + bsize) return block_place(start, bsize);
        break;
    }
    }
    return (place){NO_BLOCK, NULL, 0};
}

sx_cold _Noreturn static void out_of_bounds(const uint8_t *a, size_t n, bool write, const char *fn,
                                            place s) {
    const char *op = write ? "write" : "read";
    if (s.kind == LIVE && a < s.block + s.size)
        sx_fatal("%s(): %s of %zu bytes at %p overflows the %zu-byte block at %p", fn, op, n,
                 (const void *)a, s.size, (const void *)s.block);
    /* It starts in bytes no program owns: the slack or tail of a block, a free block, strata's
     * own memory. If it reaches into a block after them, or stops right at one's start, it is
     * that block's underflow. */
    const uint8_t *last = n - 1 > UINTPTR_MAX - (uintptr_t)a ? (const uint8_t *)UINTPTR_MAX : a + (n - 1);
    place e = locate(last);
    if (!(e.kind == LIVE && e.block > a) && last != (const uint8_t *)UINTPTR_MAX) {
        e = locate(last + 1);
        if (e.block != last + 1) e.kind = NOT_OURS;
    }
    if (e.kind == LIVE)
        sx_fatal("%s(): %s of %zu bytes at %p underflows the %zu-byte block at %p", fn, op, n,
                 (const void *)a, e.size, (const void *)e.block);
    switch (s.kind) {
    case LIVE: /* it starts past the end of s */
        sx_fatal("%s(): %s of %zu bytes at %p overflows the %zu-byte block at %p", fn, op, n,
                 (const void *)a, s.size, (const void *)s.block);
    case FREE:
        sx_fatal("%s(): %s of %zu bytes at %p is in the free block at %p", fn, op, n, (const void *)a,
                 (const void *)s.block);
    case BROKEN:
        sx_fatal("%s(): %s of %zu bytes at %p is in the block at %p, whose canary was overwritten (a heap "
                 "overflow)", fn, op, n, (const void *)a, (const void *)s.block);
    default:
        sx_fatal("%s(): %s of %zu bytes at %p is in strata's memory outside any block", fn, op, n,
                 (const void *)a);
    }
}

/* The whole check, for any address (out of line: the common case is below). */
sx_noinline static void check_any(const uint8_t *a, size_t n, bool write, const char *fn) {
    place s = locate(a);
    if (s.kind == LIVE && a >= s.block && a < s.block + s.size && n <= (size_t)(s.block + s.size - a))
        return;
    if (s.kind == NOT_OURS) return;
    out_of_bounds(a, n, write, fn, s);
}

/* The common case, inline: is [a, a + n) outside strata's segments, or within a live block of a
 * page? (Under callgrind a third of locate's work: no place to build, no switch.) False: ask
 * check_any. */
static inline bool quick_ok(const uint8_t *a, size_t n) {
    sx_segment *seg = (sx_segment *)((uintptr_t)a & ~(uintptr_t)SX_SEG_MASK);
    if (!sx_segmap_contains(seg)) return true;
    const sx_page *pg = sx_page_of(seg, a);
    if (sx_unlikely(pg->kind != SX_SPAN_PAGE)) return false;
    size_t bsize = pg->block_size, i = block_index(pg, (size_t)(a - pg->start));
    if (sx_unlikely(i >= __atomic_load_n(&pg->capacity, __ATOMIC_RELAXED))) return false;
    const uint8_t *b = pg->start + i * bsize;
    size_t v = sx_secure_requested((void *)b, bsize), off = (size_t)(a - b);
    return v <= bsize - 8 && n <= v && off <= v - n;
}

void sx_secure_check_range(const void *p, size_t n, bool write, const char *fn) {
    if (sx_unlikely(!quick_ok(p, n))) check_any(p, n, write, fn);
}

void sx_secure_check_copy(void *dst, const void *src, size_t n, const char *fn) {
    if (sx_unlikely(!quick_ok(dst, n))) check_any(dst, n, true, fn);
    if (sx_unlikely(!quick_ok(src, n))) check_any(src, n, false, fn);
}
