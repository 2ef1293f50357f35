/*
 * mthread — glibc's bench-malloc-thread: every thread works on its own set of blocks, replacing
 * a random one at each step with a block of random size (mostly small, up to 32 KiB). No block
 * crosses threads: this measures how well per-thread allocation scales.
 */
#include "../workload.h"

enum { SLOTS = 2048 };
static uint64_t steps;
static _Atomic int bad;

static size_t pick(uint64_t *s) {
    uint64_t r = wl_rnd(s) % 100;
    if (r < 70) return wl_rnd_range(s, 8, 128);
    if (r < 95) return wl_rnd_range(s, 129, 2048);
    return wl_rnd_range(s, 2049, 32768);
}

static void *worker(void *arg) {
    uint64_t s = (uintptr_t)arg * 0x9E3779B97F4A7C15ULL + 1;
    void *slot[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    for (uint64_t i = 0; i < steps; i++) {
        unsigned k = (unsigned)(wl_rnd(&s) % SLOTS);
        if (slot[k]) {
            if (!wl_stamped(slot[k], len[k], k)) bad = 1;
            free(slot[k]);
        }
        len[k] = pick(&s);
        slot[k] = malloc(len[k]);
        if (!slot[k]) {
            bad = 1;
            break;
        }
        wl_stamp(slot[k], len[k], k);
    }
    for (unsigned k = 0; k < SLOTS; k++) free(slot[k]);
    return NULL;
}

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    steps = wl_scaled(6000000, a.scale) / (uint64_t)a.threads;
    double secs = wl_threads(a.threads, worker);
    if (bad) wl_fail("a block was corrupted or malloc failed");
    wl_result(secs, steps * (uint64_t)a.threads, NULL);
    return 0;
}
