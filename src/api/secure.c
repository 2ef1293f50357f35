/*
 * secure.c — secure mode (STRATA_OPTIONS=secure=1, or lib/libstrata-secure.so): the checks a
 * security-minded operator pays for, on top of the default build's (checked free-list links, the
 * free key, the block-start test; libstrata-secure.so also encodes the links).
 *
 * Every request takes the slow path here (the malloc fast path is off: sx_fast_limit is 0) and
 * gets a block 8 bytes longer than asked for. The last word of the block, the tail, holds the
 * requested size xor a canary made from the block's address and a secret (its first and last
 * bytes the pattern); the bytes between the request and the tail hold the pattern too. A freed
 * block's tail says "freed" instead. So free finds:
 *   - an overflow: the tail does not decode to a size that fits, or the pattern is broken;
 *   - an underflow (or an overflow from the block before): the tail of the block before it,
 *     which every block of the page has from the moment the page made it, is broken (a page's
 *     block 0 is never handed out, so that there always is one);
 *   - a double free: the tail already says freed;
 *   - a wrong size given to free_sized or C++'s sized delete: it is not the size asked for.
 * A freed block of a page is zeroed and waits in its heap's quarantine (SX_QUARANTINE blocks,
 * one leaves at random when another comes in); when it leaves (or malloc_trim empties the
 * quarantine) it must still be zero, and when malloc hands it out its first words must: a write
 * after free is caught there. New blocks of a page are linked in
 * random order, so neither reuse nor the placement of neighbours can be predicted. malloc(0)
 * returns an address in a region nobody may touch. Large and huge blocks get the same canaries;
 * huge blocks have their own mappings, unmapped on free, so a use after free faults.
 */
#include <string.h>

#include "alloc.h"

bool sx_secure_on;

#define VALUE_MASK (((uintptr_t)1 << 48) - 1)
#define FREED VALUE_MASK           /* a tail that decodes to this: the block is free (no size is) */
#define BROKEN UINTPTR_MAX         /* what a tail decodes to when its first byte is not the pattern */
#define ZERO_REGION ((size_t)64 << 20)

static uint8_t pattern;
static _Atomic(uint8_t *) zero_base;
static _Atomic size_t zero_next;

void sx_secure_init(void) {
    sx_secure_on = true;
    pattern = (uint8_t)(sx_list_key >> 24) | 0x81; /* never 0: a stray NUL is an overflow too */
}

uint64_t sx_secure_random(void) {
    static _Atomic uint64_t state;
    uint64_t x = atomic_load_explicit(&state, memory_order_relaxed);
    if (!x) x = sx_list_key ^ 0x9e3779b97f4a7c15ull;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    atomic_store_explicit(&state, x, memory_order_relaxed); /* racy on purpose: any value will do */
    return x;
}

static uintptr_t canary(const void *p) { return ((uintptr_t)p * 0x9e3779b97f4a7c15ull) ^ sx_secret; }

/* A tail: its first byte (the one an overflow by 1 reaches when there is no slack) and its last
 * (the one an underflow by 1 of the next block reaches) are the pattern, whose top bit is set, so
 * a stray NUL or text byte always breaks them; the six between hold the size (or FREED) xor the
 * block's canary. */
static uintptr_t tail_word(const void *p, uintptr_t v) {
    return ((canary(p) ^ v) & VALUE_MASK) << 8 | pattern | (uintptr_t)pattern << 56;
}
static uintptr_t tail_value(const void *p, uintptr_t t) {
    if ((t & 0xff) != pattern || t >> 56 != pattern) return BROKEN;
    return ((t >> 8) ^ canary(p)) & VALUE_MASK;
}
static uintptr_t *tail_of(void *p, size_t bsize) { return (uintptr_t *)((uint8_t *)p + bsize - 8); }

/* ---- guard pages between pages ---- */

/* Each guard splits a mapping in three, and the kernel allows vm.max_map_count (65530) mappings
 * per process: guards stop at a budget that leaves the rest to the program. */
#define GUARD_BUDGET 16384
static _Atomic unsigned guards;

