/*
 * fuzz.c — a program of allocation calls, read from the fuzzer's input, run against strata and
 * checked against a model of what each call must do (glibc's documented behaviour).
 *
 * The model: every slot holds one live block with the size asked for, the alignment asked for and
 * a seed. The block's bytes hold a pattern computed from the seed and the offset, written when the
 * block is made and verified before it is freed or resized and at the end of the program, so a
 * block that overlaps another, loses contents in realloc or is scribbled on by the allocator shows
 * up as a wrong byte. Each call's result is checked too: NULL and errno for requests that must
 * fail, alignment, zeroed memory from calloc, malloc_usable_size at least the size asked for and
 * every usable byte writable, no two live blocks overlapping.
 *
 * The input: one operation after another, each an opcode byte, a slot byte and the bytes its
 * arguments need (fz_size, fz_align); an input that runs out reads zeros. The threaded variant
 * reads a header byte first (tests/fuzz/README.md). Work per input is bounded (FZ_LIVE_MAX bytes
 * live, FZ_WORK_MAX bytes written and read): past it, sizes are cut down, so no input is slow.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "strata.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the pattern is written in words and read in bytes: little-endian only"
#endif

#define FZ_SLOTS 64                       /* slots of the one-thread variant */
#define FZ_THREAD_SLOTS 32                /* slots of each thread in the threaded variant */
#define FZ_BOXES 16                       /* blocks in transit between threads */
#define FZ_MAX_THREADS 4
#define FZ_LIVE_MAX ((size_t)48 << 20)    /* bytes of live blocks per thread */
#define FZ_WORK_MAX ((size_t)64 << 20)    /* bytes filled and verified per thread and input */

enum {
    K_MALLOC, K_CALLOC, K_REALLOC, K_POSIX_MEMALIGN, K_ALIGNED_ALLOC, K_MEMALIGN, K_VALLOC, K_PVALLOC
};
static const char *const kind_name[] = {"malloc",        "calloc",   "realloc", "posix_memalign",
                                        "aligned_alloc", "memalign", "valloc",  "pvalloc"};

typedef struct {
    uint8_t *p;    /* NULL: the slot is empty */
    size_t req;    /* bytes asked for (pvalloc: rounded up to the page, as it promises) */
    size_t known;  /* [0, known) holds the pattern: req, or the usable size once that is written */
    size_t align;  /* alignment the block must have */
    uint64_t seed;
    int kind;
} fz_block;

typedef struct {
    fz_block slot[FZ_SLOTS];
    int nslots;
    unsigned id;      /* thread number, in seeds and messages */
    bool leave;       /* threaded: leave the blocks still live at the end for the main thread */
    size_t live;      /* bytes of known contents in the slots */
    size_t work;      /* bytes filled and verified */
    uint64_t gen;     /* blocks made, for their seeds */
    size_t op;        /* number of the current operation */
    const uint8_t *d; /* the program, and how far it has been read */
    size_t n, i;
} fz_ctx;

void (*fz_on_failure)(const char *message);
static size_t page_size;

__attribute__((format(printf, 2, 3), noreturn)) static void fail(fz_ctx *c, const char *fmt, ...) {
    char msg[512];
    int k = snprintf(msg, sizeof msg, "strata fuzz: thread %u, operation %zu: ", c->id, c->op);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + k, sizeof msg - (size_t)k, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", msg);
    if (fz_on_failure) fz_on_failure(msg);
    abort();
}

/* ---- reading the program ---- */

static unsigned u8(fz_ctx *c) { return c->i < c->n ? c->d[c->i++] : 0; }
static unsigned u16(fz_ctx *c) {
    unsigned lo = u8(c);
    return lo | u8(c) << 8;
}

static bool over_budget(const fz_ctx *c, size_t more) {
    return c->live + more > FZ_LIVE_MAX || c->work > FZ_WORK_MAX;
}

/* A size, biased to the places where an allocator changes its mind: the small classes and their
 * edges, the 1 KiB direct table, page multiples, the 128 KiB mmap threshold, 64 KiB slices and
 * spans, powers of two, the 4 MiB segment, huge blocks of a few MiB. About one size in five is
 * over a MiB: those cost page faults, and most of the code is on the paths of small blocks. */
