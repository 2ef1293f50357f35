/*
 * stress.c — the shape of mimalloc's test-stress: many more threads than cores, created afresh
 * every round, passing blocks to each other through a shared array of slots.
 *
 * A round starts THREADS threads and joins them all (thread churn: the next round's threads
 * adopt the heaps the exited ones left in strata's pool). Each thread runs ITER steps; a step
 *   - allocates a block (mostly small, some medium up to 64 KiB, a rare one of about 1 MiB),
 *     writes its tag (size, and an id: round, thread, number) and a pattern derived from the
 *     block's address and id, and keeps it in a random one of its local places: what was there
 *     is checked and freed, so blocks live a random while in their thread;
 *   - or moves one of its local blocks into a random slot of the shared array with an atomic
 *     exchange: the block that was there, made by another thread (maybe by one of an earlier
 *     round, long exited), is now this thread's; it is checked, then freed at once or kept
 *     locally for a while;
 *   - or checks and frees one of its local blocks.
 * A thread frees its remaining local blocks before it exits; the slots keep theirs into the next
 * round, where other threads take them over and free them.
 *
 * What must hold: every block is intact whenever it is checked (a failure names the block: its
 * id, address, size and the first wrong word), nothing crashes, and memory does not creep: after
 * round 1 and after the last round the main thread empties the slots (checking each block) and
 * reads the RSS, then calls malloc_trim(0) and reads it again; the last readings must be within
 * 10% of the first, plus what strata's caches may hold by design (stress_run says how much).
 *
 * `make test` runs it at 32 and at 64 threads in a few seconds (the point is many more threads
 * than cores, preempted in the middle of a step). Longer or other shapes:
 *   STRESS_SCALE=10 build/tests/rel/stress           ten times the rounds of each run
 *   build/tests/rel/stress THREADS ROUNDS [ITER]     one run of that shape
 * The program calls nothing of strata's own API, so it runs on any malloc:
 *   cc -std=gnu11 -O1 -pthread -Iinclude -Itests tests/unit/stress.c -o /tmp/stress-plain
 *   LD_PRELOAD=/path/to/other/malloc.so /tmp/stress-plain 64 50
 */
#include <time.h>

#include "harness.h"
#include "stress.h"
#include "strata.h"

/* strata's own figures when it is the allocator (the program runs on any malloc). */
/* Block sizes: mostly small, some medium up to 64 KiB, a rare one of about 1 MiB (which crosses
 * the mmap threshold until it rises, so huge blocks and large spans both come and go). Every
 * block holds at least its tag. */
static const size_band sizes[] = {{900, 16, 512},
                                  {985, 513, 8192},
                                  {998, 8193, 65536},
                                  {1000, (size_t)768 << 10, (size_t)1280 << 10}};

enum { SLOTS = 1024, KEEP = 64 };
static _Atomic(uint64_t *) slots[SLOTS];

/* ---- a block's tag and pattern ---- */

/* The first two words of every block: its size and id (round << 40 | thread << 24 | number). */
typedef struct {
    uint64_t size, id;
} tag;

static uint64_t id_key(uint64_t id) { return id * 0x9E3779B97F4A7C15ull; }

/* The pattern's word offsets (in words): all of a block up to 4 KiB; of a bigger one the first
 * and last KiB and one word at every 4 KiB boundary between, so that every page is written (and
 * resident, as a program's data would be) at the cost of a word per page. */
static size_t next_word(size_t w, size_t words) {
    if (words <= 512 || w + 1 < 128 || w + 1 >= words - 128) return w + 1;
    size_t page = (w + 512) & ~(size_t)511;
    return page < words - 128 ? page : words - 128;
}

/* Word w of a block at address a with id key k is (a + 8w) ^ k: a word that another block wrote
 * (another address, another id) or that a block left behind where it used to be, does not pass. */
static void block_fill(uint64_t *b, size_t n, uint64_t id) {
    b[0] = n;
    b[1] = id;
    uint64_t k = id_key(id);
    for (size_t w = 2, words = n / 8; w < words; w = next_word(w, words))
        b[w] = ((uintptr_t)(b + w)) ^ k;
}

