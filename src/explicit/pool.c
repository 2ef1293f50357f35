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
 */
#include <string.h>

#include "explicit.h"

#define POOL_MAGIC 0x4c4f4f5058545353ULL /* "SSTXPOOL" */
#define POOL_DEAD 0x444145444c4f4f50ULL
#define POOL_CHUNK_MIN ((size_t)16 << 10)
#define POOL_CHUNK_MAX ((size_t)1 << 20)
#define POOL_LARGE (POOL_CHUNK_MIN / 4) /* larger requests get a block of their own */

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
    uintptr_t cur, end;      /* the free part of the current chunk */
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
    bool debug;
};

static void check(strata_pool *p, const char *fn) {
    if (sx_likely(p && p->magic == POOL_MAGIC)) return;
    if (!p) sx_fatal("%s(): NULL pool", fn);
    if (p->magic == POOL_DEAD) sx_fatal("%s(): pool %p used after it was destroyed", fn, (void *)p);
    sx_fatal("%s(): %p is not a pool (destroyed?)", fn, (void *)p);
}

/* ---- memory for chunks and large blocks ---- */

static void *block_get(strata_pool *p, size_t size, size_t align) {
    if (p->debug) return sx_pool_debug_map(size);
    return sx_explicit_alloc(size, align);
}

static void block_put(strata_pool *p, sx_pchunk *c) {
    if (p->debug) sx_pool_debug_retire(c, c->size);
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
    if (p->chunks_last) p->chunks_last->next = c;
    else p->chunks = c;
    p->chunks_last = c;
    p->chunk_bytes += c->size;
    p->nchunks++;
    if (p->next_size < POOL_CHUNK_MAX) p->next_size *= 2;
    return true;
}

static void *large_alloc(strata_pool *p, size_t size, size_t align) {
    if (align < 16) align = 16;
    /* the header, then the block at the first aligned address after it */
    size_t room = p->debug && align > sx_os_page ? align + 16 : align > 16 ? align : 16;
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
    c->next = p->large;
    p->large = c;
    p->large_bytes += size;
    p->nlarge++;
    p->allocs++;
    p->requested += size;
    return (void *)sx_align_up((uintptr_t)c + 16, align);
}

static sx_noinline void *alloc_slow(strata_pool *p, size_t size, size_t align, const char *fn) {
    check(p, fn);
    if (size > POOL_LARGE || align > POOL_LARGE) return large_alloc(p, size, align);
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
        p->cur = (uintptr_t)c + sizeof(sx_pchunk);
        p->end = (uintptr_t)c + c->size;
        uintptr_t a = sx_align_up(p->cur, align);
        if (a <= p->end && size <= p->end - a) {
            p->cur = a + size;
            p->allocs++;
            p->requested += size;
            return (void *)a;
        }
    }
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
    free_list(p, p->large);
    p->large = NULL;
    p->large_bytes = p->nlarge = 0;
    p->allocs = p->requested = 0;
}

static void pool_free(strata_pool *p) {
    pool_clear(p);
    free_list(p, p->chunks);
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