static size_t fz_size(fz_ctx *c) {
    unsigned sel = u8(c), v = u16(c);
    long long d = (int8_t)u8(c), s;
    switch (sel % 16) {
    case 0: case 1: s = v % 129; break;
    case 2: case 3: s = v % 1025; break;
    case 4: s = v % 2049; break;
    case 5: s = v % (16 << 10); break;
    case 6: s = (long long)(v % 40) * 4096 + d; break;
    case 7: s = (128 << 10) + (int16_t)v % 8193; break;
    case 8: s = (long long)v * 8; break;
    case 9: s = (long long)(v % 64) * 65536 + d * 16; break;
    case 10: s = (1LL << (v % 23)) + d % 17; break;
    case 11: s = (4LL << 20) - (long long)(v % 4) * 65536 + d * 16; break;
    case 12: s = (1LL << 20) + (long long)v * 96; break;
    case 13: s = (128LL << (v % 11)) * (8 + (v >> 4) % 8) / 8 + d % 3; break; /* class edges */
    default: s = v; break;
    }
    size_t size = s < 0 ? 0 : (size_t)s;
    return over_budget(c, size) ? size % 4096 : size;
}

/* An alignment: a power of two up to 64 MiB, or one of the odd values the aligned functions must
 * refuse (or, memalign, round up). */
static size_t fz_align(fz_ctx *c) {
    static const size_t odd[] = {0, 1, 2, 3, 4, 12, 24, 48, 100, 4095, 4097, 3 << 12, (1 << 20) + 1, 65535};
    unsigned b = u8(c);
    if (b & 0x80) return odd[(b & 0x7f) % (sizeof odd / sizeof odd[0])];
    return (size_t)1 << (b % 27);
}

/* ---- the pattern ---- */

#define FZ_MUL 0x9E3779B97F4A7C15ull

/* A word of a block, read and written in place (the harness may be built with -fno-builtin, where
 * memcpy would be a call per word). */
typedef uint64_t __attribute__((may_alias)) fz_word;

/* The loops over block contents are most of the harness's time: under clang, no comparison
 * tracing (libFuzzer learns nothing from them; it cost four fifths of the time) and no ASan
 * checks (the memory is strata's, which ASan does not track). */
#ifdef __clang__
#define FZ_BULK __attribute__((no_sanitize("coverage", "address")))
#else
#define FZ_BULK
#endif

FZ_BULK static inline uint64_t word_at(uint64_t seed, size_t k) { return seed + (uint64_t)k * FZ_MUL; }
FZ_BULK static inline uint8_t byte_at(uint64_t seed, size_t i) {
    return (uint8_t)(word_at(seed, i >> 3) >> ((i & 7) * 8));
}

FZ_BULK static void fill(fz_ctx *c, uint8_t *p, size_t from, size_t to, uint64_t seed) {
    size_t i = from;
    for (; i < to && (i & 7); i++) p[i] = byte_at(seed, i);
    for (; i + 8 <= to; i += 8) {
        *(fz_word *)(p + i) = word_at(seed, i >> 3);
    }
    for (; i < to; i++) p[i] = byte_at(seed, i);
    c->work += to > from ? to - from : 0;
}

/* The first offset in [from, to) that does not hold the pattern, or `to`. */
FZ_BULK static size_t mismatch(fz_ctx *c, const uint8_t *p, size_t from, size_t to, uint64_t seed) {
    size_t i = from;
    c->work += to > from ? to - from : 0;
    for (; i < to && (i & 7); i++)
        if (p[i] != byte_at(seed, i)) return i;
    for (; i + 8 <= to; i += 8)
        if (*(const fz_word *)(p + i) != word_at(seed, i >> 3)) break;
    for (; i < to; i++)
        if (p[i] != byte_at(seed, i)) return i;
    return to;
}

FZ_BULK static size_t first_nonzero(fz_ctx *c, const uint8_t *p, size_t n) {
    size_t i = 0;
    c->work += n;
    for (; i + 8 <= n; i += 8)
        if (*(const fz_word *)(p + i)) break;
    for (; i < n; i++)
        if (p[i]) return i;
    return n;
}

static uint64_t new_seed(fz_ctx *c, int slot) {
    uint64_t x = ((uint64_t)c->id << 56) ^ (++c->gen << 8) ^ (uint64_t)slot;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return x;
}

/* ---- the model ---- */