/* 1 if b is intact; otherwise 0, after fail() with what is wrong and where (when: which check). */
static int block_ok(uint64_t *b, const char *when) {
    tag t = {b[0], b[1]};
    size_t usable = malloc_usable_size(b);
    if (t.size < sizeof t || t.size > usable) {
        fail("block %p (%s): tag overwritten: size %#llx, id %#llx, usable size %zu", (void *)b,
             when, (unsigned long long)t.size, (unsigned long long)t.id, usable);
        return 0;
    }
    uint64_t k = id_key(t.id);
    for (size_t w = 2, words = t.size / 8; w < words; w = next_word(w, words)) {
        uint64_t want = ((uintptr_t)(b + w)) ^ k;
        if (b[w] != want) {
            fail("block %p (%s): round %llu thread %llu block #%llu, %llu bytes: word at offset "
                 "%zu is %#llx, expected %#llx", (void *)b, when,
                 (unsigned long long)(t.id >> 40), (unsigned long long)((t.id >> 24) & 0xffff),
                 (unsigned long long)(t.id & 0xffffff), (unsigned long long)t.size, w * 8,
                 (unsigned long long)b[w], (unsigned long long)want);
            return 0;
        }
    }
    return 1;
}

/* ---- one thread of a round ---- */

typedef struct {
    unsigned round, index, iter;
    uint64_t seed;
} worker;

static uint64_t *new_block(worker *wk, uint64_t *s, unsigned *number) {
    size_t n = rnd_size_from(s, sizes);
    uint64_t *b = malloc(n);
    if (!b) {
        fail("round %u thread %u: malloc(%zu) returned NULL", wk->round, wk->index, n);
        return NULL;
    }
    block_fill(b, n, (uint64_t)wk->round << 40 | (uint64_t)wk->index << 24 | (*number)++);
    return b;
}

/* Check and free a block; 0 if it was damaged. */
static int drop(uint64_t *b, const char *when) {
    if (!b) return 1;
    if (!block_ok(b, when)) return 0;
    free(b);
    return 1;
}

static void *stress_thread(void *argp) {
    worker *wk = argp;
    uint64_t s = wk->seed;
    uint64_t *keep[KEEP] = {0};
    unsigned number = 0;
    for (unsigned i = 0; i < wk->iter; i++) {
        if ((i & 255) == 0 && atomic_load_explicit(&g_failed, memory_order_relaxed)) break;
        unsigned k = (unsigned)(rnd(&s) % KEEP), op = (unsigned)(rnd(&s) % 100);
        if (op < 50) {
            /* a new block for a while; what was in its place goes */
            uint64_t *b = new_block(wk, &s, &number);
            if (!b || !drop(keep[k], "kept by its thread")) break;
            keep[k] = b;
        } else if (op < 80) {
            /* publish a block; take over the one in the slot */
            uint64_t *b = keep[k] ? keep[k] : new_block(wk, &s, &number);
            if (!b) break;
            keep[k] = NULL;
            unsigned slot = (unsigned)(rnd(&s) % SLOTS);
            uint64_t *old = atomic_exchange(&slots[slot], b);
            if (!old) continue;
            if (!block_ok(old, "taken over from a slot")) break;
            if (rnd(&s) % 3 == 0) keep[k] = old; /* freed later, perhaps after its thread exits */
            else free(old);
        } else {
            if (!drop(keep[k], "kept by its thread")) break;
            keep[k] = NULL;
        }
    }
    for (unsigned k = 0; k < KEEP; k++)
        if (!drop(keep[k], "kept by its thread, at its exit")) break;
    return NULL;
}

/* ---- rounds ---- */

typedef struct {
    unsigned threads, rounds, iter;
} shape;

