/*
 * secure.c — secure mode (STRATA_OPTIONS=secure=1, or lib/libstrata-secure.so): the checks a
 * security-minded operator pays for, on top of the default build's (checked free-list links, the
 * free key, the block-start test; libstrata-secure.so also encodes the links).
 *
 * Every request takes the slow path here (the malloc fast path is off: the direct table has no page) and
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
 * returns an address in a region nobody may touch. Large and huge blocks get the same canaries
 * and are zeroed at free; the last four freed huge blocks' mappings are held inaccessible (a
 * use after free faults), and a new huge block takes the oldest of them. Segments never come from the brk heap.
 */
#include <string.h>

#include "secure.h"

bool sx_secure_on;
static void set_hooks(void);

#define VALUE_MASK (((uintptr_t)1 << 48) - 1)
#define FREED VALUE_MASK           /* a tail that decodes to this: the block is free (no size is) */
#define BROKEN UINTPTR_MAX         /* what a tail decodes to when its first byte is not the pattern */

static uint8_t pattern;
static uintptr_t pattern_ends, freed_word; /* see tail_word */

void sx_secure_init(void) {
    sx_secure_on = true;
    /* segments stay off the brk heap: [heap] lies a short, fixed distance past the program's
     * .bss, within reach of a linear overflow of a global, and guard pages would cut up the one
     * mapping the break grows */
    sx_opt.brk = false;
    set_hooks();
    pattern = (uint8_t)(sx_list_key >> 24) | 0x81; /* never 0: a stray NUL is an overflow too */
    pattern_ends = pattern | (uintptr_t)pattern << 56;
    freed_word = ((sx_secret * 0xc2b2ae3d27d4eb4full) & VALUE_MASK) << 8 | pattern_ends;
}

static uint64_t xorshift(uint64_t x, uint64_t seed) {
    if (sx_unlikely(!x)) x = (sx_list_key ^ seed) | 1;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
}

/* Each heap draws from its own state (no cache line shared between threads); an exiting thread,
 * which has none, from a global one, racy on purpose: any value will do. */
uint64_t sx_secure_random(void) {
    static _Atomic uint64_t state;
    sx_heap *h = sx_tls_heap;
    if (sx_likely(h != &sx_heap_empty)) return h->rng = xorshift(h->rng, (uintptr_t)h);
    uint64_t x = xorshift(atomic_load_explicit(&state, memory_order_relaxed), 0x9e3779b97f4a7c15ull);
    atomic_store_explicit(&state, x, memory_order_relaxed);
    return x;
}

static uintptr_t canary(const void *p) { return ((uintptr_t)p * 0x9e3779b97f4a7c15ull) ^ sx_secret; }

/* A tail: its first byte (the one an overflow by 1 reaches when there is no slack) and its last
 * (the one an underflow by 1 of the next block reaches) are the pattern, whose top bit is set, so
 * a stray NUL or text byte always breaks them; the six between hold the size xor the block's
 * canary. A free block's tail is one word for all blocks, freed_word (a forged one gets a live
 * block reported as freed: an abort all the same). */
static uintptr_t tail_word(const void *p, uintptr_t v) { return ((canary(p) ^ v) & VALUE_MASK) << 8 | pattern_ends; }
static uintptr_t tail_value(const void *p, uintptr_t t) {
    if (t == freed_word) return FREED;
    if ((t & 0xff00000000000000ull) != (pattern_ends & 0xff00000000000000ull) || (uint8_t)t != pattern)
        return BROKEN;
    return ((t >> 8) ^ canary(p)) & VALUE_MASK;
}
/* A block's tail: the last word of the block. Another thread reads it while this one may write it
 * (check_before reads the tail of the block before the one being freed, which may be another
 * thread's block being handed out or freed at that moment; every state it can be in is a whole
 * word it accepts), so it is read and written as a relaxed atomic: the same loads and stores on
 * x86 and arm64, and no data race under C11. */
static uintptr_t *tail_of(void *p, size_t bsize) { return (uintptr_t *)((uint8_t *)p + bsize - 8); }
static uintptr_t tail_load(void *p, size_t bsize) { return __atomic_load_n(tail_of(p, bsize), __ATOMIC_RELAXED); }
static void tail_store(void *p, size_t bsize, uintptr_t v) { __atomic_store_n(tail_of(p, bsize), v, __ATOMIC_RELAXED); }

