/*
 * explicit.h — the explicit allocators' shared declarations: pools (pool.c, pooldebug.c), object
 * caches (cache.c: slabs and the depot; magazine.c: per-thread magazines and the entry points),
 * the buddy page allocator (pages.c) and the map from addresses to its top-level blocks
 * (pagemap.c); registry.c keeps the list of live caches and page allocators for fork.
 *
 * This layer sits beside api/: it takes small memory from strata's core (sx_alloc, sx_free_inline)
 * and big memory from the OS layer, never from another malloc.
 */
#ifndef STRATA_EXPLICIT_H
#define STRATA_EXPLICIT_H

#include "../api/api.h"
#include "strata.h"

#pragma GCC visibility push(hidden) /* the library's own (see support.h) */

/* Memory for the layer's own structures and pool chunks: strata's core, counted like any block. */
static inline void *sx_explicit_alloc(size_t size, size_t align) {
    return align <= 16 ? sx_malloc_inline(size) : sx_alloc(size, align, false);
}
static inline void sx_explicit_free(void *p) { sx_free_inline(p); }

/* ---- pages.c: the buddy allocator ---- */
/* A top-level block: 2^max_order pages mapped aligned to their size, with one byte per page
 * saying whether a block starts there, free or allocated, and its order. */
enum { SX_HEAD_FREE = 0x40, SX_HEAD_USED = 0x80, SX_HEAD_ORDER = 0x3f };
typedef struct sx_pages_top {
    strata_pages *owner;
    uintptr_t base;
    struct sx_pages_top *next, *prev;
    uint8_t heads[]; /* one per page */
} sx_pages_top;

/* A free block's first bytes: its place in the free list of its order. */
typedef struct sx_pages_free_block {
    struct sx_pages_free_block *next, *prev;
} sx_pages_free_block;

struct strata_pages {
    uint64_t magic;
    sx_lock_t lock;
    unsigned max_order, flags, page_shift;
    uint32_t nonempty;                 /* bit o: the free list of order o has a block */
    sx_pages_free_block *free[STRATA_PAGES_MAX_ORDER + 1]; /* free blocks by order */
    size_t nfree[STRATA_PAGES_MAX_ORDER + 1];
    sx_pages_top *tops;
    size_t ntops, spare;               /* top-level blocks; of them, wholly free ones kept */
    size_t in_use_pages;
    unsigned long long allocs, frees, splits, merges, maps, unmaps;
    strata_pages *reg_next, *reg_prev; /* registry.c */
};
#define SX_PAGES_MAGIC 0x5345474150585453ULL /* "STXPAGES" */

/* The page allocator slabs come from: 4 MiB top-level blocks, freed slabs decommitted. */
extern strata_pages sx_slab_pages;
void sx_pages_static_init(void); /* the process-wide one and sx_slab_pages (once) */
void *sx_pages_alloc(strata_pages *pa, unsigned order);
void sx_pages_free(strata_pages *pa, void *p, unsigned order, const char *fn);

/* ---- pagemap.c: which top-level block an address lies in (lock-free to read) ---- */
/* Point every 4 MiB of [base, base + size) at top (NULL: forget them); false if no memory. */
bool sx_pagemap_set(uintptr_t base, size_t size, sx_pages_top *top);
#define SX_PAGEMAP_LEAF_BITS 12
#define SX_PAGEMAP_LEAF ((size_t)1 << SX_PAGEMAP_LEAF_BITS)
typedef struct {
    _Atomic(sx_pages_top *) top[SX_PAGEMAP_LEAF];
} sx_pagemap_leaf;
extern _Atomic(sx_pagemap_leaf *) sx_pagemap_root[SX_SEGMAP_BITS >> SX_PAGEMAP_LEAF_BITS];
/* One bit per 4 MiB of address space: a top-level block of sx_slab_pages starts there. The check
 * strata_cache_free makes on every pointer before reading its slab header: one load. */
extern _Atomic uint64_t sx_slabmap[SX_SEGMAP_BITS / 64];
void sx_slabmap_mark(uintptr_t base, bool on);
static inline bool sx_slabmap_contains(uintptr_t addr) {
    return sx_bitmap_test(sx_slabmap, SX_SEGMAP_BITS, addr >> SX_SEG_SHIFT);
}
/* The top-level block whose 4 MiB addr lies in, if any (the caller checks addr is inside it). */
static inline sx_pages_top *sx_pagemap_get(uintptr_t addr) {
    size_t g = addr >> SX_SEG_SHIFT;
    if (sx_unlikely(g >= SX_SEGMAP_BITS)) return NULL;
    sx_pagemap_leaf *l = atomic_load_explicit(&sx_pagemap_root[g >> SX_PAGEMAP_LEAF_BITS], memory_order_acquire);
    if (sx_unlikely(!l)) return NULL;
    return atomic_load_explicit(&l->top[g & (SX_PAGEMAP_LEAF - 1)], memory_order_acquire);
}

/* ---- cache.c, magazine.c: object caches ---- */
/* A free object's bookkeeping: at its start, or after it when the cache has a constructor (whose
 * work must survive free). key = sx_secret ^ object while it is free: a second free sees it. */
typedef struct sx_cobj {
    struct sx_cobj *next;
    uintptr_t key;
} sx_cobj;

