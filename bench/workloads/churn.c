/*
 * churn — a long-running service: a steady live set (64 MiB of random sizes up to 16 KiB) under
 * sustained random replacement. Resident memory is sampled ten times; it must not creep.
 *
 * Extra results: first_kb (at 10% of the work), last_kb (at the end), max_kb, creep (last over
 * first).
 */
#include "../workload.h"

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    uint64_t s = 31337, target = wl_scaled((uint64_t)64 << 20, a.scale);
    size_t slots = (size_t)(target / 2100) + 1; /* mean size ~2 KiB */
    void **p = calloc(slots, sizeof *p);
    uint32_t *n = calloc(slots, sizeof *n);
    if (!p || !n) wl_fail("out of memory");
    for (size_t i = 0; i < slots; i++) {
        n[i] = (uint32_t)(wl_rnd(&s) % 4 ? wl_rnd_range(&s, 16, 1024) : wl_rnd_range(&s, 1025, 16384));
        p[i] = malloc(n[i]);
        wl_stamp(p[i], n[i], i);
    }
    uint64_t steps = wl_scaled(12000000, a.scale), ops = slots;
    long first = 0, last = 0, max = 0;
    double t0 = wl_now();
    for (int tenth = 1; tenth <= 10; tenth++) {
        for (uint64_t i = 0; i < steps / 10; i++) {
            size_t k = (size_t)(wl_rnd(&s) % slots);
            if (!wl_stamped(p[k], n[k], k)) wl_fail("block %zu corrupted", k);
            free(p[k]);
            n[k] = (uint32_t)(wl_rnd(&s) % 4 ? wl_rnd_range(&s, 16, 1024)
                                              : wl_rnd_range(&s, 1025, 16384));
            p[k] = malloc(n[k]);
            if (!p[k]) wl_fail("out of memory");
            wl_stamp(p[k], n[k], k);
        }
        ops += steps / 10;
        long rss = wl_rss_kb();
        if (tenth == 1) first = rss;
        if (rss > max) max = rss;
        last = rss;
    }
    double t1 = wl_now();
    for (size_t i = 0; i < slots; i++) free(p[i]);
    free(p);
    free(n);
    wl_result(t1 - t0, ops, " first_kb=%ld last_kb=%ld max_kb=%ld creep=%.3f", first, last, max,
              (double)last / (double)(first ? first : 1));
    return 0;
}
