/*
 * mstress — many threads, random sizes up to 64 KiB, random lifetimes, and frees across threads
 * (mimalloc-bench's mstress and rptest): each thread replaces random blocks of its own set, and
 * one block in five is sent to another thread's mailbox to be freed there.
 */
#include "../workload.h"

enum { SLOTS = 4096, MAILBOX = 1024 };
typedef struct {
    pthread_mutex_t mu;
    void *box[MAILBOX];
    int count;
} mailbox;

static mailbox boxes[512];
static int nthreads;
static uint64_t steps;
static _Atomic int bad;

static size_t pick(uint64_t *s) {
    uint64_t r = wl_rnd(s) % 100;
    if (r < 70) return wl_rnd_range(s, 16, 256);
    if (r < 95) return wl_rnd_range(s, 257, 8192);
    return wl_rnd_range(s, 8193, 65536);
}

static void check_free(void *p) {
    wl_head h;
    memcpy(&h, p, sizeof h);
    if (h.size < 16 || h.size > 65536 || !wl_stamped(p, h.size, (uint64_t)(uintptr_t)p)) bad = 1;
    free(p);
}

static void drain(mailbox *m) {
    void *local[MAILBOX];
    pthread_mutex_lock(&m->mu);
    int n = m->count;
    memcpy(local, m->box, (size_t)n * sizeof(void *));
    m->count = 0;
    pthread_mutex_unlock(&m->mu);
    for (int i = 0; i < n; i++) check_free(local[i]);
}

static void send_to(mailbox *m, void *p) {
    pthread_mutex_lock(&m->mu);
    int room = m->count < MAILBOX;
    if (room) m->box[m->count++] = p;
    pthread_mutex_unlock(&m->mu);
    if (!room) check_free(p); /* the mailbox is full: free it here */
}

static void *worker(void *arg) {
    long id = (long)(uintptr_t)arg;
    uint64_t s = (uint64_t)id * 0xD1B54A32D192ED03ULL;
    void **slot = calloc(SLOTS, sizeof *slot);
    for (uint64_t i = 0; i < steps && !bad; i++) {
        unsigned k = (unsigned)(wl_rnd(&s) % SLOTS);
        if (slot[k]) {
            if (nthreads > 1 && wl_rnd(&s) % 5 == 0)
                send_to(&boxes[wl_rnd(&s) % (uint64_t)nthreads], slot[k]);
            else check_free(slot[k]);
        }
        size_t n = pick(&s);
        slot[k] = malloc(n);
        if (!slot[k]) {
            bad = 1;
            break;
        }
        wl_stamp(slot[k], n, (uint64_t)(uintptr_t)slot[k]);
        if (i % 256 == 0) drain(&boxes[id - 1]);
    }
    for (unsigned k = 0; k < SLOTS; k++)
        if (slot[k]) check_free(slot[k]);
    free(slot);
    return NULL;
}

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    nthreads = a.threads > 512 ? 512 : a.threads;
    for (int i = 0; i < nthreads; i++) pthread_mutex_init(&boxes[i].mu, NULL);
    steps = wl_scaled(3000000, a.scale) / (uint64_t)nthreads;
    double secs = wl_threads(nthreads, worker);
    for (int i = 0; i < nthreads; i++) drain(&boxes[i]);
    if (bad) wl_fail("a block was corrupted or malloc failed");
    wl_result(secs, steps * (uint64_t)nthreads, NULL);
    return 0;
}
