/*
 * pool.c — strata_pool: regions (memory pools) that are freed all at once.
 *
 * A pool hands out memory by moving a pointer through its current chunk: align, compare, add.
 * When the chunk is used up the next one is taken — a chunk kept from before the last reset, or a
 * new one twice the size of the last (16 KiB up to 1 MiB) — so a pool that is reset and filled
 * again reuses its memory without asking anyone. A request above POOL_LARGE (or aligned to more)
 * gets a block of its own, kept on a list and freed with the pool. Chunks and blocks come from
 * strata's core; with pool_debug=1 each is a mapping of its own (pooldebug.c).
 *
 * A pool has children (strata_pool_create(parent)) and cleanups. Reset and destroy destroy the
 * children first (the youngest first), then run the cleanups (the last registered first), then
 * give the memory back: destroy all of it and the pool itself; reset only the large blocks,
 * keeping the chunks (unless pool_debug=1, which retires them so that stale pointers fault).
 *
 * A destroyed pool's header goes back to the core, except with pool_debug=1: it is kept, marked
 * dead, with an empty chunk, so that any later call reaches the slow path and says so.
 *
 * Under memcheck (support/vgrind.h) a pool is one of memcheck's mempools: each block is described
 * as it is handed out, a chunk's memory is inaccessible around the blocks, 16 bytes nobody may
 * touch lie before and after each block (redzones: an overflow of one byte is reported even where
 * the next block would start, as past the block), and reset and destroy free every block at once. cur and end stay 0 then, so
 * that every allocation takes the slow path (the bump itself has no test for memcheck); the
 * cursor lives in vg_cur and vg_end. Memory given back to the core waits in a quarantine first.
 */
#include <string.h>

#include "explicit.h"

#define POOL_MAGIC 0x4c4f4f5058545353ULL /* "SSTXPOOL" */
#define POOL_DEAD 0x444145444c4f4f50ULL
#define POOL_CHUNK_MIN ((size_t)16 << 10)
#define POOL_CHUNK_MAX ((size_t)1 << 20)
#define POOL_LARGE (POOL_CHUNK_MIN / 4) /* larger requests get a block of their own */
#define POOL_VG_REDZONE 16                    /* under memcheck: before and after every block */
#define POOL_VG_QUARANTINE ((size_t)16 << 20) /* under memcheck: memory held before the core has it */

/* A chunk, or a large block: this header at its start. */
typedef struct sx_pchunk {
    struct sx_pchunk *next;
    size_t size; /* of the whole chunk or block */
} sx_pchunk;

typedef struct sx_pcleanup {
    struct sx_pcleanup *next;
    void (*fn)(void *);
    void *arg;
} sx_pcleanup;

struct strata_pool {
    uintptr_t cur, end;      /* the free part of the current chunk (under memcheck: 0, 0) */
    uint64_t magic;
    sx_pchunk *chunk;        /* the current chunk; NULL before the first */
    sx_pchunk *chunks;       /* every chunk, oldest first */
    sx_pchunk *chunks_last;
    sx_pchunk *large;
    strata_pool *parent, *children, *sib_next, *sib_prev;
    sx_pcleanup *cleanups;
    size_t next_size;        /* of the next new chunk */
    size_t allocs, requested, chunk_bytes, nchunks, large_bytes, nlarge, nchildren, ncleanups;
    size_t resets;
    uintptr_t vg_cur, vg_end; /* under memcheck: the free part of the current chunk */
    bool debug;
};

static void check(strata_pool *p, const char *fn) {
    if (sx_likely(p && p->magic == POOL_MAGIC)) return;
    if (!p) sx_fatal("%s(): NULL pool", fn);
    if (p->magic == POOL_DEAD) sx_fatal("%s(): pool %p used after it was destroyed", fn, (void *)p);
    sx_fatal("%s(): %p is not a pool (destroyed?)", fn, (void *)p);
}

