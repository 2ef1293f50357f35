/*
 * use_after_free — reading and writing a block after free.
 *
 *   read         free(p), then read all of p
 *   read-reuse   free(p); q = malloc(n) (often p again) and q filled with q's secret; read p
 *   write        free(p), write 8 bytes into p (at SIZE/2, 8-aligned); allocate the size again
 *   write-reuse  free(p); q = malloc(n); write 8 bytes into p; free(q); allocate the size again
 *
 * p holds a secret, not one repeated byte. Caught, for the reads: a fault, or every byte read
 * the same value (the block was zeroed or poisoned at free, or never handed out again and wiped);
 * reading the secret, q's secret or an allocator's pointers counts as not caught (it is a leak).
 * For the writes: the process dies (abort or fault) before the marker. Another block of the size
 * is freed just before p, so that a free list through p points somewhere.
 */
#include "case.h"

int main(int argc, char **argv) {
    size_t n = case_args(argc, argv);
    const char *v = argv[1];
    char *sibling = case_malloc(n);
    char *p = case_malloc(n);
    case_fill(p, n, 1);
    free(sibling);
    free(p);
    volatile unsigned char *stale = (volatile unsigned char *)p;
    size_t mid = n / 2 / 8 * 8;
    if (!strcmp(v, "read") || !strcmp(v, "read-reuse")) {
        if (!strcmp(v, "read-reuse")) case_fill(case_malloc(n), n, 2);
        unsigned long sum = 0;
        for (size_t i = 0; i < n; i++) sum += stale[i];
        case_byte_sink = (unsigned char)sum;
        if (case_uniform(stale, n)) case_caught("freed block reads back wiped");
        case_missed("freed block still readable");
    } else if (!strcmp(v, "write")) {
        for (size_t i = 0; i < 8; i++) stale[mid + i] = 'A';
        case_churn(n);
        case_missed("write after free unnoticed");
    } else if (!strcmp(v, "write-reuse")) {
        char *q = case_malloc(n);
        case_fill(q, n, 2);
        for (size_t i = 0; i < 8; i++) stale[mid + i] = 'A';
        free(q);
        case_churn(n);
        case_missed("write after free unnoticed");
    }
    case_broken("unknown variant");
}
