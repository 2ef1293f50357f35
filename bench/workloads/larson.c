/*
 * larson — Larson and Krishnan's server benchmark: threads replace random slots of one shared
 * array, so most blocks are freed by a different thread than the one that allocated them. A
 * fixed number of replacements is split between the threads. Sizes 16 to 1000 bytes, as in the
 * published runs.
 */
#include "../workload.h"

enum { SLOTS = 8192 };
static _Atomic(void *) slots[SLOTS];
static uint64_t steps;
static _Atomic int bad;

/* A block records its own size in its stamp (16 bytes or more): check it before freeing. */
static void check_free(void *p) {
    wl_head h;
    memcpy(&h, p, sizeof h);
    if (h.size < 16 || h.size > 1000 || !wl_stamped(p, h.size, (uint64_t)(uintptr_t)p)) bad = 1;
    else free(p);
}

static void *make(uint64_t *s) {
    size_t n = wl_rnd_range(s, 16, 1000);
    void *p = malloc(n);
    if (p) wl_stamp(p, n, (uint64_t)(uintptr_t)p);
    else bad = 1;
    return p;
}

static void *worker(void *arg) {
    uint64_t s = (uintptr_t)arg * 0x2545F4914F6CDD1DULL + 7;
    for (uint64_t i = 0; i < steps && !bad; i++) {
        unsigned k = (unsigned)(wl_rnd(&s) % SLOTS);
        void *old = atomic_exchange(&slots[k], make(&s));
        if (old) check_free(old);
    }
    return NULL;
}

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    uint64_t total = wl_scaled(8000000, a.scale);
    steps = total / (uint64_t)a.threads;
    /* the array starts full, as in larson's warm-up */
    uint64_t s = 99;
    for (unsigned k = 0; k < SLOTS; k++) atomic_store(&slots[k], make(&s));
    double secs = wl_threads(a.threads, worker);
    for (unsigned k = 0; k < SLOTS; k++) check_free(atomic_load(&slots[k]));
    if (bad) wl_fail("a block was corrupted or malloc failed");
    wl_result(secs, steps * (uint64_t)a.threads, NULL);
    return 0;
}
