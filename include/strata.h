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

/* The version of the loaded library, "MAJOR.MINOR.PATCH". */
const char *strata_version(void);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_H */
