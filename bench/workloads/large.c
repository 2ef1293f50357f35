/*
 * large — malloc-large: blocks of 5 to 25 MiB are allocated, every page touched, and freed, with
 * a few alive at a time. This is where an mmap threshold, a cache of freed mappings and mremap
 * make the difference.
 */
#include "../workload.h"

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    enum { LIVE = 4 };
    unsigned char *ring[LIVE] = {0};
    size_t len[LIVE] = {0};
    uint64_t s = 77, rounds = wl_scaled(400, a.scale);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    double t0 = wl_now();
    for (uint64_t r = 0; r < rounds; r++) {
        unsigned k = (unsigned)(r % LIVE);
        if (ring[k]) {
            if (!wl_stamped(ring[k], len[k], r - LIVE) || ring[k][len[k] / 2] != (unsigned char)k)
                wl_fail("block of %zu bytes corrupted", len[k]);
            free(ring[k]);
        }
        len[k] = (size_t)wl_rnd_range(&s, 5u << 20, 25u << 20);
        ring[k] = malloc(len[k]);
        if (!ring[k]) wl_fail("out of memory");
        for (size_t o = 0; o < len[k]; o += page) ring[k][o] = (unsigned char)k;
        wl_stamp(ring[k], len[k], r);
        ring[k][len[k] / 2] = (unsigned char)k;
    }
    double t1 = wl_now();
    for (unsigned k = 0; k < LIVE; k++) free(ring[k]);
    wl_result(t1 - t0, rounds, NULL);
    return 0;
}