/* The last OS page of pg's span made a guard (on; false if the budget or the kernel says no) or
 * ordinary memory again; pg->start and pg->slice_count describe the span. */
bool sx_secure_guard(const sx_page *pg, bool on) {
    uint8_t *page = pg->start + (size_t)pg->slice_count * SX_SLICE_SIZE - sx_os_page;
    if (on) {
        if (atomic_fetch_add_explicit(&guards, 1, memory_order_relaxed) >= GUARD_BUDGET ||
            !sx_os_guard(page, sx_os_page, true)) {
            atomic_fetch_sub_explicit(&guards, 1, memory_order_relaxed);
            return false;
        }
        return true;
    }
    if (!sx_os_guard(page, sx_os_page, false)) sx_fatal("cannot lift the guard page at %p", (void *)page);
    atomic_fetch_sub_explicit(&guards, 1, memory_order_relaxed);
    return true;
}

/* ---- freed huge blocks ---- */

/* A freed huge block's mapping is emptied and made inaccessible, and the last HOLD of them keep
 * their addresses, so the next mapping of the same size cannot land on the block just freed
 * (the kernel would hand the same range straight back) and a use after free faults. */
#define HOLD 8
static struct {
    void *map;
    size_t size;
} held[HOLD];
static unsigned nheld;

void sx_secure_hold(void *map, size_t size) {
    sx_os_decommit(map, size);
    sx_os_guard(map, size, true);
    sx_lock(&sx_region_lock); /* taken around fork, as the mappings' lock */
    unsigned i = nheld++ % HOLD;
    void *old = held[i].map;
    size_t old_size = held[i].size;
    held[i].map = map, held[i].size = size;
    sx_unlock(&sx_region_lock);
    if (old) sx_os_unmap(old, old_size);
}

/* ---- zero-size blocks ---- */

static void *zero_block(size_t align) {
    uint8_t *base = atomic_load_explicit(&zero_base, memory_order_acquire);
    if (!base) {
        uint8_t *mine = sx_os_reserve(ZERO_REGION);
        if (!mine) return NULL;
        if (atomic_compare_exchange_strong(&zero_base, &base, mine)) base = mine;
        else sx_os_unmap(mine, ZERO_REGION);
    }
    size_t at = atomic_fetch_add_explicit(&zero_next, align, memory_order_relaxed);
    return base + sx_align_up(at, align) % ZERO_REGION;
}

static bool is_zero_block(const void *p) {
    uint8_t *base = atomic_load_explicit(&zero_base, memory_order_relaxed);
    return base && (const uint8_t *)p >= base && (const uint8_t *)p < base + ZERO_REGION;
}

/* ---- blocks ---- */

/* [from, to) of p must be zero: a block that was freed and nobody wrote to since. */
static void check_zero(void *p, size_t from, size_t to, size_t bsize, const char *when) {
    const uint64_t *w = (const uint64_t *)((uint8_t *)p + from), *end = (const uint64_t *)((uint8_t *)p + to);
    uint64_t any = 0;
    for (const uint64_t *x = w; x < end; x++) any |= *x; /* no early exit: vectorized */
    if (!any) return;
    for (; w < end; w++)
        if (*w)
            sx_fatal("%s: write after free in the %zu-byte block at %p (found at offset %zu)", when,
                     bsize - 8, p, (size_t)((const uint8_t *)w - (uint8_t *)p));
}

/* n new blocks of a page from first: zeroed, marked free, linked in random order (but for the
 * first when skip_first: it stays out, marked free). */
sx_block *sx_secure_fresh(uint8_t *first, uint32_t n, size_t bsize, bool skip_first, sx_block **tail) {
    uint16_t order[SX_EXTEND_BYTES / 16];
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *b = first + (size_t)i * bsize;
        memset(b, 0, bsize - 8);
        *tail_of(b, bsize) = tail_word(b, FREED);
    }
    if (skip_first) first += bsize, n--;
    for (uint32_t i = 0; i < n; i++) order[i] = (uint16_t)i;
    for (uint32_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        uint32_t j = (uint32_t)(sx_secure_random() % (i + 1));
        uint16_t t = order[i];
        order[i] = order[j], order[j] = t;
    }
    for (uint32_t i = 0; i + 1 < n; i++)
        sx_block_link((sx_block *)(first + order[i] * bsize), (sx_block *)(first + order[i + 1] * bsize));
    *tail = (sx_block *)(first + order[n - 1] * bsize);
    return (sx_block *)(first + order[0] * bsize);
}

