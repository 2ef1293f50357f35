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
    size_t n = case_args(argc, argv);
    char *p = case_malloc(n);
    char *after = case_malloc(n);
    case_fill(p, n, 1);
    if (!strcmp(argv[1], "stack")) {
        char *buf = alloca(n);
        case_fill(buf, n, 2);
        free_it(buf);
    } else if (!strcmp(argv[1], "global")) {
        case_fill(global_buf, n, 2);
        free_it(global_buf);
    } else if (!strcmp(argv[1], "interior")) {
        free_it(p + (n / 2 >= 16 ? n / 2 / 16 * 16 : 8));
    } else if (!strcmp(argv[1], "unaligned")) {
        free_it(p + 1);
    } else if (!strcmp(argv[1], "before")) {
        free_it(p - 16);
    } else if (!strcmp(argv[1], "far")) {
        free_it(p + ((size_t)1 << 30));
    } else {
        case_broken("unknown variant");
    }
    case_churn(n);
    free(after);
    case_missed("invalid pointer accepted");
}
