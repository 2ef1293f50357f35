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

/* ---- C++ operator new and delete ----
 * libstdc++'s call malloc and free: two more calls per pair, through the PLT. Here they are the
 * fast paths themselves. Failure keeps C++'s semantics: the next definition in the process
 * (libstdc++'s) is called, which runs the new_handler loop around malloc (strata's again) and
 * throws std::bad_alloc, or returns NULL for the nothrow forms. The sized deletes let secure mode
 * check the size given against the size asked for (new T[n] given to delete). libstrata-diag.so
 * leaves them to libstdc++ (its stacks start at malloc). */
#ifndef SX_ENTRY_NO_CXX /* diag/entry.c */
#include <dlfcn.h>

/* The mangled names, declared for the aliases below. */
void *_Znwm(size_t);
void *_Znam(size_t);
void *_ZnwmRKSt9nothrow_t(size_t, const void *);
void *_ZnamRKSt9nothrow_t(size_t, const void *);
void *_ZnwmSt11align_val_t(size_t, size_t);
void *_ZnamSt11align_val_t(size_t, size_t);
void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t, size_t, const void *);
void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t, size_t, const void *);
void _ZdlPv(void *);
void _ZdaPv(void *);
void _ZdlPvm(void *, size_t);
void _ZdaPvm(void *, size_t);
void _ZdlPvRKSt9nothrow_t(void *, const void *);
void _ZdaPvRKSt9nothrow_t(void *, const void *);
void _ZdlPvSt11align_val_t(void *, size_t);
void _ZdaPvSt11align_val_t(void *, size_t);
void _ZdlPvmSt11align_val_t(void *, size_t, size_t);
void _ZdaPvmSt11align_val_t(void *, size_t, size_t);
void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *, size_t, const void *);
void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *, size_t, const void *);

/* The next definition of `name` (libstdc++'s), which handles failure as C++ requires. */
static sx_cold void *next_new(const char *name, void *self) {
    void *f = dlsym(RTLD_NEXT, name);
    if (!f || f == self) sx_fatal("operator new: out of memory, and no C++ runtime to report it (%s)", name);
    return f;
}

static void *cxx_new(size_t size) {
    void *p = SX_MALLOC(size);
    if (sx_likely(p != NULL)) return p;
    return ((void *(*)(size_t))next_new("_Znwm", (void *)_Znwm))(size);
}
static void *cxx_new_array(size_t size) {
    void *p = SX_MALLOC(size);
    if (sx_likely(p != NULL)) return p;
    return ((void *(*)(size_t))next_new("_Znam", (void *)_Znam))(size);
}
static void *cxx_new_nothrow(size_t size, const void *nt) {
    void *p = SX_MALLOC(size);
    if (sx_likely(p != NULL)) return p;
    return ((void *(*)(size_t, const void *))next_new("_ZnwmRKSt9nothrow_t", (void *)_ZnwmRKSt9nothrow_t))(size, nt);
}
static void *cxx_new_array_nothrow(size_t size, const void *nt) {
    void *p = SX_MALLOC(size);
    if (sx_likely(p != NULL)) return p;
    return ((void *(*)(size_t, const void *))next_new("_ZnamRKSt9nothrow_t", (void *)_ZnamRKSt9nothrow_t))(size, nt);
}
static void *cxx_new_aligned(size_t size, size_t align) {
    void *p;
    if (sx_likely(sx_is_pow2(align) && SX_MEMALIGN(&p, align, size) == 0)) return p;
    return ((void *(*)(size_t, size_t))next_new("_ZnwmSt11align_val_t", (void *)_ZnwmSt11align_val_t))(size, align);
}
static void *cxx_new_array_aligned(size_t size, size_t align) {
    void *p;
    if (sx_likely(sx_is_pow2(align) && SX_MEMALIGN(&p, align, size) == 0)) return p;
    return ((void *(*)(size_t, size_t))next_new("_ZnamSt11align_val_t", (void *)_ZnamSt11align_val_t))(size, align);
}
static void *cxx_new_aligned_nothrow(size_t size, size_t align, const void *nt) {
    void *p;
    if (sx_likely(sx_is_pow2(align) && SX_MEMALIGN(&p, align, size) == 0)) return p;
    return ((void *(*)(size_t, size_t, const void *))next_new(
        "_ZnwmSt11align_val_tRKSt9nothrow_t", (void *)_ZnwmSt11align_val_tRKSt9nothrow_t))(size, align, nt);
}
static void *cxx_new_array_aligned_nothrow(size_t size, size_t align, const void *nt) {
    void *p;
    if (sx_likely(sx_is_pow2(align) && SX_MEMALIGN(&p, align, size) == 0)) return p;
    return ((void *(*)(size_t, size_t, const void *))next_new(
        "_ZnamSt11align_val_tRKSt9nothrow_t", (void *)_ZnamSt11align_val_tRKSt9nothrow_t))(size, align, nt);
}

static void cxx_delete(void *ptr) { SX_FREE(ptr); }
static void cxx_delete_nothrow(void *ptr, const void *nt) { SX_FREE(ptr); }
static void cxx_delete_aligned(void *ptr, size_t align) { SX_FREE(ptr); }
static void cxx_delete_aligned_nothrow(void *ptr, size_t align, const void *nt) { SX_FREE(ptr); }
static void cxx_delete_sized(void *ptr, size_t size) { sx_free_sized_inline(ptr, size, "operator delete"); }
/* An aligned block may have a class past its size's (core/alloc.c's aligned_bin): only secure
 * mode, which knows the size asked for, checks it. */
static void cxx_delete_sized_aligned(void *ptr, size_t size, size_t align) {
    if (sx_unlikely(sx_secure_on)) sx_secure_free(ptr, "operator delete", size, true);
    else SX_FREE(ptr);
}

SX_ALIAS(_Znwm, cxx_new)
SX_ALIAS(_Znam, cxx_new_array)
SX_ALIAS(_ZnwmRKSt9nothrow_t, cxx_new_nothrow)
SX_ALIAS(_ZnamRKSt9nothrow_t, cxx_new_array_nothrow)
SX_ALIAS(_ZnwmSt11align_val_t, cxx_new_aligned)
SX_ALIAS(_ZnamSt11align_val_t, cxx_new_array_aligned)
SX_ALIAS(_ZnwmSt11align_val_tRKSt9nothrow_t, cxx_new_aligned_nothrow)
SX_ALIAS(_ZnamSt11align_val_tRKSt9nothrow_t, cxx_new_array_aligned_nothrow)
SX_ALIAS(_ZdlPv, cxx_delete)
SX_ALIAS(_ZdaPv, cxx_delete)
SX_ALIAS(_ZdlPvRKSt9nothrow_t, cxx_delete_nothrow)
SX_ALIAS(_ZdaPvRKSt9nothrow_t, cxx_delete_nothrow)
SX_ALIAS(_ZdlPvSt11align_val_t, cxx_delete_aligned)
SX_ALIAS(_ZdaPvSt11align_val_t, cxx_delete_aligned)
SX_ALIAS(_ZdlPvSt11align_val_tRKSt9nothrow_t, cxx_delete_aligned_nothrow)
SX_ALIAS(_ZdaPvSt11align_val_tRKSt9nothrow_t, cxx_delete_aligned_nothrow)
SX_ALIAS(_ZdlPvm, cxx_delete_sized)
SX_ALIAS(_ZdaPvm, cxx_delete_sized)
SX_ALIAS(_ZdlPvmSt11align_val_t, cxx_delete_sized_aligned)
SX_ALIAS(_ZdaPvmSt11align_val_t, cxx_delete_sized_aligned)
#endif

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
