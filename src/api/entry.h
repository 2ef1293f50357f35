/*
 * entry.h — the public entry points: the strata_ functions, and (with STRATA_OVERRIDE, as in
 * libstrata) the glibc names as aliases of them, listed in override.h. Included once per library:
 * by api.c, whose SX_MALLOC and friends are the core's fast paths, and by diag/entry.c
 * (libstrata-diag.so), whose go through the diagnostic layer first. The includer defines
 * SX_MALLOC, SX_CALLOC, SX_FREE, SX_REALLOC, SX_MEMALIGN, SX_USABLE and SX_FREE_SIZED, and
 * SX_ENTRY_NO_CXX to leave C++'s operator new and delete to libstdc++ (override.h).
 *
 * Semantics follow glibc and the man pages: malloc(0) returns a unique pointer; failures return
 * NULL with errno ENOMEM; calloc and reallocarray fail on overflow; realloc(p, 0) frees p and
 * returns NULL; posix_memalign reports errors by return value and leaves errno alone;
 * aligned_alloc rejects an alignment that is not a power of two (EINVAL), memalign rounds it up.
 */
#ifndef STRATA_ENTRY_H
#define STRATA_ENTRY_H

#include "api.h"
#include "compat.h"
#include "strata.h"

/* Exported despite -fvisibility=hidden. */
#define SX_API sx_public

SX_API void *strata_malloc(size_t size) { return SX_MALLOC(size); }

SX_API void strata_free(void *ptr) { SX_FREE(ptr); }

SX_API void *strata_calloc(size_t count, size_t size) { return SX_CALLOC(count, size); }

SX_API void *strata_realloc(void *ptr, size_t size) { return SX_REALLOC(ptr, size, "realloc"); }

SX_API void *strata_reallocarray(void *ptr, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return SX_REALLOC(ptr, total, "reallocarray");
}

SX_API int strata_posix_memalign(void **out, size_t alignment, size_t size) {
    if (!sx_is_pow2(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
    return SX_MEMALIGN(out, alignment, size);
}

/* inlined: SX_SITE must see the program's call, not this function's */
static inline __attribute__((always_inline)) void *aligned(size_t alignment, size_t size) {
    void *p;
    int err = SX_MEMALIGN(&p, alignment, size);
    if (err) {
        errno = err;
        return NULL;
    }
    return p;
}

SX_API void *strata_aligned_alloc(size_t alignment, size_t size) {
    if (!sx_is_pow2(alignment)) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(alignment, size);
}

SX_API void *strata_memalign(size_t alignment, size_t size) {
    if (alignment > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (!sx_is_pow2(alignment)) alignment = alignment <= 1 ? 1 : (size_t)1 << (64 - __builtin_clzl(alignment - 1));
    return aligned(alignment, size);
}

SX_API void *strata_valloc(size_t size) {
    sx_process_init(); /* the page size */
    return aligned(sx_os_page, size);
}

SX_API void *strata_pvalloc(size_t size) {
    sx_process_init();
    if (size > SIZE_MAX - sx_os_page) {
        errno = ENOMEM;
        return NULL;
    }
    return aligned(sx_os_page, sx_align_up(size, sx_os_page));
}

SX_API size_t strata_malloc_usable_size(void *ptr) { return SX_USABLE(ptr); }

/* glibc's cfree: an old alias of free, no longer declared in any header. */
SX_API void strata_cfree(void *ptr) { SX_FREE(ptr); }

/* C23's sized frees (glibc 2.41+). strata finds a block's size itself; the size given is not
 * needed, and a wrong one is the caller's undefined behaviour, not checked here. */
SX_API void strata_free_sized(void *ptr, size_t size) { SX_FREE_SIZED(ptr, size); }

SX_API void strata_free_aligned_sized(void *ptr, size_t alignment, size_t size) {
    SX_FREE(ptr);
}

/* ---- tuning and introspection (compat.c) ---- */

SX_API int strata_mallopt(int param, int value) { return sx_mallopt(param, value); }

SX_API struct mallinfo2 strata_mallinfo2(void) { return sx_mallinfo2(); }

static int clamp_int(size_t v) { return v > INT32_MAX ? INT32_MAX : (int)v; }

SX_API struct mallinfo strata_mallinfo(void) {
    struct mallinfo2 m = sx_mallinfo2();
    struct mallinfo r = {
        .arena = clamp_int(m.arena), .ordblks = clamp_int(m.ordblks), .smblks = clamp_int(m.smblks),
        .hblks = clamp_int(m.hblks), .hblkhd = clamp_int(m.hblkhd), .usmblks = clamp_int(m.usmblks),
        .fsmblks = clamp_int(m.fsmblks), .uordblks = clamp_int(m.uordblks),
        .fordblks = clamp_int(m.fordblks), .keepcost = clamp_int(m.keepcost),
    };
    return r;
}

SX_API int strata_malloc_trim(size_t pad) { return sx_malloc_trim(pad); }

SX_API void strata_malloc_stats(void) { sx_stats_print(2, "malloc_stats"); }

SX_API int strata_malloc_info(int options, FILE *stream) { return sx_malloc_info(options, stream); }

SX_API void strata_get_stats(struct strata_stats *out) { sx_stats_snapshot(out); }

SX_API const char *strata_version(void) { return STRATA_VERSION_STRING; }

#ifdef STRATA_OVERRIDE
#include "override.h"
#endif

#endif
