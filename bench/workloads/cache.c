/*
 * cache — Hoard's cache-thrash and cache-scratch: threads allocate small objects and write them
 * hard. An allocator that gives bytes of one cache line to different threads makes every write
 * a cache-line transfer between cores (false sharing).
 *
 *   thrash   each thread allocates, writes and frees its own 8-byte objects
 *   scratch  the main thread allocates one object per thread side by side; each thread frees the
 *            one it was given and then works as in thrash, so an allocator that hands the freed
 *            neighbour straight back shares a line between threads
 *
 * `ops` counts writes to the objects: that is the work whose speed false sharing decides.
 */
#include "../workload.h"

enum { OBJ = 8 };
static uint64_t iterations, repetitions;
static char *given[512];
static _Atomic int bad;

static void *worker(void *arg) {
    long id = (long)(uintptr_t)arg;
    if (given[id - 1]) free(given[id - 1]);
    for (uint64_t i = 0; i < iterations; i++) {
        volatile char *p = malloc(OBJ);
        if (!p) {
            bad = 1;
            break;
        }
        for (int j = 0; j < OBJ; j++) p[j] = 0;
        for (uint64_t r = 0; r < repetitions; r++) p[r % OBJ]++;
        unsigned sum = 0;
        for (int j = 0; j < OBJ; j++) sum += (unsigned char)p[j];
        if ((unsigned char)sum != (unsigned char)repetitions) bad = 1;
        free((void *)p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    int scratch = !strcmp(a.mode, "scratch");
    if (!scratch && *a.mode && strcmp(a.mode, "thrash")) wl_fail("mode is thrash or scratch");
    int n = a.threads > 512 ? 512 : a.threads;
    iterations = 100;
    repetitions = wl_scaled(8000000, a.scale) * 2 / (uint64_t)n; /* same total work at any count */
    if (scratch)
        for (int i = 0; i < n; i++) given[i] = malloc(OBJ);
    double secs = wl_threads(n, worker);
    if (bad) wl_fail("an object lost writes or malloc failed");
    /* the work here is writing, not allocating: ops counts object writes */
    wl_result(secs, iterations * repetitions * (uint64_t)n, NULL);
    return 0;
}
