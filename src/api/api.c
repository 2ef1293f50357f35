/*
 * api.c — libstrata's entry points (entry.h) on the core's fast paths.
 */
#include "api.h"

#define SX_MALLOC(size) sx_malloc_inline(size)
#define SX_CALLOC(count, size) sx_calloc_inline(count, size)
#define SX_FREE(p) sx_free_inline(p)
#define SX_REALLOC(p, size, fn) sx_realloc_inline(p, size, fn)
#define SX_MEMALIGN(out, align, size) sx_memalign(out, align, size)
#define SX_USABLE(p) sx_usable_size(p)

/* C23's free_sized: the size must be one that gets the block (secure mode: the size asked for). */
#define SX_FREE_SIZED(p, size) sx_free_sized_inline(p, size, "free_sized")

#include "entry.h"
