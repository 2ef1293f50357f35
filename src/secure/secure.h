/*
 * secure.h — the secure layer: secure mode (secure=1, lib/libstrata-secure.so): canaries,
 * quarantine, random order, guard pages, freed huge mappings held inaccessible. It reaches into
 * the layers below through their hooks (sx_heap_hook, sx_huge_hook), which sx_secure_init sets;
 * they never call it. Below it: core, heap, region, os, support.
 */
#ifndef STRATA_SECURE_H
#define STRATA_SECURE_H

#include "../core/core.h"

#pragma GCC visibility push(hidden)

extern bool sx_secure_on;
void sx_secure_init(void);
void *sx_secure_alloc(size_t size, size_t align, bool zero);
void sx_secure_free(void *p, const char *fn, size_t size, bool sized);
void *sx_secure_realloc(void *p, size_t size, const char *fn);
size_t sx_secure_usable(void *p);
uint64_t sx_secure_random(void);
void sx_secure_flush(sx_heap *h); /* empty its quarantine (malloc_trim) */
size_t sx_secure_release_held(void); /* unmap every held mapping; bytes */
/* What the block at p (bsize bytes, its tail included) holds for the program, from its tail:
 * the size asked for; SX_SECURE_FREE if the block is free (or quarantined, or never handed out);
 * SX_SECURE_BROKEN if its tail was overwritten (bounds.c, the guarded copies' check) */
#define SX_SECURE_FREE SIZE_MAX
#define SX_SECURE_BROKEN (SIZE_MAX - 1)
size_t sx_secure_requested(void *p, size_t bsize);
/* bounds.c: [p, p + n) (n > 0) against the blocks it touches; aborts, naming fn, if it leaves the
 * bytes of the block it starts in (or lies before the one it ends in); write: a store, else a
 * load. Addresses outside strata's memory pass. */
void sx_secure_check_range(const void *p, size_t n, bool write, const char *fn);
void sx_secure_check_copy(void *dst, const void *src, size_t n, const char *fn); /* both ends of a copy */

#pragma GCC visibility pop

#endif
