/*
 * override.h — the glibc allocation symbols, as aliases of strata's functions (included at the end
 * of api.c in libstrata builds; libstrata-api leaves the process's malloc alone).
 *
 * Every allocation function glibc exports is here, including the __libc_ names some programs and
 * libraries call directly: if any were left to glibc, a glibc block could reach strata's free, or
 * a strata block glibc's (jemalloc's Debian build crashes on pvalloc + malloc_usable_size for that
 * reason). C++ operator new and delete call malloc and free, so they come here too.
 */
#ifndef STRATA_OVERRIDE_H
#define STRATA_OVERRIDE_H

#define SX_ALIAS(name, target) \
    extern __typeof(target) name __attribute__((alias(#target), visibility("default")));

void cfree(void *ptr);
void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);
void *__libc_malloc(size_t);
void __libc_free(void *);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_reallocarray(void *, size_t, size_t);
void *__libc_memalign(size_t, size_t);
void *__libc_valloc(size_t);
void *__libc_pvalloc(size_t);
int __libc_mallopt(int, int);
struct mallinfo __libc_mallinfo(void);
int __posix_memalign(void **, size_t, size_t);

SX_ALIAS(malloc, strata_malloc)
SX_ALIAS(free, strata_free)
SX_ALIAS(calloc, strata_calloc)
SX_ALIAS(realloc, strata_realloc)
SX_ALIAS(reallocarray, strata_reallocarray)
SX_ALIAS(posix_memalign, strata_posix_memalign)
SX_ALIAS(aligned_alloc, strata_aligned_alloc)
SX_ALIAS(memalign, strata_memalign)
SX_ALIAS(valloc, strata_valloc)
SX_ALIAS(pvalloc, strata_pvalloc)
SX_ALIAS(malloc_usable_size, strata_malloc_usable_size)
SX_ALIAS(cfree, strata_cfree)
SX_ALIAS(free_sized, strata_free_sized)
SX_ALIAS(free_aligned_sized, strata_free_aligned_sized)
SX_ALIAS(mallopt, strata_mallopt)
SX_ALIAS(mallinfo, strata_mallinfo)
SX_ALIAS(mallinfo2, strata_mallinfo2)
SX_ALIAS(malloc_trim, strata_malloc_trim)
SX_ALIAS(malloc_stats, strata_malloc_stats)
SX_ALIAS(malloc_info, strata_malloc_info)

/* C++'s sized operator delete (and delete[]): libstdc++'s would call free and drop the size;
 * here secure mode checks it against the size asked for (new T[n] given to delete). */
void _ZdlPvm(void *ptr, size_t size);
void _ZdaPvm(void *ptr, size_t size);
static void sized_delete(void *ptr, size_t size) {
#ifndef STRATA_DIAG
    if (sx_unlikely(sx_secure_on)) {
        sx_secure_free(ptr, "operator delete", size, true);
        return;
    }
#endif
    SX_FREE(ptr);
}
SX_ALIAS(_ZdlPvm, sized_delete)
SX_ALIAS(_ZdaPvm, sized_delete)

SX_ALIAS(__libc_malloc, strata_malloc)
SX_ALIAS(__libc_free, strata_free)
SX_ALIAS(__libc_calloc, strata_calloc)
SX_ALIAS(__libc_realloc, strata_realloc)
SX_ALIAS(__libc_reallocarray, strata_reallocarray)
SX_ALIAS(__libc_memalign, strata_memalign)
SX_ALIAS(__libc_valloc, strata_valloc)
SX_ALIAS(__libc_pvalloc, strata_pvalloc)
SX_ALIAS(__libc_mallopt, strata_mallopt)
SX_ALIAS(__libc_mallinfo, strata_mallinfo)
SX_ALIAS(__posix_memalign, strata_posix_memalign)

#endif
