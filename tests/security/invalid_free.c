/*
 * invalid_free — free() of a pointer malloc never returned.
 *
 *   stack      a local buffer of SIZE bytes
 *   global     a static buffer of SIZE bytes
 *   interior   p + SIZE/2 (16-byte aligned; p + 8 for the small block)
 *   unaligned  p + 1
 *   before     p - 16, where an allocator with headers keeps its own
 *   far        p + 1 GiB
 *
 * Caught: the process dies (abort or fault) before the marker.
 */
#include "case.h"

static char global_buf[256 * 1024];

static void free_it(void *x) {
    case_sink = x;
    free(x);
}

int main(int argc, char **argv) {
    if (argc != 3 || !case_size(argv[2])) case_broken("usage: invalid_free VARIANT SIZE");
    const char *v = argv[1];
    size_t n = case_size(argv[2]);
    char *p = case_malloc(n);
    char *after = case_malloc(n);
    case_fill(p, n, 1);
    if (!strcmp(v, "stack")) {
        char *buf = alloca(n);
        case_fill(buf, n, 2);
        free_it(buf);
    } else if (!strcmp(v, "global")) {
        case_fill(global_buf, n, 2);
        free_it(global_buf);
    } else if (!strcmp(v, "interior")) {
        free_it(p + (n / 2 >= 16 ? n / 2 / 16 * 16 : 8));
    } else if (!strcmp(v, "unaligned")) {
        free_it(p + 1);
    } else if (!strcmp(v, "before")) {
        free_it(p - 16);
    } else if (!strcmp(v, "far")) {
        free_it(p + ((size_t)1 << 30));
    } else {
        case_broken("unknown variant");
    }
    case_churn(n);
    free(after);
    case_missed("invalid pointer accepted");
}