void *sx_secure_alloc(size_t size, size_t align, bool zero) {
    if (size == 0 && align <= sx_os_page) return zero_block(align < 16 ? 16 : align);
    if (size > VALUE_MASK - 64) { /* beyond any address space (and what a tail can hold) */
        errno = ENOMEM;
        return NULL;
    }
    if (sx_unlikely(sx_opt.stats)) sx_count_requested(sx_tls_heap, size);
    uint8_t *p = NULL;
    if (size + 8 <= SX_DIRECT_MAX && align <= 16) /* the fast path's pop (malloc's is off) */
        p = sx_direct_pop(sx_tls_heap, (size + 8 + 15) >> 4);
    if (!p && !(p = sx_alloc_core(size + 8, align, false))) return NULL;
    sx_segment *seg = sx_segment_of(p);
    sx_page *pg = sx_page_of(seg, p);
    size_t bsize = pg->kind == SX_SPAN_HUGE ? sx_huge_usable(seg, p) : pg->block_size;
    uintptr_t *tail = tail_of(p, bsize);
    /* A page's blocks are zero but for their link and free key (the first 16 bytes) from the
     * moment the page made them until malloc hands them out. */
    /* what a write after free left since the quarantine let the block go: its first words */
    if (pg->kind == SX_SPAN_PAGE && *tail == tail_word(p, FREED)) check_zero(p, 16, bsize < 80 ? bsize - 8 : 64, bsize, "malloc()");
    *tail = tail_word(p, size);
    memset(p + size, pattern, bsize - 8 - size);
    /* the link and key go (no address leaks); a fresh huge mapping is zero already */
    bool fresh = pg->kind == SX_SPAN_HUGE && !seg->cached;
    memset(p, 0, zero && !fresh ? size : size < 16 ? size : 16);
    return p;
}

/* The block's requested size, from its tail; aborts if it is broken. */
static size_t checked_size(void *p, size_t bsize, const char *fn) {
    uintptr_t v = tail_value(p, *tail_of(p, bsize));
    if (v == FREED) sx_fatal("%s(): double free of %p detected", fn, p);
    if (v > bsize - 8)
        sx_fatal("%s(): heap overflow past the end of the block at %p: its canary was overwritten", fn, p);
    const uint8_t *s = (const uint8_t *)p + v, *end = (const uint8_t *)p + bsize - 8;
    uint64_t pat8 = pattern * 0x0101010101010101ull;
    for (; s < end && ((uintptr_t)s & 7); s++) /* to a word boundary, then a word at a time */
        if (*s != pattern) goto broken;
    for (; s < end && *(const uint64_t *)s == pat8; s += 8) {
    }
    for (; s < end; s++)
        if (*s != pattern)
        broken:
            sx_fatal("%s(): heap overflow: %zu bytes past the end of the %zu-byte block at %p were "
                     "written", fn, (size_t)(s - (const uint8_t *)p) - v + 1, (size_t)v, p);
    return (size_t)v;
}

/* The tail of the block before p in its page must be whole: free, or a size that fits. */
static void check_before(void *p, const sx_page *pg, size_t bsize, const char *fn) {
    if (pg->kind == SX_SPAN_PAGE && (uint8_t *)p != pg->start) {
        uint8_t *q = (uint8_t *)p - bsize;
        uintptr_t raw = *tail_of(q, bsize), v = tail_value(q, raw);
        bool key = bsize == 16 && raw == (sx_secret ^ (uintptr_t)q); /* 16 bytes: tail is the free key */
        if (v != FREED && v > bsize - 8 && !key && raw != 0)
            sx_fatal("%s(): heap underflow before the block at %p (or an overflow from the block "
                     "before it at %p): a canary was overwritten", fn, p, (void *)q);
    } else if (pg->kind == SX_SPAN_HUGE) {
        /* the slice descriptor just below a huge block holds nothing but its slice_back */
        const sx_page *last = &sx_segment_of(p)->slices[SX_SLICES];
        sx_page want;
        memset(&want, 0, sizeof want);
        want.slice_back = last->slice_back;
        if ((uint8_t *)(last + 1) == (uint8_t *)p && memcmp(last, &want, sizeof want))
            sx_fatal("%s(): heap underflow before the block at %p: the bytes before it were "
                     "overwritten", fn, p);
    }
}

