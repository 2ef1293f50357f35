/*
 * orphans.c — orphan heaps (heaps of exited threads): memory they held that other threads free
 * afterwards goes back to the system, their heaps are reused, and malloc_trim visits them all.
 * Also the blocks a thread stashes from other heaps' frees: reused by its next mallocs, sent home when it exits.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>

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
    if (!th_emulated()) /* TH_EMU_RSS */
        CHECKF(rss2 - rss0 < 16 * 1024, "RSS %ld KiB above the start after freeing everything",
               rss2 - rss0);
    CHECKF(stats().in_use_bytes < (8u << 20), "%zu bytes still in use", stats().in_use_bytes);
}

static void *nothing(void *arg) {
    free(malloc(100));
    return arg;
}

/* With orphan heaps, malloc_trim visits each once and returns. */
static void malloc_trim_with_orphan_heaps(void) {
    for (int i = 0; i < 4; i++) {
        pthread_t t;
        pthread_create(&t, NULL, nothing, NULL);
        pthread_join(t, NULL);
    }
    alarm(20);
    malloc_trim(0);
    alarm(0);
    CHECK(stats().heaps <= THREADS + 2); /* the new threads reused orphan heaps */
}

/* ---- blocks of another heap, freed by this thread ---- */

enum { NSMALL = 4000 };
static size_t SMALL; /* the size of the blocks of the test running */
static void *small[NSMALL];
static pthread_barrier_t bar;
static int small_bad;

/* Frees the main thread's small blocks, mallocs the same size, reports whether one came back. */
static void *free_and_reuse(void *arg) {
    free(malloc(1000)); /* the thread has a heap of its own */
    for (int i = 0; i < NSMALL; i++) {
        small_bad += ((unsigned char *)small[i])[SMALL - 1] != (unsigned char)i;
        free(small[i]);
    }
    void *p = malloc(SMALL);
    bool reused = false;
    for (int i = 0; i < NSMALL; i++) reused |= p == small[i];
    free(p);
    pthread_barrier_wait(&bar); /* main looks at its use while this thread still runs */
    pthread_barrier_wait(&bar);
    return reused ? arg : NULL;
}

/* NSMALL blocks of `size` from this thread, freed by another one that then mallocs that size;
 * *during (if asked): bytes in use, after a trim, while that thread still runs. Returns whether
 * its malloc took back one of the blocks it freed. */
static bool freed_by_another_thread(size_t size, size_t *during) {
    SMALL = size;
    for (int i = 0; i < NSMALL; i++) {
        small[i] = malloc(SMALL);
        memset(small[i], i, SMALL);
    }
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, free_and_reuse, &bar);
    pthread_barrier_wait(&bar);
    if (during) {
        malloc_trim(0); /* takes in what the thread sent */
        *during = stats().in_use_bytes;
    }
    pthread_barrier_wait(&bar);
    void *reused;
    pthread_join(t, &reused);
    pthread_barrier_destroy(&bar);
    return reused != NULL;
}

static void blocks_freed_by_another_thread_are_reused_then_sent_home(void) {
    malloc_trim(0);
    size_t before = stats().in_use_bytes, during;
    bool reused = freed_by_another_thread(64, &during); /* a cache line: such blocks are stashed */
    malloc_trim(0);
    size_t after = stats().in_use_bytes;
    printf("# in use: %zu bytes before, %zu while the freeing thread runs, %zu after it exits\n",
           before, during, after);
    CHECK(small_bad == 0);
    CHECK(reused); /* the thread's malloc took back a block it had freed */
    /* all but the few the thread stashes have come home */
    CHECKF(during <= before + 8192, "%zu bytes still counted in use", during - before);
    CHECKF(after <= before + 4096, "%zu bytes not sent back after the thread exited", after - before);
}

/* Blocks smaller than a cache line share it with their neighbours, which their owner hands out:
 * another thread that freed one must not take it back (two threads writing one line). */
static void blocks_smaller_than_a_line_go_home(void) {
    bool reused = freed_by_another_thread(16, NULL);
    CHECK(small_bad == 0);
    CHECK(!reused); /* the thread's malloc came from a page of its own */
}

int main(int argc, char **argv) {
    (void)argc;
    th_without_profile(argv); /* which block a thread's malloc takes back */
    RUN(memory_freed_after_thread_exit_goes_back);
    RUN(malloc_trim_with_orphan_heaps);
    RUN(blocks_freed_by_another_thread_are_reused_then_sent_home);
    RUN(blocks_smaller_than_a_line_go_home);
    return 0;
}