/* ---- under memcheck: the quarantine ----
 * A reset pool's large blocks and a destroyed pool's chunks go back to strata's core, whose memory
 * memcheck takes for accessible: a stale pointer into them would read it unreported. Under
 * memcheck they wait here first, inaccessible, the oldest going on once they add up to more than
 * POOL_VG_QUARANTINE (memcheck holds malloc's freed blocks back the same way, --freelist-vol);
 * memcheck still knows their blocks as freed and names them in its reports. Their headers stay
 * accessible: the list goes through them. */
sx_lock_t sx_pool_quarantine_lock = SX_LOCK_INIT;
static sx_pchunk *held_first, *held_last;
static size_t held_bytes;

/* Back to the core, accessible again: the core reads and writes a freed block's first words. */
static size_t quarantine_leave(sx_pchunk *c) {
    size_t bytes = 0;
    while (c) {
        sx_pchunk *next = c->next;
        bytes += c->size;
        sx_vg_defined(c, c->size);
        sx_explicit_free(c);
        c = next;
    }
    return bytes;
}

static void quarantine(sx_pchunk *c) {
    sx_lock(&sx_pool_quarantine_lock);
    c->next = NULL;
    if (held_last) held_last->next = c;
    else held_first = c;
    held_last = c;
    held_bytes += c->size;
    sx_pchunk *out = NULL, *out_last = NULL;
    while (held_bytes > POOL_VG_QUARANTINE) {
        if (!out) out = held_first;
        out_last = held_first;
        held_bytes -= held_first->size;
        held_first = held_first->next;
    }
    if (out_last) out_last->next = NULL;
    if (!held_first) held_last = NULL;
    sx_unlock(&sx_pool_quarantine_lock);
    quarantine_leave(out);
}

size_t sx_pool_quarantine_flush(void) {
    sx_lock(&sx_pool_quarantine_lock);
    sx_pchunk *out = held_first;
    held_first = held_last = NULL;
    held_bytes = 0;
    sx_unlock(&sx_pool_quarantine_lock);
    return quarantine_leave(out);
}

/* ---- memory for chunks and large blocks ---- */

static void *block_get(strata_pool *p, size_t size, size_t align) {
    if (p->debug) return sx_pool_debug_map(size);
    return sx_explicit_alloc(size, align);
}

static void block_put(strata_pool *p, sx_pchunk *c) {
    if (p->debug) sx_pool_debug_retire(c, c->size);
    else if (sx_vg_memcheck) quarantine(c);
    else sx_explicit_free(c);
}

static void free_list(strata_pool *p, sx_pchunk *c) {
    while (c) {
        sx_pchunk *next = c->next;
        block_put(p, c);
        c = next;
    }
}

static bool chunk_new(strata_pool *p) {
    size_t size = p->next_size;
    sx_pchunk *c = block_get(p, size, 16);
    if (!c) return false;
    c->next = NULL;
    c->size = p->debug ? sx_align_up(size, sx_os_page) : size;
    sx_vg_noaccess(c + 1, c->size - sizeof *c); /* under memcheck: blocks are described one by one */
    if (p->chunks_last) p->chunks_last->next = c;
    else p->chunks = c;
    p->chunks_last = c;
    p->chunk_bytes += c->size;
    p->nchunks++;
    if (p->next_size < POOL_CHUNK_MAX) p->next_size *= 2;
    return true;
}

/* rz: bytes left before and after the block (redzones, under memcheck; a multiple of 16) */
static void *large_alloc(strata_pool *p, size_t size, size_t align, size_t rz) {
    if (align < 16) align = 16;
    /* the header (and a redzone), then the block at the first aligned address after it */
    size_t room = (p->debug && align > sx_os_page ? align + 16 : align > 16 ? align : 16 + rz) + rz;
    if (size > SIZE_MAX - room - sx_os_page) {
        errno = ENOMEM;
        return NULL;
    }
    sx_pchunk *c = block_get(p, size + room, align);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    c->size = p->debug ? sx_align_up(size + room, sx_os_page) : size + room;
    sx_vg_noaccess(c + 1, c->size - sizeof *c);
    c->next = p->large;
    p->large = c;
    p->large_bytes += size;
    p->nlarge++;
    p->allocs++;
    p->requested += size;
    return (void *)sx_align_up((uintptr_t)c + 16 + rz, align);
}