/* A quarantined block must be as free() left it: zero, its tail saying freed. */
static void check_quarantined(uint8_t *q, const char *when) {
    size_t bs = sx_page_of(sx_segment_of(q), q)->block_size;
    if (*tail_of(q, bs) != tail_word(q, FREED))
        sx_fatal("%s: write after free at the end of the %zu-byte block at %p", when, bs - 8, (void *)q);
    check_zero(q, 0, bs - 8, bs, when);
}

static void quarantine(sx_heap *h, void *p, size_t bsize) {
    memset(p, 0, bsize - 8);
    if (h == &sx_heap_empty) { /* an exiting thread: no quarantine */
        sx_free_core(p);
        return;
    }
    if (h->nquarantined < SX_QUARANTINE) {
        h->quarantine[h->nquarantined++] = p;
        return;
    }
    unsigned i = (unsigned)(sx_secure_random() % SX_QUARANTINE);
    uint8_t *old = h->quarantine[i];
    h->quarantine[i] = p;
    check_quarantined(old, "free()");
    sx_free_core(old);
}

/* malloc_trim, and a thread's heap given back: the quarantine is emptied, each block checked. */
void sx_secure_flush(sx_heap *h) {
    if (!sx_secure_on || h == &sx_heap_empty) return;
    while (h->nquarantined) {
        uint8_t *q = h->quarantine[--h->nquarantined];
        check_quarantined(q, "malloc_trim()");
        sx_free_core(q);
    }
}

void sx_secure_free(void *p, const char *fn, size_t size, bool sized) {
    if (!p || is_zero_block(p)) return;
    sx_page *pg;
    size_t bsize = sx_block_usable(p, fn, &pg);
    if (!pg) {
        sx_free_foreign(p, fn);
        return;
    }
    size_t had = checked_size(p, bsize, fn);
    if (sized && size != had)
        sx_fatal("%s(): size %zu given for the block at %p, which was allocated with %zu", fn, size, p, had);
    check_before(p, pg, bsize, fn);
    *tail_of(p, bsize) = tail_word(p, FREED);
    if (pg->kind == SX_SPAN_PAGE) quarantine(sx_tls_heap, p, bsize);
    else sx_free_core(p);
}

void *sx_secure_realloc(void *p, size_t size, const char *fn) {
    if (!p) return sx_secure_alloc(size, 0, false);
    if (size == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
        sx_secure_free(p, fn, 0, false);
        return NULL;
    }
    if (is_zero_block(p)) return sx_secure_alloc(size, 0, false);
    sx_page *pg;
    size_t bsize = sx_block_usable(p, fn, &pg);
    if (!pg) return sx_foreign_realloc(p, size);
    size_t had = checked_size(p, bsize, fn);
    if (size <= bsize - 8 && (pg->kind != SX_SPAN_PAGE || size >= (bsize - 8) / 2)) {
        /* in place: the canary moves with the end of the request */
        if (size < had) memset((uint8_t *)p + size, pattern, had - size);
        *tail_of(p, bsize) = tail_word(p, size);
        return p;
    }
    void *q = sx_secure_alloc(size, 0, false); /* moves: the old block goes to quarantine */
    if (!q) return NULL;
    memcpy(q, p, had < size ? had : size);
    sx_secure_free(p, fn, 0, false);
    return q;
}

size_t sx_secure_usable(void *p) {
    if (!p || is_zero_block(p)) return 0;
    sx_page *pg;
    size_t bsize = sx_block_usable(p, "malloc_usable_size", &pg);
    if (!pg) return sx_foreign_usable_size(p);
    return checked_size(p, bsize, "malloc_usable_size"); /* exactly what was asked for */
}
