/*
 * api.c — the public entry points: the strata_ functions, and (built with STRATA_OVERRIDE, as in
 * libstrata) the glibc names as aliases of them, listed in override.h.
 *
 * Semantics follow glibc and the man pages: malloc(0) returns a unique pointer; failures return
 * NULL with errno ENOMEM; calloc and reallocarray fail on overflow; realloc(p, 0) frees p and
 * returns NULL; posix_memalign reports errors by return value and leaves errno alone;
 * aligned_alloc rejects an alignment that is not a power of two (EINVAL), memalign rounds it up.
 */
#include "alloc.h"
#include "compat.h"
#include "strata.h"

/* libstrata-diag.so: every entry point goes through the diagnostic layer (diag/diag.c). */
#ifdef STRATA_DIAG
#include "../diag/diag.h"
#define SX_MALLOC(size) sx_diag_alloc(size, 0, false, SX_SITE)
#define SX_CALLOC(count, size) sx_diag_calloc(count, size, SX_SITE)
#define SX_FREE(p) sx_diag_free(p, "free", SX_SITE)
#define SX_REALLOC(p, size, fn) sx_diag_realloc(p, size, fn, SX_SITE)
#define SX_MEMALIGN(out, align, size) sx_diag_memalign(out, align, size, SX_SITE)
#define SX_USABLE(p) sx_diag_usable(p)
#else
#define SX_MALLOC(size) sx_malloc_inline(size)
#define SX_CALLOC(count, size) sx_calloc_inline(count, size)
#define SX_FREE(p) sx_free_inline(p)
#define SX_REALLOC(p, size, fn) sx_realloc_inline(p, size, fn)
#define SX_MEMALIGN(out, align, size) sx_memalign(out, align, size)
#define SX_USABLE(p) sx_usable_size(p)
#endif

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
SX_API void strata_free_sized(void *ptr, size_t size) {
#ifndef STRATA_DIAG
    if (sx_unlikely(sx_secure_on)) { /* secure mode knows the size asked for: it must match */
        sx_secure_free(ptr, "free_sized", size, true);
        return;
    }
#endif
    SX_FREE(ptr);
}

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
