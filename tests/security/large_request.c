/*
 * large_request — requests no allocator can satisfy.
 *
 *   max      malloc(SIZE_MAX + 1 - SIZE)          (rounding it up overflows)
 *   half     malloc(PTRDIFF_MAX + SIZE)           (larger than any object may be)
 *   calloc   calloc(SIZE_MAX / SIZE + 1, SIZE)    (the product overflows)
 *   realloc  realloc(p, SIZE_MAX + 1 - SIZE), p a live block of SIZE bytes, which must survive
 *
 * Caught: NULL with errno ENOMEM, and the process goes on. A block, NULL without ENOMEM, or a
 * crash (a denial of service, where the program expected NULL) are not caught.
 */
#include <errno.h>

#include "case.h"

int main(int argc, char **argv) {
    size_t n = case_args(argc, argv);
    const char *v = argv[1];
    char *keep = case_malloc(n);
    case_fill(keep, n, 1);
    void *r;
    errno = 0;
    if (!strcmp(v, "max")) r = malloc(SIZE_MAX + 1 - n);
    else if (!strcmp(v, "half")) r = malloc((size_t)PTRDIFF_MAX + n);
    else if (!strcmp(v, "calloc")) r = calloc(SIZE_MAX / n + 1, n);
    else if (!strcmp(v, "realloc")) r = realloc(keep, SIZE_MAX + 1 - n);
    else case_broken("unknown variant");
    int err = errno;
    case_sink = r;
    if (r) case_missed("an impossible request returned a block");
    if (err != ENOMEM) case_missed("NULL without errno ENOMEM");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)keep[i] != case_secret(i, 1)) case_missed("the old block was damaged");
    free(keep);
    case_churn(n);
    case_caught("NULL, ENOMEM");
}