/* A slab: 2^order pages, this header first, then the objects. */
typedef struct sx_slab {
    strata_cache *cache;
    struct sx_slab *next, *prev;
    sx_cobj *free;      /* freed objects (their bookkeeping words) */
    unsigned inuse;     /* objects out of the slab (handed out, or in magazines) */
    unsigned carved;    /* objects constructed so far, from the front */
    unsigned list;      /* SX_SLABS_* */
} sx_slab;
enum { SX_SLABS_PARTIAL, SX_SLABS_EMPTY, SX_SLABS_FULL, SX_SLAB_LISTS };

/* A magazine: a stack of free objects. */
typedef struct sx_mag {
    struct sx_mag *next;
    unsigned count;
    void *objs[];
} sx_mag;

#define SX_CACHE_MAGIC 0x4548434143585453ULL /* "STXCACHE" */
#define SX_CACHE_DEAD 0x44414544ULL
#define SX_CACHE_IDS 1024 /* caches with magazines at a time; more work through the lock */

struct strata_cache {
    uint64_t magic;
    unsigned id;              /* index of its magazines in every thread's slots */
    unsigned mag_size;        /* objects per magazine */
    uintptr_t slab_mask;      /* ~(slab size - 1) */
    size_t first;             /* offset of the first object in a slab */
    size_t stride, meta;      /* bytes per object; offset of its sx_cobj */
    size_t capacity;          /* objects per slab */
    uint64_t inv;             /* stride = odd << shift, inv * odd = 1 mod 2^64: the index check */
    unsigned shift, slab_order;
    void (*ctor)(void *), (*dtor)(void *);
    size_t size, align;
    char name[48];
    sx_lock_t lock;           /* the slabs and the depot */
    sx_slab *slabs[SX_SLAB_LISTS];
    size_t nslabs[SX_SLAB_LISTS];
    sx_mag *depot_full, *depot_empty;
    size_t depot_objects;
    /* counts of calls made without magazines, and of threads that exited (folded in) */
    unsigned long long allocs, frees, alloc_hits, free_hits;
    unsigned long long constructed, destroyed, slabs_released;
    strata_cache *reg_next, *reg_prev; /* registry.c */
};

/* Is obj the start of an object slot of its slab? One multiply and a rotation: an offset that is
 * k * stride (k < capacity) maps to k; any other offset maps above capacity. */
static inline bool sx_cache_index_ok(const strata_cache *c, uintptr_t slab, const void *obj) {
    uint64_t off = (uint64_t)((uintptr_t)obj - slab - c->first) * c->inv;
    uint64_t k = (off >> c->shift) | (off << ((64 - c->shift) & 63));
    return k < c->capacity;
}
static inline sx_cobj *sx_cobj_of(const strata_cache *c, void *obj) {
    return (sx_cobj *)((uint8_t *)obj + c->meta);
}
static inline void *sx_obj_of(const strata_cache *c, sx_cobj *m) {
    return (uint8_t *)m - c->meta;
}
/* Under memcheck a free object, its bookkeeping included, is nobody's, and the bytes of a slot past
 * its object always are: strata opens the bookkeeping around each of its own reads and writes of it
 * (open before, closed after; nothing outside memcheck). */
static inline sx_cobj *sx_cobj_open(const strata_cache *c, void *obj) {
    sx_cobj *m = sx_cobj_of(c, obj);
    sx_vg_defined(m, sizeof *m);
    return m;
}
static inline void sx_cobj_close(sx_cobj *m) { sx_vg_noaccess(m, sizeof *m); }
/* cache lock held: n objects from the slabs into out[] (marked free); fewer if memory ran out */
unsigned sx_cache_take(strata_cache *c, void **out, unsigned n);
void sx_cache_put(strata_cache *c, void *obj);          /* cache lock held: back to its slab */
void sx_cache_put_mag(strata_cache *c, sx_mag *m);      /* cache lock held: all of it */
sx_mag *sx_mag_new(strata_cache *c);                    /* empty; NULL if no memory */
_Noreturn void sx_cache_bad_free(strata_cache *c, void *obj);
/* magazine.c: the magazines threads hold for cache c go back to it (registry lock held) */
void sx_mags_reclaim(strata_cache *c, unsigned long long counts[4]);
void sx_mags_flush_self(strata_cache *c); /* this thread's, for shrink */
void sx_mags_count(const strata_cache *c, unsigned long long counts[4], size_t *cached);

/* ---- registry.c: live caches and page allocators; the ids of caches; fork ---- */
extern sx_lock_t sx_x_registry_lock; /* before any cache lock */
void sx_registry_cache_add(strata_cache *c);    /* assigns c->id */
void sx_registry_cache_remove(strata_cache *c); /* registry lock held */
void sx_registry_pages_add(strata_pages *pa);
void sx_registry_pages_remove(strata_pages *pa);

/* ---- pool.c: under memcheck, memory pools give back waits inaccessible (the quarantine) ---- */
extern sx_lock_t sx_pool_quarantine_lock;
size_t sx_pool_quarantine_flush(void); /* all of it back to the core; bytes */

/* ---- pooldebug.c: pool_debug=1 ---- */
extern sx_lock_t sx_pool_debug_lock;
void *sx_pool_debug_map(size_t size);            /* a chunk of its own mapping */
void sx_pool_debug_retire(void *p, size_t size); /* make it inaccessible, for a while */
/* The kernel refused memory: retired pool mappings go, then all the core keeps (sx_reclaim). */
size_t sx_explicit_reclaim(void);

#pragma GCC visibility pop

#endif
