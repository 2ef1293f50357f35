/*
 * strata.h — the public interface of libstrata.
 *
 * libstrata replaces the C library's malloc: preload it (LD_PRELOAD=libstrata.so) or link with
 * -lstrata and every malloc, free, calloc, realloc and aligned allocation in the process is served
 * by strata. Programs that want strata's allocator without replacing the process's malloc link with
 * -lstrata-api instead and call the strata_ functions declared here; those have exactly the
 * semantics of their glibc namesakes.
 *
 * Options are read once, from the environment variable STRATA_OPTIONS, for example
 *     STRATA_OPTIONS=mmap_threshold=256k,brk=0,verbose=1
 * `strata options` lists them with their defaults.
 */
#ifndef STRATA_H
#define STRATA_H

#include <stddef.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h> /* struct mallinfo, struct mallinfo2 */
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_VERSION_MAJOR 0
#define STRATA_VERSION_MINOR 1
#define STRATA_VERSION_PATCH 0
#define STRATA_VERSION_STRING "0.1.0"

/* The malloc family, under strata's own names. */
void *strata_malloc(size_t size);
void strata_free(void *ptr);
void *strata_calloc(size_t count, size_t size);
void *strata_realloc(void *ptr, size_t size);
void *strata_reallocarray(void *ptr, size_t count, size_t size);
int strata_posix_memalign(void **out, size_t alignment, size_t size);
void *strata_aligned_alloc(size_t alignment, size_t size);
void *strata_memalign(size_t alignment, size_t size);
void *strata_valloc(size_t size);
void *strata_pvalloc(size_t size);
size_t strata_malloc_usable_size(void *ptr);
void strata_cfree(void *ptr); /* glibc's obsolete alias of free */
void strata_free_sized(void *ptr, size_t size);                           /* C23 */
void strata_free_aligned_sized(void *ptr, size_t alignment, size_t size); /* C23 */

/* glibc's tuning and introspection calls (see mallopt(3), mallinfo2(3), malloc_trim(3),
 * malloc_stats(3), malloc_info(3)). The parameter numbers are glibc's M_* constants. */
int strata_mallopt(int param, int value);
int strata_malloc_trim(size_t pad);
void strata_malloc_stats(void);
int strata_malloc_info(int options, FILE *stream);
#ifdef __GLIBC__
struct mallinfo2 strata_mallinfo2(void);
struct mallinfo strata_mallinfo(void); /* int fields: saturate at INT_MAX */
#endif

/* A snapshot of the allocator's state, in bytes unless named otherwise. */
struct strata_stats {
    size_t heap_bytes;      /* program break memory held in the [heap] region */
    size_t mapped_bytes;    /* memory held in mmap'd segments */
    size_t huge_bytes;      /* memory in blocks that have their own mapping */
    size_t huge_count;      /* number of such blocks */
    size_t in_use_bytes;    /* bytes in blocks handed out and not yet freed */
    size_t free_bytes;      /* bytes held by strata but not handed out */
    size_t segments;        /* 4 MiB segments in use (brk and mmap) */
    size_t cached_segments; /* empty segments kept for reuse */
    size_t heaps;           /* thread heaps ever created (reused by new threads) */
    size_t mmap_threshold;  /* current threshold for own-mapping blocks (adapts upward) */
    size_t trim_threshold;  /* free top of [heap] above which the break is lowered */
    size_t brk_calls, mmap_calls, munmap_calls, mremap_calls, madvise_calls; /* system calls */
};
void strata_get_stats(struct strata_stats *out);

/* ==== Explicit allocators ====
 *
 * Three allocators a program uses by name, beside malloc: pools (regions freed all at once),
 * object caches (slabs of fixed-size objects, as the kernel's kmem_cache) and a buddy page
 * allocator (blocks of 2^order pages, as alloc_pages). Their memory comes from strata's core or
 * straight from the kernel, never from another malloc. Misuse that can be detected (a double
 * free, a pointer from elsewhere, a cache destroyed with objects still out, a pool used after it
 * was destroyed with pool_debug=1) prints one line starting "strata:" and aborts; out of memory
 * returns NULL with errno ENOMEM.
 */

/* ---- strata_pool: a region, freed all at once ----
 * Allocation bumps a pointer through chunks taken from strata's core (16 KiB, doubling to 1 MiB);
 * a request too big for a chunk gets a block of its own. Nothing is freed alone: strata_pool_reset
 * runs the cleanups, destroys the child pools and makes all the memory available again (the
 * chunks are kept for reuse); strata_pool_destroy does the same and frees the pool. A pool is not
 * thread-safe: one thread at a time (child pools are separate pools).
 * With the option pool_debug=1 (the default of the debug build) the memory of a destroyed or reset
 * pool is made inaccessible (a later access faults) and a destroyed pool is never reused, so any
 * call on it aborts with "strata: strata_pool_...(): pool 0x... used after it was destroyed". */