/* The main thread frees the blocks the slots hold, made by threads that have exited. */
static void empty_slots(void) {
    for (unsigned i = 0; i < SLOTS && !atomic_load(&g_failed); i++)
        drop(atomic_exchange(&slots[i], NULL), "left in a slot at the end of a round");
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* RSS in KiB with every block freed: as the allocator left it (kept), and after malloc_trim(0)
 * (trimmed: what it could not give back when asked). */
typedef struct {
    long kept, trimmed;
    long design; /* of kept, what strata holds without a block in it by design */
} reading;

static reading measure(void) {
    empty_slots();
    reading m;
    m.kept = th_rss_kb();
    m.design = kept_by_design_kb();
    malloc_trim(0);
    m.trimmed = th_rss_kb();
    return m;
}

/* Run the rounds; 0, or -1 after fail(). *first and *last: measured after round 1 and the last. */
static int run_rounds(shape sh, uint64_t seed, reading *first, reading *last, int verbose) {
    pthread_t *t = calloc(sh.threads, sizeof *t);
    worker *w = calloc(sh.threads, sizeof *w);
    if (!t || !w) {
        fail("calloc of %u threads' state failed", sh.threads);
        free(t), free(w);
        return -1;
    }
    unsigned every = sh.rounds >= 10 ? sh.rounds / 10 : 1;
    for (unsigned r = 0; r < sh.rounds && !atomic_load(&g_failed); r++) {
        unsigned started = 0;
        for (unsigned i = 0; i < sh.threads; i++, started++) {
            w[i] = (worker){r + 1, i, sh.iter, seed * 1000003 + (uint64_t)r * 4099 + i + 1};
            if (pthread_create(&t[i], NULL, stress_thread, &w[i]) != 0) {
                fail("round %u: pthread_create failed at thread %u", r + 1, i);
                break;
            }
        }
        for (unsigned i = 0; i < started; i++) pthread_join(t[i], NULL);
        if (r == 0) *first = measure();
        if (r + 1 == sh.rounds) *last = measure();
        if (verbose && (r + 1) % every == 0) {
            printf("#   round %u: RSS %ld KiB, the slots full\n", r + 1, th_rss_kb());
            fflush(stdout);
        }
    }
    empty_slots();
    free(t), free(w);
    return atomic_load(&g_failed) ? -1 : 0;
}

static unsigned scale = 1; /* STRESS_SCALE: rounds multiplied by it */

static void stress_run(shape sh, uint64_t seed) {
    reset_failures();
    sh.rounds *= scale;
    reading first = {0, 0, 0}, last = {0, 0, 0};
    double t0 = seconds();
    int rc = run_rounds(sh, seed, &first, &last, scale > 1);
    double secs = seconds() - t0;
    CHECKF(rc == 0, "%s", g_msg);
    printf("# %u threads, %u rounds of %u steps: %.2f s; RSS with every block freed, after round "
           "1: %ld KiB (%ld after malloc_trim), after round %u: %ld KiB (%ld)\n", sh.threads,
           sh.rounds, sh.iter, secs, first.kept, first.trimmed, sh.rounds, last.kept,
           last.trimmed);
    /* No creep: the same work leaves the same memory behind, whether it ran once or many times.
     * As the allocator left it, with every block freed: within 10% of round 1's figure, plus what
     * strata keeps resident for reuse by design (kept_by_design_kb), of which how much is filled
     * when the last block goes depends on which preempted thread freed what last, from none to
     * all of it, and 4 MiB of slack. Heaps of exited threads
     * that never give back their pages (a page kept for a running thread stayed kept once its
     * thread was gone: 150 MiB after round 1, 300 MiB after round 10) are what this catches.
     * And after malloc_trim(0), what it could not give back when asked — a leak, pages pinned by
     * lost blocks, heaps never collected — within 10% + 2 MiB: trimmed figures are a few MiB,
     * where a percentage means nothing (thread stacks glibc keeps cached, stdio's buffers, the
     * kernel's RSS counters lagging by a batch of pages per CPU). */
    SKIP_IF_EMULATED(TH_EMU_RSS); /* the rounds ran, and their blocks were checked */
    long limit = first.kept + first.kept / 10 + last.design + 4096;
    CHECKF(last.kept <= limit, "RSS crept from %ld KiB after round 1 to %ld KiB after round %u "
           "(limit %ld KiB)", first.kept, last.kept, sh.rounds, limit);
    limit = first.trimmed + first.trimmed / 10 + 2048;
    CHECKF(last.trimmed <= limit, "RSS after malloc_trim crept from %ld KiB after round 1 to %ld "
           "KiB after round %u (limit %ld KiB)", first.trimmed, last.trimmed, sh.rounds, limit);
}

static void stress_32_threads(void) { stress_run((shape){32, 16, 4000}, 32); }
static void stress_64_threads(void) { stress_run((shape){64, 10, 3000}, 64); }

static shape given; /* from the command line */
static void stress_given(void) { stress_run(given, 7); }

int main(int argc, char **argv) {
    const char *env = getenv("STRESS_SCALE");
    if (env && atoi(env) > 0) scale = (unsigned)atoi(env);
    printf("# stress: threads churned every round, blocks passed through %d slots, on %ld cores\n",
           SLOTS, sysconf(_SC_NPROCESSORS_ONLN));
    fflush(stdout);
    if (argc > 1) {
        given = (shape){(unsigned)atoi(argv[1]), argc > 2 ? (unsigned)atoi(argv[2]) : 0,
                        argc > 3 ? (unsigned)atoi(argv[3]) : 4000};
        /* the id of a block has 24 bits for its round and number, 16 for its thread */
        if (!given.threads || given.threads > 4096 || !given.rounds ||
            (uint64_t)given.rounds * scale >= 1u << 24 || !given.iter || given.iter >= 1u << 24) {
            fprintf(stderr, "usage: %s [THREADS ROUNDS [ITER]]\n", argv[0]);
            return 2;
        }
        RUN(stress_given);
        return 0;
    }
    RUN(stress_32_threads);
    RUN(stress_64_threads);
    return 0;
}
