/*
 * simple — glibc's bench-malloc-simple: one thread allocating and freeing blocks of one size
 * (16, 32, 64, 128 and 256 bytes in turn) with a fixed number of blocks alive: MODE is 1, 100 or
 * 10000. Blocks are freed in allocation order (a ring), each checked at both ends first.
 */
#include "../workload.h"

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    size_t live = *a.mode ? (size_t)atol(a.mode) : 100;
    if (live < 1) live = 1;
    void **ring = calloc(live, sizeof *ring);
    if (!ring) wl_fail("out of memory");
    static const size_t sizes[] = {16, 32, 64, 128, 256};
    uint64_t per_size = wl_scaled(8000000, a.scale), ops = 0;
    double t0 = wl_now();
    for (size_t k = 0; k < 5; k++) {
        size_t n = sizes[k];
        for (uint64_t i = 0; i < per_size; i++) {
            size_t j = i % live;
            unsigned char *old = ring[j];
            if (old) {
                if (old[0] != (unsigned char)(j + k) || old[n - 1] != (unsigned char)k)
                    wl_fail("block of %zu bytes corrupted", n);
                free(old);
            }
            unsigned char *p = malloc(n);
            if (!p) wl_fail("out of memory");
            p[0] = (unsigned char)(j + k);
            p[n - 1] = (unsigned char)k;
            ring[j] = p;
        }
        ops += per_size;
        for (size_t j = 0; j < live; j++) {
            free(ring[j]);
            ring[j] = NULL;
        }
    }
    double t1 = wl_now();
    free(ring);
    wl_result(t1 - t0, ops, NULL);
    return 0;
}