typedef struct strata_pool strata_pool;
strata_pool *strata_pool_create(strata_pool *parent); /* parent NULL: a top-level pool */
void *strata_pool_alloc(strata_pool *pool, size_t size); /* 16-byte aligned; size 0: unique */
void *strata_pool_calloc(strata_pool *pool, size_t count, size_t size);
void *strata_pool_aligned_alloc(strata_pool *pool, size_t alignment, size_t size); /* power of 2 */
char *strata_pool_strdup(strata_pool *pool, const char *s);
char *strata_pool_strndup(strata_pool *pool, const char *s, size_t n);
void *strata_pool_memdup(strata_pool *pool, const void *p, size_t n);
/* Run fn(arg) when the pool is reset or destroyed, the last registered first. 0, or ENOMEM. */
int strata_pool_cleanup(strata_pool *pool, void (*fn)(void *arg), void *arg);
void strata_pool_reset(strata_pool *pool);
void strata_pool_destroy(strata_pool *pool); /* children first, then cleanups, then memory */
struct strata_pool_stats {
    size_t allocs;          /* allocations since creation or the last reset */
    size_t requested_bytes; /* bytes they asked for */
    size_t chunk_bytes;     /* bytes of the chunks the pool holds (bump memory) */
    size_t chunks;
    size_t large_bytes;     /* bytes of requests too big for a chunk, each a block of its own */
    size_t large_count;
    size_t children;        /* live child pools */
    size_t cleanups;        /* registered cleanups */
    size_t resets;
    int debug;              /* pool_debug=1 */
};
void strata_pool_get_stats(strata_pool *pool, struct strata_pool_stats *out);

/* ---- strata_cache: a cache of fixed-size objects (slab allocator) ----
 * Objects live in slabs (64 KiB, or bigger to hold at least 8 objects) of pages from a strata
 * buddy allocator. ctor runs once on each object, when it is first carved from a slab; an object
 * keeps its constructed state across free and alloc (free must leave it constructed, as with
 * kmem_cache); dtor runs on each when its slab goes back to the system (strata_cache_shrink,
 * strata_cache_destroy). Each thread keeps small arrays of free objects per cache (magazines):
 * alloc and free take no lock until a magazine runs empty or full, then exchange it with the
 * cache's depot. Any thread may free any object of the cache. A thread's magazines go back to the
 * depot when it exits. ctor and dtor must not use the same cache. size: 1 to 512 KiB; align: 0
 * (8) or a power of two up to 4096. */
typedef struct strata_cache strata_cache;
strata_cache *strata_cache_create(const char *name, size_t size, size_t align,
                                  void (*ctor)(void *obj), void (*dtor)(void *obj));
void *strata_cache_alloc(strata_cache *cache);
void strata_cache_free(strata_cache *cache, void *obj); /* obj NULL: nothing */
/* Give the depot's and this thread's magazines back to their slabs, then every empty slab back to
 * the system (its objects destroyed). Returns the bytes released. Other threads' magazines stay. */
size_t strata_cache_shrink(strata_cache *cache);
/* Every object must have been freed (abort otherwise, naming one); no thread may use the cache
 * during or after the call. */
void strata_cache_destroy(strata_cache *cache);
struct strata_cache_stats {
    const char *name;
    size_t object_size;      /* as created */
    size_t stride;           /* bytes each object takes in a slab */
    size_t slab_bytes;       /* size of one slab */
    size_t objects_per_slab;
    size_t in_use;           /* objects allocated and not freed */
    size_t cached;           /* free objects in magazines (the depot's and every thread's) */
    size_t slabs, empty_slabs, full_slabs;
    unsigned long long allocs, frees;
    unsigned long long alloc_hits, free_hits; /* served by the thread's magazines, no lock */
    unsigned long long constructed, destroyed; /* ctor and dtor calls (objects carved, released) */
    unsigned long long slabs_released;         /* slabs given back to the system */
};
void strata_cache_get_stats(strata_cache *cache, struct strata_cache_stats *out);

/* ---- strata_pages: a buddy page allocator ----
 * Blocks of 2^order pages, aligned to their size, cut from top-level blocks of 2^max_order pages
 * mapped aligned to their size. A block is split in halves down to the order asked for; a freed
 * block is merged with its buddy (the half it was split from) while that is free. Free blocks are
 * kept per order. A top-level block that becomes wholly free is unmapped (STRATA_PAGES_KEEP keeps
 * one mapped for reuse; strata_pages_trim unmaps it). Thread-safe (one lock per allocator).
 * The process-wide allocator, pages = NULL, has max_order 10 (4 MiB with 4 KiB pages) and keeps
 * one free top-level block. */
#define STRATA_PAGES_MAX_ORDER 20
#define STRATA_PAGES_KEEP 1u     /* keep one wholly free top-level block mapped */
#define STRATA_PAGES_DECOMMIT 2u /* give a freed block's pages to the kernel at once (madvise) */
typedef struct strata_pages strata_pages;
strata_pages *strata_pages_create(unsigned max_order, unsigned flags); /* NULL + EINVAL/ENOMEM */
/* A block of 2^order pages aligned to its size; NULL with EINVAL above max_order, ENOMEM. */
void *strata_pages_alloc(strata_pages *pages, unsigned order);
/* order must be the one the block was allocated with (abort otherwise). p NULL: nothing. */
void strata_pages_free(strata_pages *pages, void *p, unsigned order);
size_t strata_pages_trim(strata_pages *pages); /* unmap kept free top-level blocks; bytes */
/* Every block must have been freed (abort otherwise, naming one). Not for pages = NULL. */
void strata_pages_destroy(strata_pages *pages);
struct strata_pages_stats {
    size_t page_size;
    unsigned max_order;
    size_t top_blocks;   /* top-level blocks mapped */
    size_t mapped_bytes;
    size_t in_use_bytes; /* in blocks handed out */
    size_t free_bytes;
    size_t free_blocks[STRATA_PAGES_MAX_ORDER + 1]; /* free blocks of each order */
    unsigned long long allocs, frees, splits, merges, maps, unmaps;
};
void strata_pages_get_stats(strata_pages *pages, struct strata_pages_stats *out);

/* The version of the loaded library, "MAJOR.MINOR.PATCH". */
const char *strata_version(void);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_H */