static void verify(fz_ctx *c, const fz_block *b, const char *before) {
    size_t k = mismatch(c, b->p, 0, b->known, b->seed);
    if (k != b->known)
        fail(c, "%s block %p of %zu bytes (pattern on %zu): byte %zu is 0x%02x, expected 0x%02x, before %s",
             kind_name[b->kind], (void *)b->p, b->req, b->known, k, b->p[k], byte_at(b->seed, k), before);
}

static bool overlaps(const fz_block *b, const uint8_t *p, size_t n) {
    size_t m = b->known > b->req ? b->known : b->req;
    return p < b->p + (m ? m : 1) && b->p < p + (n ? n : 1);
}

/* A new block p of req bytes from call `fn`: check it, fill it, put it in the slot. */
static void took(fz_ctx *c, fz_block *b, uint8_t *p, size_t req, size_t align, int kind) {
    if (!p) fail(c, "%s(%zu bytes, alignment %zu) failed: errno %d", kind_name[kind], req, align, errno);
    size_t need = align > 16 ? align : 16;
    if ((uintptr_t)p % need)
        fail(c, "%s(%zu bytes) returned %p, not aligned to %zu", kind_name[kind], req, (void *)p, need);
    for (int j = 0; j < c->nslots; j++)
        if (c->slot[j].p && &c->slot[j] != b && overlaps(&c->slot[j], p, req))
            fail(c, "%s(%zu) returned %p, inside the live %s block %p of %zu bytes", kind_name[kind],
                 req, (void *)p, kind_name[c->slot[j].kind], (void *)c->slot[j].p, c->slot[j].req);
    *b = (fz_block){.p = p, .req = req, .known = req, .align = align, .seed = new_seed(c, (int)(b - c->slot)), .kind = kind};
    fill(c, p, 0, req, b->seed);
    c->live += req;
}

static void forget(fz_ctx *c, fz_block *b) {
    c->live -= b->known;
    memset(b, 0, sizeof *b);
}

/* Free a live block, one of free's four spellings chosen by `how`. */
static void release(fz_ctx *c, fz_block *b, unsigned how) {
    if (!b->p) return;
    verify(c, b, "free");
    switch (how % 4) {
    case 0: strata_free(b->p); break;
    case 1: strata_cfree(b->p); break;
    case 2: strata_free_sized(b->p, b->req); break;
    default:
        if (b->kind == K_ALIGNED_ALLOC) strata_free_aligned_sized(b->p, b->align, b->req);
        else strata_free(b->p);
        break;
    }
    forget(c, b);
}

static fz_block *slot_of(fz_ctx *c) { return &c->slot[u8(c) % (unsigned)c->nslots]; }

/* ---- operations ---- */

static void op_malloc(fz_ctx *c) {
    fz_block *b = slot_of(c);
    size_t size = fz_size(c);
    release(c, b, 0);
    took(c, b, strata_malloc(size), size, 0, K_MALLOC);
}

static void op_calloc(fz_ctx *c) {
    fz_block *b = slot_of(c);
    unsigned m = u8(c);
    size_t total = fz_size(c), count, elem;
    if (m & 0x80) { /* count * elem overflows: NULL, ENOMEM */
        elem = total < 2 ? 2 : total;
        count = SIZE_MAX / elem + 1 + (m & 7);
        if (m & 0x40) count ^= elem, elem ^= count, count ^= elem;
        errno = 0;
        void *p = strata_calloc(count, elem);
        if (p || errno != ENOMEM)
            fail(c, "calloc(%zu, %zu) overflows but returned %p, errno %d", count, elem, p, errno);
        return;
    }
    count = m % 17;
    elem = count ? total / count : total;
    if (m & 0x40) count ^= elem, elem ^= count, count ^= elem;
    release(c, b, m >> 4);
    uint8_t *p = strata_calloc(count, elem);
    size_t req = count * elem;
    if (p) {
        size_t k = first_nonzero(c, p, req);
        if (k != req) fail(c, "calloc(%zu, %zu) = %p: byte %zu is 0x%02x, not zero", count, elem, (void *)p, k, p[k]);
    }
    took(c, b, p, req, 0, K_CALLOC);
}

