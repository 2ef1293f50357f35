/*
 * vgrind.h — valgrind's client requests: how strata describes its memory to memcheck.
 *
 * Under valgrind, memcheck puts its own malloc in front of strata's, so the blocks of malloc are
 * checked whoever would have served them. The explicit allocators (src/explicit/) carve their
 * blocks out of strata's own memory, which memcheck sees as one accessible area: so they tell it
 * which bytes are a block, which are free and which are nobody's, with client requests — a short
 * sequence of instructions (rotations and an xchg) that valgrind recognises and that a real CPU
 * runs as a no-op. The requests are valgrind's own macros, from its headers
 * (valgrind/memcheck.h, which includes valgrind/valgrind.h), used when the build finds them; where
 * it does not (or with -DSTRATA_NO_VALGRIND) every helper below does nothing.
 *
 * sx_vg_memcheck says whether memcheck is the tool watching the process: asked once at start-up
 * (sx_vg_init), with a request only memcheck answers, so that under callgrind, cachegrind or
 * helgrind strata runs its ordinary paths and their instruction counts are the real ones. Each
 * helper tests it first: outside memcheck a helper costs a load and a branch not taken. The
 * hottest paths do not even have that: under memcheck a pool's bump and a magazine's alloc and
 * free are never taken (the slow paths serve every call, and describe what they hand out), and
 * the page allocator's alloc and free are made twice, the variant chosen at their entry.
 */
#ifndef STRATA_VGRIND_H
#define STRATA_VGRIND_H

#include <stdbool.h>
#include <stddef.h>

#if !defined(STRATA_NO_VALGRIND) && defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define SX_VG_HEADERS 1
#endif
#endif

#ifndef SX_VG_HEADERS /* no headers: requests that do nothing (their arguments used, unevaluated) */
#define SX_VG_HEADERS 0
#define SX_VG_NOP2(a, b) ((void)sizeof(a), (void)sizeof(b))
#define VALGRIND_MAKE_MEM_NOACCESS(p, n) (SX_VG_NOP2(p, n), 0)
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) (SX_VG_NOP2(p, n), 0)
#define VALGRIND_MAKE_MEM_DEFINED(p, n) (SX_VG_NOP2(p, n), 0)
#define VALGRIND_MALLOCLIKE_BLOCK(p, n, rz, zeroed) (SX_VG_NOP2(p, n), SX_VG_NOP2(rz, zeroed))
#define VALGRIND_FREELIKE_BLOCK(p, rz) SX_VG_NOP2(p, rz)
#define VALGRIND_CREATE_MEMPOOL(pool, rz, zeroed) (SX_VG_NOP2(pool, rz), (void)sizeof(zeroed))
#define VALGRIND_DESTROY_MEMPOOL(pool) ((void)sizeof(pool))
#define VALGRIND_MEMPOOL_ALLOC(pool, p, n) (SX_VG_NOP2(pool, p), (void)sizeof(n))
#define VALGRIND_MEMPOOL_TRIM(pool, p, n) (SX_VG_NOP2(pool, p), (void)sizeof(n))
#define VALGRIND_GET_VBITS(p, vbits, n) (SX_VG_NOP2(p, vbits), (void)sizeof(n), 0u)
#endif

#pragma GCC visibility push(hidden)

/* Is memcheck watching this process? Set once by sx_vg_init, at start-up (vgrind.c). */
extern bool sx_vg_memcheck;
void sx_vg_init(void);

/* The state of bytes: nobody's (an access is an error), allocated but not yet written, written. */
static inline void sx_vg_noaccess(const void *p, size_t n) {
    if (__builtin_expect(sx_vg_memcheck, 0)) (void)VALGRIND_MAKE_MEM_NOACCESS(p, n);
}
static inline void sx_vg_undefined(const void *p, size_t n) {
    if (__builtin_expect(sx_vg_memcheck, 0)) (void)VALGRIND_MAKE_MEM_UNDEFINED(p, n);
}
static inline void sx_vg_defined(const void *p, size_t n) {
    if (__builtin_expect(sx_vg_memcheck, 0)) (void)VALGRIND_MAKE_MEM_DEFINED(p, n);
}

/* A block handed out (its n bytes undefined, or defined when zeroed) and a block given back
 * (all of it nobody's): memcheck names them in its reports as it names malloc's blocks. */
static inline void sx_vg_malloclike(const void *p, size_t n, bool zeroed) {
    if (__builtin_expect(sx_vg_memcheck, 0)) VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, zeroed);
}
static inline void sx_vg_freelike(const void *p) {
    if (__builtin_expect(sx_vg_memcheck, 0)) VALGRIND_FREELIKE_BLOCK(p, 0);
}

/* A pool (memcheck's mempool): blocks described at their allocation, all freed at once. The
 * pool leaves redzone bytes free before and after each block: memcheck names an access there as
 * one "N bytes after (or before) a block of size S". */
static inline void sx_vg_pool_create(const void *pool, size_t redzone) {
    if (__builtin_expect(sx_vg_memcheck, 0)) VALGRIND_CREATE_MEMPOOL(pool, redzone, 0);
}
static inline void sx_vg_pool_alloc(const void *pool, const void *p, size_t n) {
    if (__builtin_expect(sx_vg_memcheck, 0)) VALGRIND_MEMPOOL_ALLOC(pool, p, n);
}
static inline void sx_vg_pool_free_all(const void *pool) { /* each block freed, as by free() */
    if (__builtin_expect(sx_vg_memcheck, 0)) VALGRIND_MEMPOOL_TRIM(pool, 0, 0);
}
static inline void sx_vg_pool_destroy(const void *pool) {
    if (__builtin_expect(sx_vg_memcheck, 0)) VALGRIND_DESTROY_MEMPOOL(pool);
}

/* May the program read [p, p + n)? Asked without an error report; true outside memcheck. For
 * memory strata reads that is not its own (the ELF headers of loaded objects, support/maps.c):
 * under valgrind, the tool's own code is mapped in the process, and memcheck forbids reading it. */
static inline bool sx_vg_addressable(const void *p, size_t n) {
    char vbits[64];
    for (size_t at = 0; at < n; at += sizeof vbits) {
        size_t k = n - at < sizeof vbits ? n - at : sizeof vbits;
        if (VALGRIND_GET_VBITS((const char *)p + at, vbits, k) == 3) return false; /* 3: not addressable */
    }
    return true;
}

#pragma GCC visibility pop

#endif
