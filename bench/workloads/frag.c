/*
 * frag — fragmentation and the return of memory: 1 GiB of mixed small objects is allocated in
 * ten phases, then
 *   drain    nine phases are freed whole (a service draining after a burst), or
 *   scatter  90% of all objects are freed at random, so survivors sit on every page,
 * then, one second later, resident memory is measured; then a different size mix is allocated.
 *
 * Extra results: peak_kb (after the fill), after_kb (1 s after the frees), final_kb (after the
 * new mix), live_kb and final_live_kb (bytes in live blocks then: objects and the workload's own
 * arrays of pointers and sizes), and the two ratios of resident memory over live bytes. The
 * second of waiting is not in `time`.
 */
#include "../workload.h"

typedef struct {
    void **p;
    uint32_t *n;
    size_t count;
} phase;

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    int scatter = !strcmp(a.mode, "scatter");
    if (!scatter && *a.mode && strcmp(a.mode, "drain")) wl_fail("mode is drain or scatter");
    enum { PHASES = 10 };
    uint64_t per_phase = wl_scaled((uint64_t)100 << 20, a.scale), s = 2024, ops = 0;
    phase ph[PHASES];
    /* objects average 264 bytes: room for 10% more than expected. These arrays are live data
     * too, and are counted in the live bytes below. */
    size_t cap = (size_t)(per_phase / 264 * 11 / 10) + 16;
    uint64_t book = 0; /* bytes of bookkeeping arrays */
    double t0 = wl_now();
    for (int f = 0; f < PHASES; f++) {
        ph[f].p = malloc(cap * sizeof(void *));
        ph[f].n = malloc(cap * sizeof(uint32_t));
        if (!ph[f].p || !ph[f].n) wl_fail("out of memory");
        book += cap * (sizeof(void *) + sizeof(uint32_t));
        ph[f].count = 0;
        for (uint64_t bytes = 0; bytes < per_phase && ph[f].count < cap;) {
            uint32_t n = (uint32_t)wl_rnd_range(&s, 16, 512);
            void *p = malloc(n);
            if (!p) wl_fail("out of memory");
            wl_stamp(p, n, ph[f].count * 31 + (uint64_t)f);
            ph[f].p[ph[f].count] = p;
            ph[f].n[ph[f].count++] = n;
            bytes += n;
            ops++;
        }
    }
    long peak = wl_rss_kb();
    uint64_t live = book;
    for (int f = 0; f < PHASES; f++)
        for (size_t i = 0; i < ph[f].count; i++) {
            int drop = scatter ? wl_rnd(&s) % 10 != 0 : f != 0;
            if (!wl_stamped(ph[f].p[i], ph[f].n[i], i * 31 + (uint64_t)f))
                wl_fail("object %d/%zu corrupted", f, i);
            if (drop) {
                free(ph[f].p[i]);
                ph[f].p[i] = NULL;
            } else {
                live += ph[f].n[i];
            }
        }
    double t1 = wl_now();
    sleep(1);
    long after = wl_rss_kb();
    double t2 = wl_now();
    /* a different mix: bigger objects, half as many bytes as survived */
    uint64_t target = live / 2, added = 0;
    size_t ncap = (size_t)(target / 600) + 16, nn = 0;
    void **more = malloc(ncap * sizeof(void *));
    if (!more) wl_fail("out of memory");
    added += ncap * sizeof(void *);
    while (added < target && nn < ncap) {
        uint32_t n = (uint32_t)wl_rnd_range(&s, 600, 3000);
        more[nn] = malloc(n);
        if (!more[nn]) wl_fail("out of memory");
        memset(more[nn], 7, n);
        nn++;
        added += n;
        ops++;
    }
    double t3 = wl_now();
    long final = wl_rss_kb();
    for (size_t i = 0; i < nn; i++) free(more[i]);
    free(more);
    for (int f = 0; f < PHASES; f++) {
        for (size_t i = 0; i < ph[f].count; i++)
            if (ph[f].p[i]) {
                if (!wl_stamped(ph[f].p[i], ph[f].n[i], i * 31 + (uint64_t)f))
                    wl_fail("survivor %d/%zu corrupted", f, i);
                free(ph[f].p[i]);
            }
        free(ph[f].p);
        free(ph[f].n);
    }
    uint64_t live_kb = live / 1024, final_live_kb = (live + added) / 1024;
    wl_result((t1 - t0) + (t3 - t2), ops,
              " peak_kb=%ld after_kb=%ld final_kb=%ld live_kb=%llu final_live_kb=%llu"
              " after_ratio=%.2f final_ratio=%.2f",
              peak, after, final, (unsigned long long)live_kb, (unsigned long long)final_live_kb,
              (double)after / (double)(live_kb ? live_kb : 1),
              (double)final / (double)(final_live_kb ? final_live_kb : 1));
    return 0;
}
