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

#pragma GCC visibility pop

#endif
