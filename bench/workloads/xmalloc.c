/*
 * xmalloc — one-way cross-thread traffic (xmalloc-test): half the threads allocate blocks and pass
 * them on in batches, the other half check and free them. Every block is freed by a thread that
 * did not allocate it. With one thread, it produces and consumes in turn.
 */
#include "../workload.h"

enum { BATCH = 256, QCAP = 64 };
typedef struct {
    void *p[BATCH];
} batch;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t more, room;
    batch *q[QCAP];
    int head, count;
} Q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0};

static uint64_t batches_per_producer;
static int producers, consumers;
static _Atomic int bad;
static _Atomic uint64_t consumed;

static void put(batch *b) {
    pthread_mutex_lock(&Q.mu);
    while (Q.count == QCAP) pthread_cond_wait(&Q.room, &Q.mu);
    Q.q[(Q.head + Q.count++) % QCAP] = b;
    pthread_cond_signal(&Q.more);
    pthread_mutex_unlock(&Q.mu);
}

static batch *get(void) {
    pthread_mutex_lock(&Q.mu);
    while (Q.count == 0) pthread_cond_wait(&Q.more, &Q.mu);
    batch *b = Q.q[Q.head];
    Q.head = (Q.head + 1) % QCAP;
    Q.count--;
    pthread_cond_signal(&Q.room);
    pthread_mutex_unlock(&Q.mu);
    return b;
}

static batch *produce(uint64_t *s) {
    batch *b = malloc(sizeof *b);
    if (!b) wl_fail("out of memory");
    for (int i = 0; i < BATCH; i++) {
        size_t n = wl_rnd_range(s, 16, 512);
        b->p[i] = malloc(n);
        if (!b->p[i]) wl_fail("out of memory");
        wl_stamp(b->p[i], n, (uint64_t)(uintptr_t)b->p[i]);
    }
    return b;
}

static void consume(batch *b) {
    for (int i = 0; i < BATCH; i++) {
        wl_head h;
        memcpy(&h, b->p[i], sizeof h);
        if (h.size < 16 || h.size > 512 || !wl_stamped(b->p[i], h.size, (uint64_t)(uintptr_t)b->p[i]))
            bad = 1;
        free(b->p[i]);
    }
    free(b);
    consumed++;
}

static void *worker(void *arg) {
    long id = (long)(uintptr_t)arg;
    uint64_t s = (uint64_t)id * 0x9E3779B97F4A7C15ULL;
    if (consumers == 0) { /* one thread: produce and consume in turn */
        for (uint64_t i = 0; i < batches_per_producer; i++) consume(produce(&s));
    } else if (id <= producers) {
        for (uint64_t i = 0; i < batches_per_producer; i++) put(produce(&s));
    } else {
        for (batch *b; (b = get()) != NULL;) consume(b);
    }
    return NULL;
}


int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    producers = a.threads > 1 ? a.threads / 2 : 1;
    consumers = a.threads > 1 ? a.threads - producers : 0;
    uint64_t total = wl_scaled(24000, a.scale);
    batches_per_producer = total / (uint64_t)producers;
    double t0 = wl_now();
    pthread_t t[512];
    int n = a.threads > 512 ? 512 : a.threads;
    for (long i = 0; i < n; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < producers && consumers; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < consumers; i++) put(NULL);
    for (int i = consumers ? producers : 0; i < n; i++) pthread_join(t[i], NULL);
    double secs = wl_now() - t0;
    if (bad) wl_fail("a block was corrupted");
    if (consumed != batches_per_producer * (uint64_t)producers) wl_fail("batches lost");
    wl_result(secs, consumed * BATCH, NULL);
    return 0;
}