/* realloc(b->p, size), or reallocarray(b->p, count, size / count) when count is not 0. */
static void resize(fz_ctx *c, fz_block *b, size_t size, size_t count) {
    const char *fn = count ? "reallocarray" : "realloc";
    size_t elem = count ? size / count : size;
    if (count) size = count * elem;
    if (!b->p) {
        uint8_t *p = count ? strata_reallocarray(NULL, count, elem) : strata_realloc(NULL, size);
        took(c, b, p, size, 0, K_REALLOC);
        return;
    }
    verify(c, b, fn);
    uint8_t *q = count ? strata_reallocarray(b->p, count, elem) : strata_realloc(b->p, size);
    if (size == 0) { /* glibc: frees the block and returns NULL */
        if (q) fail(c, "%s(%p, 0) returned %p, not NULL", fn, (void *)b->p, (void *)q);
        forget(c, b);
        return;
    }
    if (!q) fail(c, "%s(%p, %zu) failed: errno %d", fn, (void *)b->p, size, errno);
    if ((uintptr_t)q % 16) fail(c, "%s(%zu) returned %p, not aligned to 16", fn, size, (void *)q);
    for (int j = 0; j < c->nslots; j++)
        if (c->slot[j].p && &c->slot[j] != b && overlaps(&c->slot[j], q, size))
            fail(c, "%s(%zu) returned %p, inside the live block %p of %zu bytes", fn, size, (void *)q,
                 (void *)c->slot[j].p, c->slot[j].req);
    size_t keep = b->req < size ? b->req : size;
    size_t k = mismatch(c, q, 0, keep, b->seed);
    if (k != keep)
        fail(c, "%s(%p of %zu, %zu) = %p lost the contents: byte %zu is 0x%02x, expected 0x%02x", fn,
             (void *)b->p, b->req, size, (void *)q, k, q[k], byte_at(b->seed, k));
    fill(c, q, keep, size, b->seed);
    c->live = c->live - b->known + size;
    b->p = q;
    b->req = b->known = size;
    b->align = 0;
    b->kind = K_REALLOC;
}

static void op_realloc(fz_ctx *c) {
    fz_block *b = slot_of(c);
    resize(c, b, fz_size(c), 0);
}

/* realloc(p, 0) frees p; realloc(NULL, 0) is malloc(0). */
static void op_realloc_zero(fz_ctx *c) {
    resize(c, slot_of(c), 0, 0);
}

static void op_reallocarray(fz_ctx *c) {
    fz_block *b = slot_of(c);
    unsigned m = u8(c);
    size_t size = fz_size(c);
    if (m & 0x80) { /* count * elem overflows: NULL, ENOMEM, the block untouched */
        size_t elem = size < 2 ? 2 : size, count = SIZE_MAX / elem + 1 + (m & 7);
        if (b->p) verify(c, b, "reallocarray");
        errno = 0;
        void *q = strata_reallocarray(b->p, count, elem);
        if (q || errno != ENOMEM)
            fail(c, "reallocarray(%p, %zu, %zu) overflows but returned %p, errno %d", (void *)b->p,
                 count, elem, q, errno);
        if (b->p) verify(c, b, "the next call (after a failed reallocarray)");
        return;
    }
    resize(c, b, size, 1 + m % 8);
}

static void op_free(fz_ctx *c) {
    fz_block *b = slot_of(c);
    unsigned how = u8(c);
    if (!b->p) { /* free(NULL) and its spellings do nothing */
        if (how & 1) strata_free_sized(NULL, 0);
        else strata_free(NULL);
        return;
    }
    release(c, b, how);
}

static size_t round_pow2(size_t a) { return a <= 1 ? 1 : (size_t)1 << (64 - __builtin_clzl(a - 1)); }
static bool is_pow2(size_t a) { return a && !(a & (a - 1)); }

/* posix_memalign, aligned_alloc, memalign, valloc, pvalloc with the alignment rules of glibc:
 * posix_memalign wants a power of two multiple of sizeof(void *) (else EINVAL, *out untouched),
 * aligned_alloc a power of two (else NULL, EINVAL), memalign rounds up to one. */
