/*
 * reuse — is a freed block handed out again by the very next malloc of its size?
 *
 *   immediate  free(p); q = malloc(n): caught when q != p
 *
 * Reusing a block at once is what makes a use after free exploitable: the stale pointer and the
 * new owner's data meet. An allocator that delays reuse (quarantine, random choice among free
 * slots) breaks the pattern. A fault or abort is not a catch here (nothing was misused).
 */
#include "case.h"

int main(int argc, char **argv) {
    size_t n = case_args(argc, argv);
    char *p = case_malloc(n);
    free(p);
    if (strcmp(argv[1], "immediate")) case_broken("unknown variant");
    char *q = case_malloc(n);
    if (q != p) case_caught("the freed block was not handed out again");
    case_missed("the freed block came back at once");
}