static uint64_t load8(const uint8_t *p) {
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}
static void store8(uint8_t *p, uint64_t x) { memcpy(p, &x, 8); }
static uint64_t pattern8(void) { return pattern * 0x0101010101010101ull; }
/* The bytes of a word at and above byte n (little-endian). */
static uint64_t bytes_from(size_t n) { return ~(uint64_t)0 << ((n & 7) * 8); }

/* [from, end) of block b gets the pattern; end is a multiple of 8 (where the tail starts), and the
 * bytes below `from` in its word are kept. */
static void fill_slack(uint8_t *b, size_t from, size_t end) {
    size_t w = from & ~(size_t)7;
    if (w >= end) return;
    uint64_t high = bytes_from(from);
    store8(b + w, (load8(b + w) & ~high) | (pattern8() & high));
    for (w += 8; w < end; w += 8) store8(b + w, pattern8());
}

/* ---- guard pages between pages ---- */

/* Each guard splits a mapping in three, and the kernel allows vm.max_map_count (65530) mappings
 * per process: guards stop at a budget that leaves the rest to the program. */
#define GUARD_BUDGET 16384
static _Atomic unsigned guards;

/* The last OS page of pg's span made a guard (on; false if the budget or the kernel says no) or
 * ordinary memory again; pg->start and pg->slice_count describe the span. */
