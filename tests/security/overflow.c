/*
 * overflow — writes past either end of a block.
 *
 * VARIANT is DIRECTION-BYTES-HOW: DIRECTION over (after the end) or under (before the start),
 * BYTES 1, 32 or 1m (1 MiB), HOW direct (a store loop), memcpy, or memcpy-kept. "The end" is
 * what malloc_usable_size says the block holds: bytes up to there are the program's to use, so
 * the first byte past it is the first one an allocator could object to.
 *
 * The block sits between two neighbours of its size; after the write all three are freed and
 * the size is allocated again — but for memcpy-kept, where the program ends right after the
 * copy with every block still allocated: only a check at the copy (or a fault) sees it. Caught:
 * the process dies (abort or fault) before the marker.
 */
#include "case.h"

int main(int argc, char **argv) {
    size_t n = case_args(argc, argv);
    char dir[16], how[16], amount[16];
    const char *v = argv[1];
    const char *d1 = strchr(v, '-'), *d2 = d1 ? strchr(d1 + 1, '-') : NULL;
    if (!d1 || !d2 || d1 - v >= 16 || d2 - d1 > 16 || strlen(d2) > 16) case_broken("bad variant");
    memcpy(dir, v, (size_t)(d1 - v));
    dir[d1 - v] = '\0';
    memcpy(amount, d1 + 1, (size_t)(d2 - d1 - 1));
    amount[d2 - d1 - 1] = '\0';
    strcpy(how, d2 + 1);
    size_t k = !strcmp(amount, "1") ? 1 : !strcmp(amount, "32") ? 32 : !strcmp(amount, "1m") ? 1 << 20 : 0;
    int over = !strcmp(dir, "over"), kept = !strcmp(how, "memcpy-kept");
    int memcpy_way = kept || !strcmp(how, "memcpy");
    if (!k || (!over && strcmp(dir, "under")) || (!memcpy_way && strcmp(how, "direct")))
        case_broken("bad variant");

    char *before = case_malloc(n);
    char *p = case_malloc(n);
    char *after = case_malloc(n);
    case_fill(before, n, 1);
    case_fill(p, n, 2);
    case_fill(after, n, 3);
    size_t usable = malloc_usable_size(p);
    if (usable < n) case_broken("malloc_usable_size below the request");

    if (over && memcpy_way) {
        char *src = case_malloc(usable + k);
        memset(src, 'A', usable + k);
        memcpy(p, src, usable + k);
        if (kept) case_missed("overflow unnoticed (no block freed)");
        free(src);
    } else if (over) {
        volatile char *end = p + usable;
        for (size_t i = 0; i < k; i++) end[i] = 'A';
    } else if (memcpy_way) {
        char *src = case_malloc(k);
        memset(src, 'A', k);
        memcpy(p - k, src, k);
        if (kept) case_missed("underflow unnoticed (no block freed)");
        free(src);
    } else {
        volatile char *start = p - k;
        for (size_t i = 0; i < k; i++) start[i] = 'A';
    }
    free(p);
    free(after);
    free(before);
    case_churn(n);
    case_missed(over ? "overflow unnoticed" : "underflow unnoticed");
}