static void op_aligned(fz_ctx *c, int kind) {
    fz_block *b = slot_of(c);
    size_t align = kind == K_VALLOC || kind == K_PVALLOC ? page_size : fz_align(c);
    size_t size = fz_size(c), req = size;
    release(c, b, 0);
    uint8_t *p = NULL;
    errno = 0;
    switch (kind) {
    case K_POSIX_MEMALIGN: {
        void *out = (void *)c; /* must stay as it is when the call fails */
        int r = strata_posix_memalign(&out, align, size);
        if (!is_pow2(align) || align % sizeof(void *)) {
            if (r != EINVAL || out != (void *)c)
                fail(c, "posix_memalign(alignment %zu) returned %d, out %p: wants EINVAL, out untouched", align, r, out);
            return;
        }
        if (r) fail(c, "posix_memalign(alignment %zu, %zu) returned %d", align, size, r);
        p = out;
        break;
    }
    case K_ALIGNED_ALLOC:
        p = strata_aligned_alloc(align, size);
        if (!is_pow2(align)) {
            if (p || errno != EINVAL)
                fail(c, "aligned_alloc(alignment %zu) returned %p, errno %d: wants NULL, EINVAL", align, (void *)p, errno);
            return;
        }
        break;
    case K_MEMALIGN:
        p = strata_memalign(align, size);
        align = round_pow2(align);
        break;
    case K_VALLOC: p = strata_valloc(size); break;
    default:
        p = strata_pvalloc(size);
        req = (size + page_size - 1) / page_size * page_size;
        break;
    }
    took(c, b, p, req, align, kind);
}

/* malloc_usable_size: at least the size asked for, the same every time, and every byte of it
 * writable (the pattern then covers all of it). */
static void op_usable(fz_ctx *c) {
    fz_block *b = slot_of(c);
    if (!b->p) {
        if (strata_malloc_usable_size(NULL) != 0) fail(c, "malloc_usable_size(NULL) is not 0");
        return;
    }
    size_t u = strata_malloc_usable_size(b->p);
    if (u < b->req)
        fail(c, "malloc_usable_size(%s block %p of %zu bytes) = %zu", kind_name[b->kind], (void *)b->p, b->req, u);
    size_t again = strata_malloc_usable_size(b->p);
    if (again != u) fail(c, "malloc_usable_size(%p) changed from %zu to %zu", (void *)b->p, u, again);
    if (u > b->known && !over_budget(c, u - b->known)) {
        fill(c, b->p, b->known, u, b->seed);
        c->live += u - b->known;
        b->known = u;
    }
}

/* Requests that cannot be met: NULL and ENOMEM (EINVAL for memalign's impossible alignments), the
 * block given to realloc untouched. */
static void op_absurd(fz_ctx *c) {
    static const size_t sizes[] = {
        SIZE_MAX,         SIZE_MAX - 1,          SIZE_MAX - 15,           SIZE_MAX - 4095,
        SIZE_MAX - 65535, SIZE_MAX - (4 << 20),  (size_t)PTRDIFF_MAX + 1, PTRDIFF_MAX,
        PTRDIFF_MAX - 4095, (size_t)1 << 62,     ((size_t)1 << 56) + 12345, (size_t)1 << 57,
    };
    fz_block *b = slot_of(c);
    unsigned m = u8(c), fn = u8(c);
    size_t size = sizes[m % (sizeof sizes / sizeof sizes[0])];
    size_t align = (size_t)16 << (m >> 5);
    int want = ENOMEM;
    void *p = NULL, *out = (void *)c;
    if (b->p) verify(c, b, "an impossible request");
    errno = 0;
    switch (fn % 13) {
    case 0: p = strata_malloc(size); break;
    case 1: p = strata_calloc(1, size); break;
    case 2: p = strata_calloc(size, 1); break;
    case 3: p = strata_realloc(b->p, size); break;
    case 4: p = strata_reallocarray(b->p, 1, size); break;
    case 5: {
        int r = strata_posix_memalign(&out, align, size);
        if (r != ENOMEM || out != (void *)c)
            fail(c, "posix_memalign(%zu, %zu) returned %d, out %p: wants ENOMEM", align, size, r, out);
        errno = ENOMEM;
        break;
    }
    case 6: p = strata_aligned_alloc(align, size); break;
    case 7: p = strata_memalign(align, size); break;
    case 8: p = strata_valloc(size); break;
    case 9: p = strata_pvalloc(size); break;
    case 10: /* an alignment no address space has room for */
        size = 1 + (m & 63);
        align = (size_t)1 << (56 + (fn >> 4) % 8);
        p = (fn & 0x80) ? strata_memalign(align, size) : strata_aligned_alloc(align, size);
        break;
    case 11: { /* valid, but not to be had */
        size = 1 + (m & 63);
        align = (size_t)1 << (56 + (fn >> 4) % 8);
        int r = strata_posix_memalign(&out, align, size);
        if (r != ENOMEM || out != (void *)c)
            fail(c, "posix_memalign(%zu, %zu) returned %d, out %p: wants ENOMEM", align, size, r, out);
        errno = ENOMEM;
        break;
    }
    default: /* glibc: memalign's alignment above SIZE_MAX / 2 + 1 is EINVAL */
        align = SIZE_MAX / 2 + 2 + (m & 15);
        size = m & 63;
        p = strata_memalign(align, size);
        want = EINVAL;
        break;
    }
    if (p || errno != want)
        fail(c, "impossible request (case %u, size %zu, alignment %zu) returned %p, errno %d, wants %d",
             fn % 13, size, align, p, errno, want);
    if (b->p) verify(c, b, "the next call (after an impossible request)");
}

