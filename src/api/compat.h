/* compat.h — glibc's tuning and introspection calls, implemented in compat.c. */
#ifndef STRATA_COMPAT_H
#define STRATA_COMPAT_H

#include <malloc.h>
#include <stdio.h>

int sx_mallopt(int param, int value);
struct mallinfo2 sx_mallinfo2(void);
int sx_malloc_trim(size_t pad);
int sx_malloc_info(int options, FILE *stream);

#endif
