/*
 * entry.c — libstrata-diag.so's entry points (api/entry.h): every call goes through the
 * diagnostic layer (diag.c) first, with the program's call site.
 */
#ifndef STRATA_OVERRIDE
#define STRATA_OVERRIDE /* the diagnostic library always takes glibc's names */
#endif
#ifndef SX_ENTRY_NO_CXX
#define SX_ENTRY_NO_CXX /* C++ new and delete: libstdc++'s, whose stacks start at malloc */
#endif
#include "diag.h"

#define SX_MALLOC(size) sx_diag_alloc(size, 0, false, SX_SITE)
#define SX_CALLOC(count, size) sx_diag_calloc(count, size, SX_SITE)
#define SX_FREE(p) sx_diag_free(p, "free", SX_SITE)
#define SX_REALLOC(p, size, fn) sx_diag_realloc(p, size, fn, SX_SITE)
#define SX_MEMALIGN(out, align, size) sx_diag_memalign(out, align, size, SX_SITE)
#define SX_USABLE(p) sx_diag_usable(p)
#define SX_FREE_SIZED(p, size) sx_diag_free(p, "free", SX_SITE)

#include "../api/entry.h"
