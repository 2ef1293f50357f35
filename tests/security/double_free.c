/*
 * double_free — a block given back twice.
 *
 *   immediate    free(p); free(p)
 *   delayed      free(p); other sizes allocated and freed; free(p)
 *   interleaved  free(p); free(q); free(p)   (q of the same size: p is no longer the last freed)
 *   reused       free(p); q = malloc(n) (often p again); the stale free(p) gives q's block back
 *                while q is in use; the owner writes to q and frees it: caught only by an
 *                allocator that did not hand p out again at once, or that checks the second
 *                free of the block although the owner's writes wiped whatever it left in it
 *
 * Caught: the process dies (abort or fault) before the marker.
 */
#include "case.h"

int main(int argc, char **argv) {
    size_t n = case_args(argc, argv);
    char *p = case_malloc(n);
    char *q = case_malloc(n);
    case_fill(p, n, 1);
    case_fill(q, n, 2);
    if (!strcmp(argv[1], "immediate")) {
        free(p);
        free(p);
    } else if (!strcmp(argv[1], "delayed")) {
        free(p);
        for (int i = 0; i < 64; i++) free(case_malloc(n * 2 + (size_t)i * 16));
        free(p);
    } else if (!strcmp(argv[1], "interleaved")) {
        free(p);
        free(q);
        free(p);
        q = NULL;
    } else if (!strcmp(argv[1], "reused")) {
        free(p);
        char *r = case_malloc(n);
        case_fill(r, n, 3);
        free(p);              /* stale: frees r's block if r == p */
        case_fill(r, n, 4);   /* r's owner goes on using it */
        free(r);
    } else {
        case_broken("unknown variant");
    }
    free(q);
    case_churn(n);
    case_missed("second free accepted");
}