/* Sizes the machine may or may not have room for (2 GiB to 1 TiB): NULL with ENOMEM, or a block
 * whose first and last bytes can be written. */
static void op_big(fz_ctx *c) {
    unsigned m = u8(c);
    size_t size = ((size_t)1 << (31 + (m & 3) * 3)) + (m >> 4) * 4096 + 1;
    errno = 0;
    uint8_t *p = (m & 8) ? strata_calloc(1, size) : strata_malloc(size);
    if (!p) {
        if (errno != ENOMEM) fail(c, "malloc(%zu) failed with errno %d, not ENOMEM", size, errno);
        return;
    }
    if ((m & 8) && (p[0] || p[size - 1])) fail(c, "calloc(1, %zu) = %p is not zeroed", size, (void *)p);
    size_t u = strata_malloc_usable_size(p);
    if (u < size) fail(c, "malloc_usable_size(%p of %zu bytes) = %zu", (void *)p, size, u);
    p[0] = 1;
    p[u - 1] = 2;
    strata_free(p);
}

static void op_check_all(fz_ctx *c) {
    for (int j = 0; j < c->nslots; j++)
        if (c->slot[j].p && c->work < FZ_WORK_MAX) verify(c, &c->slot[j], "a check of every block");
}

/* malloc_trim gives memory back: none of it may belong to a live block. */
static void op_trim(fz_ctx *c) {
    strata_malloc_trim((size_t)u8(c) << 12);
    op_check_all(c);
}

/* Several blocks of one size in a row: whole pages of a class. */
static void op_alloc_many(fz_ctx *c) {
    unsigned first = u8(c), k = 2 + u8(c) % 15;
    size_t size = fz_size(c);
    for (unsigned j = 0; j < k; j++) {
        fz_block *b = &c->slot[(first + j) % (unsigned)c->nslots];
        release(c, b, j);
        if (over_budget(c, size)) size %= 1024;
        took(c, b, strata_malloc(size), size, 0, K_MALLOC);
    }
}

/* Free a run of slots, every one or every second or third: empty pages, or fragmented ones. */
static void op_free_many(fz_ctx *c) {
    unsigned first = u8(c), k = 2 + u8(c) % 31, stride = 1 + u8(c) % 3;
    for (unsigned j = 0; j < k; j++) release(c, &c->slot[(first + j * stride) % (unsigned)c->nslots], j);
}

/* ---- between threads ---- */

typedef struct {
    pthread_mutex_t lock;
    fz_block b; /* a block another thread made, its seed with it */
} fz_box;
static fz_box boxes[FZ_BOXES];

static fz_box *box_of(fz_ctx *c) {
    fz_box *x = &boxes[u8(c) % FZ_BOXES];
    pthread_mutex_lock(&x->lock);
    return x;
}

/* Hand a block to whichever thread takes it. */
static void op_give(fz_ctx *c) {
    fz_block *b = slot_of(c);
    fz_box *x = box_of(c);
    if (b->p && !x->b.p) {
        x->b = *b;
        forget(c, b);
    }
    pthread_mutex_unlock(&x->lock);
}

/* Take a block another thread made: its contents must be whole here too. */
static void op_take(fz_ctx *c) {
    fz_block *b = slot_of(c);
    fz_box *x = box_of(c);
    if (x->b.p) {
        release(c, b, 0);
        verify(c, &x->b, "a thread took it");
        *b = x->b;
        c->live += b->known;
        memset(&x->b, 0, sizeof x->b);
    }
    pthread_mutex_unlock(&x->lock);
}

/* Free or resize another thread's block where it lies: a remote free, or a realloc that cannot
 * resize in place because the block's segment is not this thread's. */