/* What the bump does not: a large block, or the next chunk. rz: bytes left before and after the
 * block (after the previous one's in a chunk). */
static void *carve(strata_pool *p, size_t size, size_t align, size_t rz) {
    if (size > POOL_LARGE || align > POOL_LARGE) return large_alloc(p, size, align, rz);
    for (;;) { /* the next chunk (kept, or new): a fresh chunk always has room for this */
        sx_pchunk *c = p->chunk ? p->chunk->next : p->chunks;
        if (!c) {
            if (!chunk_new(p)) {
                errno = ENOMEM;
                return NULL;
            }
            c = p->chunks_last;
        }
        p->chunk = c;
        p->cur = (uintptr_t)c + sizeof(sx_pchunk) + rz;
        p->end = (uintptr_t)c + c->size;
        uintptr_t a = sx_align_up(p->cur, align);
        if (a <= p->end && size + rz <= p->end - a) {
            p->cur = a + size + rz;
            p->allocs++;
            p->requested += size;
            return (void *)a;
        }
    }
}

/* Under memcheck every allocation comes here: the bump on vg_cur and vg_end, a redzone after the
 * block (the one before it is the previous block's, or left after the chunk's header), and the
 * block described. */
static void *vg_alloc(strata_pool *p, size_t size, size_t align) {
    p->cur = p->vg_cur;
    p->end = p->vg_end;
    uintptr_t a = sx_align_up(p->cur, align);
    void *q;
    if (size <= POOL_LARGE && align <= POOL_LARGE && a <= p->end && size + POOL_VG_REDZONE <= p->end - a) {
        p->cur = a + size + POOL_VG_REDZONE;
        p->allocs++;
        p->requested += size;
        q = (void *)a;
    } else {
        q = carve(p, size, align, POOL_VG_REDZONE);
    }
    p->vg_cur = p->cur;
    p->vg_end = p->end;
    p->cur = p->end = 0;
    if (q) sx_vg_pool_alloc(p, q, size);
    return q;
}

static sx_noinline void *alloc_slow(strata_pool *p, size_t size, size_t align, const char *fn) {
    check(p, fn);
    if (sx_vg_memcheck) return vg_alloc(p, size, align);
    return carve(p, size, align, 0);
}

/* The bump: what every allocation does when the current chunk has room. */
static inline __attribute__((always_inline)) void *bump(strata_pool *p, size_t size, size_t align,
                                                        const char *fn) {
    uintptr_t a = sx_align_up(p->cur, align);
    if (sx_likely(a <= p->end && size <= p->end - a)) {
        p->cur = a + size;
        p->allocs++;
        p->requested += size;
        return (void *)a;
    }
    return alloc_slow(p, size, align, fn);
}

/* ---- the public interface ---- */

sx_public strata_pool *strata_pool_create(strata_pool *parent) {
    if (parent) check(parent, "strata_pool_create");
    sx_process_init();
    strata_pool *p = sx_explicit_alloc(sizeof *p, 64);
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->magic = POOL_MAGIC;
    p->next_size = POOL_CHUNK_MIN;
    p->debug = sx_opt.pool_debug;
    p->parent = parent;
    sx_vg_pool_create(p, POOL_VG_REDZONE);
    if (parent) {
        SX_LIST_PUSH(parent->children, p, sib_next, sib_prev);
        parent->nchildren++;
    }
    return p;
}

sx_public void *strata_pool_alloc(strata_pool *pool, size_t size) {
    return bump(pool, size + (size == 0), 16, "strata_pool_alloc");
}

sx_public void *strata_pool_aligned_alloc(strata_pool *pool, size_t alignment, size_t size) {
    if (!sx_is_pow2(alignment)) {
        check(pool, "strata_pool_aligned_alloc");
        errno = EINVAL;
        return NULL;
    }
    return bump(pool, size + (size == 0), alignment, "strata_pool_aligned_alloc");
}

