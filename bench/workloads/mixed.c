/*
 * mixed — a program that does nothing but allocate and free: 3 million calls (at --scale 1),
 * malloc and free of small blocks (16 to 512 bytes, random) with a live set of up to MODE blocks
 * (1000 by default), from three call sites. For what leak tracing (`strata leaks`, diag=leaks)
 * costs per call: run it under libstrata.so and libstrata-diag.so and compare the times.
 * Every slot of the live set is picked at random: full, its block is checked (a byte at each end)
 * and freed; empty, a new block is allocated there. What is live at the end is freed.
 */
#include "../workload.h"

static __attribute__((noinline)) void *site_a(size_t n) { return malloc(n); }
static __attribute__((noinline)) void *site_b(size_t n) { return malloc(n); }
static __attribute__((noinline)) void *site_c(size_t n) { return calloc(1, n); }

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    size_t live = *a.mode ? (size_t)atol(a.mode) : 1000;
    if (live < 1) live = 1;
    void **slot = calloc(live, sizeof *slot);
    size_t *sizes = calloc(live, sizeof *sizes);
    if (!slot || !sizes) wl_fail("out of memory");
    uint64_t calls = wl_scaled(3000000, a.scale), ops = 0, seed = 42;
    double t0 = wl_now();
    for (uint64_t i = 0; i < calls; i++) {
        uint64_t r = wl_rnd(&seed);
        size_t j = (size_t)(r % live);
        if (slot[j]) {
            const unsigned char *b = slot[j];
            if (b[0] != (unsigned char)j || b[sizes[j] - 1] != (unsigned char)sizes[j])
                wl_fail("block of %zu bytes corrupted", sizes[j]);
            free(slot[j]);
            slot[j] = NULL;
            continue;
        }
        size_t n = 16 + (size_t)((r >> 32) % 497);
        void *p = (r >> 20) % 3 == 0 ? site_a(n) : (r >> 20) % 3 == 1 ? site_b(n) : site_c(n);
        if (!p) wl_fail("out of memory");
        ((unsigned char *)p)[0] = (unsigned char)j;
        ((unsigned char *)p)[n - 1] = (unsigned char)n;
        slot[j] = p;
        sizes[j] = n;
        ops++;
    }
    for (size_t j = 0; j < live; j++) free(slot[j]);
    double t1 = wl_now();
    free(slot);
    free(sizes);
    wl_result(t1 - t0, ops, NULL);
    return 0;
}
