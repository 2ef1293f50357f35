/*
 * pool.c — heaps of exited threads: memory they held that other threads free afterwards goes back
 * to the system, their heaps are reused, and malloc_trim visits them all.
 */
#include <malloc.h>
#include <pthread.h>

#include "harness.h"
#include "strata.h"

enum { THREADS = 8, PER = 2000, SIZE = 5000 };
static void *blocks[THREADS][PER];

static void *fill(void *arg) {
    long t = (long)arg;
    for (int i = 0; i < PER; i++) {
        blocks[t][i] = malloc(SIZE);
        memset(blocks[t][i], (int)t, SIZE);
    }
    return NULL;
}

static struct strata_stats stats(void) {
    struct strata_stats s;
    strata_get_stats(&s);
    return s;
}

/* 80 MB made by threads that have exited, freed by main: it must not stay resident. */
static void memory_freed_after_thread_exit_goes_back(void) {
    long rss0 = th_rss_kb();
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, fill, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    long rss1 = th_rss_kb();
    CHECK(rss1 - rss0 > 60 * 1024);
    CHECK(stats().in_use_bytes > (size_t)THREADS * PER * SIZE);
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < PER; j++) {
            CHECK(((unsigned char *)blocks[i][j])[SIZE - 1] == i);
            free(blocks[i][j]);
        }
    long rss2 = th_rss_kb();
    CHECKF(rss2 - rss0 < 16 * 1024, "RSS %ld KiB above the start after freeing everything",
           rss2 - rss0);
    CHECKF(stats().in_use_bytes < (8u << 20), "%zu bytes still in use", stats().in_use_bytes);
}

static void *nothing(void *arg) {
    free(malloc(100));
    return arg;
}

/* With heaps in the pool, malloc_trim visits each once and returns. */
static void malloc_trim_with_pooled_heaps(void) {
    for (int i = 0; i < 4; i++) {
        pthread_t t;
        pthread_create(&t, NULL, nothing, NULL);
        pthread_join(t, NULL);
    }
    alarm(20);
    malloc_trim(0);
    alarm(0);
    CHECK(stats().heaps <= THREADS + 2); /* the new threads reused pooled heaps */
}

int main(void) {
    RUN(memory_freed_after_thread_exit_goes_back);
    RUN(malloc_trim_with_pooled_heaps);
    return 0;
}