sx_public void *strata_pool_calloc(strata_pool *pool, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        check(pool, "strata_pool_calloc");
        errno = ENOMEM;
        return NULL;
    }
    void *q = bump(pool, total + (total == 0), 16, "strata_pool_calloc");
    if (q) memset(q, 0, total);
    return q;
}

sx_public void *strata_pool_memdup(strata_pool *pool, const void *src, size_t n) {
    void *q = bump(pool, n + (n == 0), 1, "strata_pool_memdup");
    if (q && n) memcpy(q, src, n);
    return q;
}

sx_public char *strata_pool_strndup(strata_pool *pool, const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *q = bump(pool, len + 1, 1, "strata_pool_strndup");
    if (q) {
        memcpy(q, s, len);
        q[len] = '\0';
    }
    return q;
}

sx_public char *strata_pool_strdup(strata_pool *pool, const char *s) {
    size_t len = strlen(s);
    char *q = bump(pool, len + 1, 1, "strata_pool_strdup");
    if (q) memcpy(q, s, len + 1);
    return q;
}

sx_public int strata_pool_cleanup(strata_pool *pool, void (*fn)(void *), void *arg) {
    sx_pcleanup *c = bump(pool, sizeof *c, 16, "strata_pool_cleanup");
    if (!c) return ENOMEM;
    c->fn = fn;
    c->arg = arg;
    c->next = pool->cleanups;
    pool->cleanups = c;
    pool->ncleanups++;
    /* a cleanup is not an allocation the program made */
    pool->allocs--;
    pool->requested -= sizeof *c;
    return 0;
}

static void pool_free(strata_pool *p);

/* Children, then cleanups, then the large blocks: what reset and destroy both do. */
static void pool_clear(strata_pool *p) {
    while (p->children) pool_free(p->children);
    while (p->cleanups) { /* a cleanup may register another: take each off the list first */
        sx_pcleanup *c = p->cleanups;
        p->cleanups = c->next;
        p->ncleanups--;
        c->fn(c->arg);
    }
    sx_vg_pool_free_all(p); /* after the cleanups (their records are blocks of the pool) */
    free_list(p, p->large);
    p->large = NULL;
    p->large_bytes = p->nlarge = 0;
    p->allocs = p->requested = 0;
}

static void pool_free(strata_pool *p) {
    pool_clear(p);
    free_list(p, p->chunks);
    sx_vg_pool_destroy(p);
    if (p->parent) {
        strata_pool *parent = p->parent;
        SX_LIST_REMOVE(parent->children, p, sib_next, sib_prev);
        parent->nchildren--;
    }
    if (p->debug) { /* kept, dead: every later call takes the slow path and aborts */
        memset(p, 0, sizeof *p);
        p->magic = POOL_DEAD;
        return;
    }
    p->magic = 0;
    sx_explicit_free(p);
}

sx_public void strata_pool_reset(strata_pool *pool) {
    check(pool, "strata_pool_reset");
    pool_clear(pool);
    if (pool->debug) { /* fresh chunks from now on: stale pointers into the old ones fault */
        free_list(pool, pool->chunks);
        pool->chunks = pool->chunks_last = NULL;
        pool->chunk_bytes = pool->nchunks = 0;
        pool->next_size = POOL_CHUNK_MIN;
    }
    pool->chunk = NULL;
    pool->cur = pool->end = 0;
    pool->vg_cur = pool->vg_end = 0;
    pool->resets++;
}

sx_public void strata_pool_destroy(strata_pool *pool) {
    if (!pool) return;
    check(pool, "strata_pool_destroy");
    pool_free(pool);
}

sx_public void strata_pool_get_stats(strata_pool *pool, struct strata_pool_stats *out) {
    check(pool, "strata_pool_get_stats");
    memset(out, 0, sizeof *out);
    out->allocs = pool->allocs;
    out->requested_bytes = pool->requested;
    out->chunk_bytes = pool->chunk_bytes;
    out->chunks = pool->nchunks;
    out->large_bytes = pool->large_bytes;
    out->large_count = pool->nlarge;
    out->children = pool->nchildren;
    out->cleanups = pool->ncleanups;
    out->resets = pool->resets;
    out->debug = pool->debug;
}