static void op_box_free(fz_ctx *c) {
    fz_box *x = box_of(c);
    unsigned how = u8(c);
    if (x->b.p) {
        c->live += x->b.known; /* release and resize count the block as this thread's */
        if (how & 0x80) {
            resize(c, &x->b, fz_size(c), 0);
            c->live -= x->b.p ? x->b.known : 0;
        } else {
            release(c, &x->b, how);
        }
    }
    pthread_mutex_unlock(&x->lock);
}

/* ---- running a program ---- */

typedef void (*fz_op)(fz_ctx *);
static void op_posix_memalign(fz_ctx *c) { op_aligned(c, K_POSIX_MEMALIGN); }
static void op_aligned_alloc(fz_ctx *c) { op_aligned(c, K_ALIGNED_ALLOC); }
static void op_memalign(fz_ctx *c) { op_aligned(c, K_MEMALIGN); }
static void op_valloc(fz_ctx *c) { op_aligned(c, K_VALLOC); }
static void op_pvalloc(fz_ctx *c) { op_aligned(c, K_PVALLOC); }

static const fz_op ops[] = {
    op_malloc,   op_calloc,         op_realloc,       op_realloc_zero, op_reallocarray,
    op_free,     op_posix_memalign, op_aligned_alloc, op_memalign,     op_valloc,
    op_pvalloc,  op_usable,         op_absurd,        op_big,          op_check_all,
    op_trim,     op_alloc_many,     op_free_many,
    /* the threaded variant only */
    op_give,     op_take,           op_box_free,
};
#define FZ_OPS_ONE_THREAD 18
#define FZ_OPS_THREADED 21

static void run_program(fz_ctx *c, unsigned nops) {
    while (c->i < c->n) {
        c->op++;
        ops[u8(c) % nops](c);
    }
}

static void free_all(fz_ctx *c) {
    for (int j = 0; j < c->nslots; j++) release(c, &c->slot[j], (unsigned)j);
}

static pthread_barrier_t start;

static void *thread_main(void *arg) {
    fz_ctx *c = arg;
    pthread_barrier_wait(&start);
    run_program(c, FZ_OPS_THREADED);
    if (!c->leave) free_all(c); /* else the main thread frees them, after this thread's exit */
    return NULL;
}

void fz_run(const uint8_t *data, size_t size, int threaded) {
    if (!page_size) {
        page_size = (size_t)sysconf(_SC_PAGESIZE);
        for (int j = 0; j < FZ_BOXES; j++) pthread_mutex_init(&boxes[j].lock, NULL);
    }
    static fz_ctx ctx[FZ_MAX_THREADS];
    if (!threaded) {
        fz_ctx *c = &ctx[0];
        *c = (fz_ctx){.nslots = FZ_SLOTS, .d = data, .n = size};
        run_program(c, FZ_OPS_ONE_THREAD);
        c->op++;
        free_all(c);
        return;
    }
    /* header: bits 0-1 the threads (2 to 4), bits 4-7 which of them leave their blocks behind */
    unsigned head = size ? data[0] : 0, nthreads = 2 + (head & 3) % 3;
    const uint8_t *prog = size ? data + 1 : data;
    size_t len = size ? size - 1 : 0, slice = len / nthreads;
    pthread_t tid[FZ_MAX_THREADS];
    pthread_barrier_init(&start, NULL, nthreads);
    for (unsigned t = 0; t < nthreads; t++) {
        fz_ctx *c = &ctx[t];
        *c = (fz_ctx){.nslots = FZ_THREAD_SLOTS, .id = t + 1, .leave = head >> (4 + t) & 1,
                      .d = prog + t * slice, .n = t + 1 == nthreads ? len - t * slice : slice};
        if (pthread_create(&tid[t], NULL, thread_main, c) != 0) {
            perror("strata fuzz: pthread_create");
            abort();
        }
    }
    for (unsigned t = 0; t < nthreads; t++) pthread_join(tid[t], NULL);
    pthread_barrier_destroy(&start);
    /* the main thread frees what the threads left: blocks of heaps whose threads have exited */
    fz_ctx *m = &ctx[0];
    for (unsigned t = 0; t < nthreads; t++) {
        ctx[t].id = 0;
        ctx[t].op++;
        free_all(&ctx[t]);
    }
    for (int j = 0; j < FZ_BOXES; j++) {
        m->live += boxes[j].b.known;
        release(m, &boxes[j].b, (unsigned)j);
    }
}