static bool page_guard(const sx_page *pg, bool on) {
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

/* A freed huge block's mapping is zeroed and made inaccessible, and the last HOLD of them keep
 * their addresses: a use after free faults, and the next mapping cannot land on the block just
 * freed (the kernel would hand the same range straight back). A new huge block takes the oldest
 * of them once HOLD are held, resized (its pages moved, not copied), so that a program freeing and
 * allocating big blocks does not pay for fresh pages each time. Up to HOLD_RESIDENT bytes are kept
 * zeroed in place; past that the pages go back to the kernel (which zeroes them when touched). */
#define HOLD 4
/* Huge blocks this big or bigger get transparent huge pages (MADV_HUGEPAGE): zeroing, guarding
 * (mprotect) and faulting in a freed mapping again then work on 2 MiB pages, not 4 KiB ones
 * (malloc-large, 5 to 25 MiB blocks: 13 s -> 7 s), at the price of memory for one the program
 * touches sparsely (its pages come 2 MiB at a time). */
#define THP_FROM ((size_t)4 << 20)
#define HOLD_RESIDENT ((size_t)64 << 20)
static struct {
    uint8_t *map;
    size_t size;
    bool resident;
} held[HOLD];
static unsigned held_first, held_count; /* a FIFO: the oldest at held_first */
static size_t held_resident;

/* Whether every page of [p, p + size) is in memory (a page the program never touched is not, nor
 * one swapped out: zeroing those by hand would fault them in). */
static bool all_resident(uint8_t *p, size_t size) {
    unsigned char vec[1024];
    for (size_t n; size; p += n, size -= n) {
        n = size < sizeof vec * sx_os_page ? size : sizeof vec * sx_os_page;
        size_t pages = (n + sx_os_page - 1) / sx_os_page;
        if (!sx_os_resident(p, n, vec)) return false;
        for (size_t i = 0; i < pages; i++)
            if (!(vec[i] & 1)) return false;
    }
    return true;
}

/* [map, map + size) held; its bytes from `from` on (the block) are zeroed here, by hand if all its
 * pages are in memory and the budget allows (reuse then costs no page faults), else by the kernel
 * (decommitted: a page comes back zero when touched). */
static void huge_hold(void *map, size_t size, size_t from) {
    sx_lock(&sx_region_lock); /* taken around fork, as the mappings' lock */
    bool resident = held_resident + size <= HOLD_RESIDENT;
    if (resident) held_resident += size;
    sx_unlock(&sx_region_lock);
    if (resident && !all_resident((uint8_t *)map, size - sx_os_page)) {
        sx_lock(&sx_region_lock);
        held_resident -= size, resident = false;
        sx_unlock(&sx_region_lock);
    }
    if (resident) memset((uint8_t *)map + from, 0, size - from - sx_os_page); /* the guard stays */
    else sx_os_decommit(map, size);
    sx_os_guard(map, size, true);
    sx_lock(&sx_region_lock);
    uint8_t *old = NULL;
    size_t old_size = 0;
    if (held_count == HOLD) { /* the oldest goes */
        old = held[held_first].map, old_size = held[held_first].size;
        if (held[held_first].resident) held_resident -= old_size;
        held_first = (held_first + 1) % HOLD, held_count--;
    }
    unsigned i = (held_first + held_count++) % HOLD;
    held[i].map = map, held[i].size = size, held[i].resident = resident;
    sx_unlock(&sx_region_lock);
    if (old) sx_huge_unmap((sx_segment *)old, old_size);
}

/* The oldest held mapping, out of the ring, if at least `min` (one or more) are held. */
static bool held_pop(unsigned min, uint8_t **map, size_t *size) {
    sx_lock(&sx_region_lock);
    bool ok = held_count && held_count >= min;
    if (ok) {
        *map = held[held_first].map;
        *size = held[held_first].size;
        if (held[held_first].resident) held_resident -= *size;
        held_first = (held_first + 1) % HOLD, held_count--;
    }
    sx_unlock(&sx_region_lock);
    return ok;
}

size_t sx_secure_release_held(void) {
    size_t bytes = 0, size;
    uint8_t *map;
    while (held_pop(1, &map, &size)) {
        sx_huge_unmap((sx_segment *)map, size);
        bytes += size;
    }
    return bytes;
}

/* Whether p lies in a held mapping: a huge block freed already. */
static bool is_held(const void *p) {
    bool in = false;
    sx_lock(&sx_region_lock);
    for (unsigned i = 0; i < held_count; i++) {
        unsigned k = (held_first + i) % HOLD;
        in |= (const uint8_t *)p >= held[k].map && (const uint8_t *)p < held[k].map + held[k].size;
    }
    sx_unlock(&sx_region_lock);
    return in;
}

/* A mapping of `size` bytes (a multiple of the page, aligned to a segment), zero and accessible
 * but for its last page, a guard, from the oldest held one; NULL if fewer than HOLD are held or
 * it cannot be resized. */
static void *huge_reuse(size_t size) {
    uint8_t *map;
    size_t have;
    if (!held_pop(HOLD, &map, &have)) return NULL;
    if (have != size && !sx_os_remap_inplace(map, have, size)) { /* grows, and cannot in place */
        uint8_t *to = sx_os_map_aligned(size, SX_SEG_SIZE, 0); /* an aligned place, replaced: */
        if (!to || !sx_os_remap_to(map, have, size, to)) {
            if (to) sx_os_unmap(to, size);
            sx_os_unmap(map, have);
            return NULL;
        }
        map = to;
    }
    if (!sx_os_guard(map, size - sx_os_page, false)) {
        sx_os_unmap(map, size);
        return NULL;
    }
    return map;
}

/* ---- zero-size blocks ---- */

/* malloc(0) gets an address nobody may touch, unique among the live ones: zero-size blocks are
 * handed out in order from address space reserved PROT_NONE, never reused, in regions reserved as
 * needed (64 MiB, doubling up to 64 GiB; ZERO_REGIONS of them hold about 10^11 blocks). Past that,
 * or when no address space is left, malloc(0) gets an ordinary block. */
#define ZERO_FIRST ((size_t)64 << 20)
#define ZERO_DOUBLINGS 10
#define ZERO_REGIONS 32
static _Atomic(uint8_t *) zero_region[ZERO_REGIONS];
static _Atomic size_t zero_next; /* offset into the regions laid end to end */

static size_t zero_size(unsigned k) { return ZERO_FIRST << (k < ZERO_DOUBLINGS ? k : ZERO_DOUBLINGS); }
/* Region k starts at this offset. */
static size_t zero_start(unsigned k) {
    if (k <= ZERO_DOUBLINGS) return ZERO_FIRST * (((size_t)1 << k) - 1);
    return zero_start(ZERO_DOUBLINGS) + (k - ZERO_DOUBLINGS) * zero_size(ZERO_DOUBLINGS);
}

static void *zero_block(size_t align) {
    size_t at = atomic_load_explicit(&zero_next, memory_order_relaxed), mine;
    do
        mine = sx_align_up(at, align);
    while (!atomic_compare_exchange_weak(&zero_next, &at, mine + 16));
    unsigned k = 0;
    while (k < ZERO_REGIONS && mine >= zero_start(k) + zero_size(k)) k++;
    if (k == ZERO_REGIONS) return NULL;
    uint8_t *base = atomic_load_explicit(&zero_region[k], memory_order_acquire);
    if (!base) {
        uint8_t *fresh = sx_os_reserve(zero_size(k));
        if (!fresh) return NULL;
        if (atomic_compare_exchange_strong(&zero_region[k], &base, fresh)) base = fresh;
        else sx_os_unmap(fresh, zero_size(k));
    }
    return base + (mine - zero_start(k));
}

static bool is_zero_block(const void *p) {
    for (unsigned k = 0; k < ZERO_REGIONS; k++) {
        uint8_t *base = atomic_load_explicit(&zero_region[k], memory_order_relaxed);
        if (base && (const uint8_t *)p >= base && (const uint8_t *)p < base + zero_size(k)) return true;
        if (!base && zero_start(k) >= atomic_load_explicit(&zero_next, memory_order_relaxed)) break;
    }
    return false;
}

/* ---- blocks ---- */

/* Whether [s, e) is all zero; s and e are multiples of 8, a block's bytes. Four 16-byte lanes at a
 * time (the compiler's own vectorizer leaves an OR-reduction of unknown length scalar at -O2). */
typedef uint64_t lane __attribute__((vector_size(16), aligned(8)));
static bool all_zero(const uint8_t *s, const uint8_t *e) {
    uint64_t any = 0;
    for (; s < e && ((uintptr_t)s & 15); s += 8) any |= load8(s);
    lane a = {0, 0}, b = a, c = a, d = a;
    for (; s + 64 <= e; s += 64) {
        a |= *(const lane *)s, b |= *(const lane *)(s + 16);
        c |= *(const lane *)(s + 32), d |= *(const lane *)(s + 48);
    }
    a |= b | c | d;
    for (; s < e; s += 8) any |= load8(s);
    return !(any | a[0] | a[1]);
}

/* [from, to) of p must be zero: a block that was freed and nobody wrote to since. */
static void check_zero(void *p, size_t from, size_t to, size_t bsize, const char *when) {
    const uint8_t *b = p;
    if (sx_likely(all_zero(b + from, b + to))) return;
    for (const uint8_t *w = b + from; w < b + to; w += 8)
        if (load8(w))
            sx_fatal("%s: write after free in the %zu-byte block at %p (found at offset %zu)", when,
                     bsize - 8, p, (size_t)(w - b));
}

/* n new blocks of a page from first: zeroed, marked free, linked in random order (but for the
 * first when skip_first: it stays out, marked free). */
static sx_block *fresh(uint8_t *first, uint32_t n, size_t bsize, bool skip_first, sx_block **tail) {
    uint16_t order[SX_EXTEND_BYTES / 16];
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *b = first + (size_t)i * bsize;
        memset(b, 0, bsize - 8);
        tail_store(b, bsize, freed_word);
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

/* A block of a page on its way out: it must be as free() left it (its tail saying freed, its first
 * words zero: a write after free since the quarantine let it go is caught here); then the tail
 * takes the size, the slack the pattern, and the link and key go (no address leaks). */
static inline void *hand_out(uint8_t *p, size_t bsize, size_t size, bool zero) {
    uintptr_t tail = tail_load(p, bsize);
    /* (a 16-byte block's tail is its free key, which the pop has just cleared) */
    if (sx_unlikely(tail != freed_word) && !(bsize == 16 && tail == 0))
        sx_fatal("malloc(): write after free at the end of the %zu-byte block at %p", bsize - 8, (void *)p);
    uint64_t any = 0; /* six loads inline: check_zero's general loop costs 7% more on malloc-simple */
    if (bsize >= 80)
        any = load8(p + 16) | load8(p + 24) | load8(p + 32) | load8(p + 40) | load8(p + 48) | load8(p + 56);
    else
        for (size_t o = 16; o < bsize - 8; o += 8) any |= load8(p + o);
    if (sx_unlikely(any)) check_zero(p, 16, bsize < 80 ? bsize - 8 : 64, bsize, "malloc()");
    store8(p, 0), store8(p + 8, 0); /* the link and the key (of a 16-byte block: the tail) */
    if (zero) memset(p, 0, size);
    fill_slack(p, size, bsize - 8);
    tail_store(p, bsize, tail_word(p, size));
    return p;
}

void *sx_secure_alloc(size_t size, size_t align, bool zero) {
    if (sx_unlikely(sx_opt.stats)) sx_count_requested(sx_tls_heap, size);
    if (sx_likely(size - 1 < SX_MEDIUM_MAX - 8 && align <= 16 &&
                  size + 8 < atomic_load_explicit(&sx_mmap_threshold, memory_order_relaxed))) {
        /* the class's current page, 8 bytes up for the tail (malloc's own fast path is off: the
         * direct table has no page in secure mode) */
        sx_page *pg;
        uint8_t *p = sx_bin_pop(sx_tls_heap, sx_bin_of(size + 8), &pg);
        if (sx_likely(p != NULL)) return hand_out(p, pg->block_size, size, zero);
    }
    if (size == 0 && align <= sx_os_page) {
        void *z = zero_block(align < 16 ? 16 : align);
        if (z) return z;
    }
    if (size > VALUE_MASK - 64) { /* beyond any address space (and what a tail can hold) */
        errno = ENOMEM;
        return NULL;
    }
    uint8_t *p = sx_core_alloc(size + 8, align, false);
    if (!p) return NULL;
    sx_segment *seg = sx_segment_of(p);
    sx_page *pg = sx_page_of(seg, p);
    if (pg->kind == SX_SPAN_PAGE) return hand_out(p, pg->block_size, size, zero);
    size_t bsize = pg->kind == SX_SPAN_HUGE ? sx_huge_usable(seg, p) : pg->block_size;
    tail_store(p, bsize, tail_word(p, size));
    fill_slack(p, size, bsize - 8);
    /* a fresh huge mapping is zero already */
    bool fresh = pg->kind == SX_SPAN_HUGE && !seg->cached;
    memset(p, 0, zero && !fresh ? size : size < 16 ? size : 16);
    return p;
}

sx_cold _Noreturn static void bad_tail(void *p, uintptr_t v, const char *fn) {
    if (v == FREED) sx_fatal("%s(): double free of %p detected", fn, p);
    sx_fatal("%s(): heap overflow past the end of the block at %p: its canary was overwritten", fn, p);
}

sx_cold _Noreturn static void bad_slack(void *p, size_t v, size_t bsize, const char *fn) {
    const uint8_t *s = (const uint8_t *)p + v;
    while (s < (const uint8_t *)p + bsize - 8 && *s == pattern) s++;
    sx_fatal("%s(): heap overflow: %zu bytes past the end of the %zu-byte block at %p were written",
             fn, (size_t)(s - (const uint8_t *)p) - v + 1, v, p);
}

/* The block's requested size, from its tail; aborts if the tail or the pattern after the request
 * is broken. */
static inline size_t checked_size(void *p, size_t bsize, const char *fn) {
    uintptr_t v = tail_value(p, tail_load(p, bsize));
    if (sx_unlikely(v > bsize - 8)) bad_tail(p, v, fn); /* freed, or overwritten */
    const uint8_t *b = p;
    /* a linear overflow breaks the bytes right after the request first: the pattern is checked
     * up to 64 bytes past it (so that a string grown by realloc a byte at a time does not pay for
     * its whole slack each time), the tail beyond */
    size_t w = v & ~(size_t)7, end = bsize - 8 < w + 64 ? bsize - 8 : w + 64;
    if (w < end) { /* a word at a time, the first without the request's own bytes */
        uint64_t x = (load8(b + w) ^ pattern8()) & bytes_from(v);
        for (w += 8; w < end; w += 8) x |= load8(b + w) ^ pattern8();
        if (sx_unlikely(x)) bad_slack(p, v, bsize, fn);
    }
    return (size_t)v;
}

sx_cold _Noreturn static void wrong_size(void *p, const char *fn, size_t size, size_t had) {
    sx_fatal("%s(): size %zu given for the block at %p, which was allocated with %zu", fn, size, p, had);
}

/* The tail of the block before p in its page must be whole: free, or a size that fits. */
static inline void check_before(void *p, const sx_page *pg, size_t bsize, const char *fn) {
    if ((uint8_t *)p == pg->start) return;
    uint8_t *q = (uint8_t *)p - bsize;
    uintptr_t raw = tail_load(q, bsize), v = tail_value(q, raw);
    if (sx_likely(v <= bsize - 8 || v == FREED)) return;
    if ((bsize == 16 && raw == (sx_secret ^ (uintptr_t)q)) || raw == 0) /* 16 bytes: tail is the key */
        return;
    sx_fatal("%s(): heap underflow before the block at %p (or an overflow from the block before it "
             "at %p): a canary was overwritten", fn, p, (void *)q);
}

/* The page of p if p is a block of a page (the common case); NULL for anything else. */
static inline sx_page *page_block(void *p) {
    sx_segment *seg = sx_segment_of(p);
    if (sx_unlikely(!sx_segmap_contains(seg))) return NULL;
    sx_page *pg = sx_page_of(seg, p);
    return sx_likely(pg->kind == SX_SPAN_PAGE && sx_block_valid(pg, p)) ? pg : NULL;
}

/* Blocks up to this size are checked whole whenever they leave the quarantine: a few cache lines,
 * most likely still in cache from the zeroing at free, read in about the time it takes to pick
 * lines out of them. */
#define VERIFY_WHOLE 512

static uint64_t line_or(const uint8_t *s) {
    return load8(s) | load8(s + 8) | load8(s + 16) | load8(s + 24) | load8(s + 32) | load8(s + 40) |
           load8(s + 48) | load8(s + 56);
}

/* A block leaving the quarantine must be as free() left it, zero, its tail saying freed. All of it
 * is checked when `r` is 0 (malloc_trim, a heap given back), the block is small, or one time in
 * secure_verify at random; otherwise its first, middle and last 64 bytes and one 64-byte line
 * picked with r: a write after free there is always caught, one elsewhere one time in N at
 * each block's release (and always at malloc_trim). */
static inline void check_released(uint8_t *q, size_t bs, uint64_t r, const char *when) {
    size_t end = bs - 8;
    unsigned n = (unsigned)sx_opt.secure_verify;
    if (bs <= VERIFY_WHOLE || !r || n <= 1 || (uint32_t)(r >> 32) % n == 0) {
        check_zero(q, 0, end, bs, when);
        return;
    }
    size_t mid = ((end / 2) & ~(size_t)7) - 32, any = ((size_t)(r >> 8) % (end / 64)) * 64;
    if (sx_unlikely(line_or(q) | line_or(q + mid) | line_or(q + end - 64) | line_or(q + any)))
        check_zero(q, 0, end, bs, when); /* finds it, and says where */
}

/* A block leaves the quarantine: it must be as free() left it (check_released); then it is free
 * for malloc (its page's list, or its owner's). */
static void release(uint8_t *q, uint64_t r, const char *when) {
    sx_segment *seg = sx_segment_of(q);
    sx_page *pg = sx_page_of(seg, q);
    size_t bs = pg->block_size;
    if (tail_load(q, bs) != freed_word)
        sx_fatal("%s: write after free at the end of the %zu-byte block at %p", when, bs - 8, (void *)q);
    check_released(q, bs, r, when);
    ((sx_block *)q)->key = sx_secret ^ (uintptr_t)q;
    sx_free_block(seg, pg, (sx_block *)q);
}

/* A block of a page, checked: zeroed, marked freed, and into the heap's quarantine, which lets
 * one at random go when it is full. */
static void quarantine(uint8_t *p, size_t bsize) {
    tail_store(p, bsize, freed_word);
    memset(p, 0, bsize - 8);
    sx_heap *h = sx_tls_heap;
    if (h == &sx_heap_empty) { /* an exiting thread: no quarantine */
        release(p, 0, "free()");
        return;
    }
    if (h->nquarantined < SX_QUARANTINE) {
        h->quarantine[h->nquarantined++] = p;
        return;
    }
    uint64_t r = sx_secure_random() | 1; /* never 0: that would ask for a whole check */
    unsigned i = (unsigned)((r >> 1) % SX_QUARANTINE);
    uint8_t *old = h->quarantine[i];
    h->quarantine[i] = p;
    release(old, r, "free()");
}

/* malloc_trim, and a thread's heap given back: the quarantine is emptied, each block checked. */
void sx_secure_flush(sx_heap *h) {
    if (!sx_secure_on || h == &sx_heap_empty) return;
    while (h->nquarantined) release(h->quarantine[--h->nquarantined], 0, "malloc_trim()");
}

void sx_secure_free(void *p, const char *fn, size_t size, bool sized) {
    if (!p) return;
    sx_page *pg = page_block(p);
    if (sx_likely(pg != NULL)) {
        size_t bsize = pg->block_size, had = checked_size(p, bsize, fn);
        if (sized && size != had) wrong_size(p, fn, size, had);
        check_before(p, pg, bsize, fn);
        quarantine(p, bsize);
        return;
    }
    if (is_zero_block(p)) return;
    size_t bsize = sx_block_usable(p, fn, &pg); /* large, huge, foreign or invalid */
    if (!pg) {
        if (is_held(p)) sx_fatal("%s(): double free of %p detected (a huge block, freed already)", fn, p);
        sx_free_foreign(p, fn);
        return;
    }
    size_t had = checked_size(p, bsize, fn);
    if (sized && size != had) wrong_size(p, fn, size, had);
    if (pg->kind == SX_SPAN_HUGE) sx_huge_check_below(p, fn);
    else memset(p, 0, bsize - 8); /* a large block (huge ones are zeroed when held) */
    tail_store(p, bsize, freed_word);
    sx_free_core(p);
}

void *sx_secure_realloc(void *p, size_t size, const char *fn) {
    if (!p) return sx_secure_alloc(size, 0, false);
    if (size == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
        sx_secure_free(p, fn, 0, false);
        return NULL;
    }
    sx_page *pg = page_block(p);
    size_t bsize;
    if (pg) bsize = pg->block_size;
    else if (is_zero_block(p)) return sx_secure_alloc(size, 0, false);
    else if (!(bsize = sx_block_usable(p, fn, &pg))) {
        if (is_held(p)) sx_fatal("%s(): invalid pointer %p (a huge block, freed already)", fn, p);
        return sx_foreign_realloc(p, size);
    }
    size_t had = checked_size(p, bsize, fn);
    if (size <= bsize - 8 && (pg->kind != SX_SPAN_PAGE || size >= (bsize - 8) / 2)) {
        /* in place: the canary moves with the end of the request */
        if (size < had) fill_slack(p, size, bsize - 8);
        tail_store(p, bsize, tail_word(p, size));
        return p;
    }
    void *q = sx_secure_alloc(size, 0, false); /* moves: the old block goes to quarantine */
    if (!q) return NULL;
    memcpy(q, p, had < size ? had : size);
    sx_secure_free(p, fn, 0, false);
    return q;
}

size_t sx_secure_usable(void *p) {
    if (!p) return 0;
    sx_page *pg = page_block(p);
    size_t bsize;
    if (pg) bsize = pg->block_size;
    else if (is_zero_block(p)) return 0;
    else if (!(bsize = sx_block_usable(p, "malloc_usable_size", &pg))) return sx_foreign_usable_size(p);
    return checked_size(p, bsize, "malloc_usable_size"); /* exactly what was asked for */
}

size_t sx_secure_requested(void *p, size_t bsize) {
    uintptr_t raw = tail_load(p, bsize), v = tail_value(p, raw);
    if (sx_likely(v <= bsize - 8)) return (size_t)v;
    /* a 16-byte block's tail is its free key while it is free, 0 just after the pop */
    if (v == FREED || raw == 0 || (bsize == 16 && raw == (sx_secret ^ (uintptr_t)p))) return SX_SECURE_FREE;
    return SX_SECURE_BROKEN;
}

/* A page's next n blocks (heap/page.c asks): a page's block 0 is never handed out, so that every
 * block has one before it whose tail an underflow breaks (pages of fewer than 8 blocks rely on the
 * guard page before them); the others zeroed, marked free, linked in random order. */
static void page_extend(sx_page *pg, uint8_t *first, uint32_t n) {
    bool skip = pg->capacity == 0 && pg->reserved >= 8;
    if (skip && n < 2) n = 2;
    sx_block *tail;
    sx_block *head = fresh(first, n, pg->block_size, skip, &tail);
    sx_block_link(tail, pg->free);
    pg->free = head;
    __atomic_store_n(&pg->capacity, (uint16_t)(pg->capacity + n), __ATOMIC_RELAXED); /* see types.h */
}

/* What secure mode asks of the layers below, through their hooks. */
static void set_hooks(void) {
    sx_heap_hook.extend = page_extend;
    sx_heap_hook.guard = page_guard;
    sx_heap_hook.release = sx_secure_flush;
    sx_heap_hook.whole_blocks = true; /* freed blocks are checked when they come back */
    sx_huge_hook.slow_path = true;
    sx_huge_hook.fixed_threshold = true;
    sx_huge_hook.guard = sx_os_page;
    sx_huge_hook.reuse = huge_reuse;
    sx_huge_hook.hold = huge_hold;
    sx_huge_hook.purge = sx_secure_release_held;
    sx_huge_hook.thp_from = THP_FROM;
}
