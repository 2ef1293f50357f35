/*
 * soak — a server-shaped program that runs for minutes under an allocator, to show whether its
 * memory creeps.
 *
 * A producer thread makes requests and hands them through a queue to a pool of workers. A worker
 * checks and frees the request (made by the producer), allocates and frees scratch blocks, looks
 * the request's key up in a shared cache (an LRU map with a byte budget: hot entries live for the
 * whole run, cold ones are evicted by whichever worker needs room) and builds a response, grown
 * with realloc as a buffer being appended to, which a collector thread keeps a moment (a ring of
 * responses "being sent") and then checks and frees. So most blocks die on another thread than
 * the one that made them, and lifetimes range from microseconds to the whole run.
 *
 * The load follows a cycle of 24 equal bins that repeats: the mix of sizes drifts from small
 * blocks (the first 8 bins) to medium ones (the next 8) to large ones (the last 8), and within
 * each third the request rate goes normal, burst, normal, idle, normal, burst, burst, idle (idle:
 * the producer sleeps and the workers wait). Since the cycle repeats, the same point of two
 * cycles asks the allocator for the same thing: that is what makes two moments comparable.
 *
 * The main thread samples 96 times a cycle, at the same points of every cycle: the RSS (statm)
 * and the live bytes, what the program holds by its own count (the bytes asked for, of every
 * block not yet freed). Every INTERVAL seconds it prints one line: elapsed time, RSS, live bytes,
 * RSS/live, the peaks, the phase and the requests served per second. At the end, the verdict:
 * the first cycle is a warm-up (each phase has then been seen once, so the allocator's caches
 * hold what they will go on holding); of the rest, the RSS/live ratio of the last third against
 * the first third, taken at the points of the cycle that both thirds have samples of. Growth by
 * more than MAX_GROWTH percent (15) is creep: exit status 1. A damaged block (header or contents)
 * ends the run at once with a message naming it: exit status 2.
 *
 *   soak [-t SECONDS] [-i INTERVAL] [-w WORKERS] [-c CYCLE] [-m CACHE_MIB] [-r RATE] [-g PERCENT]
 *
 *   -t  duration, seconds (600)            -i  seconds between report lines (60)
 *   -w  worker threads (4)                 -c  cycle, seconds (120; a fifth of -t if less)
 *   -m  the cache's budget, MiB (64)       -r  requests per second at normal load (2000)
 *   -g  RSS/live growth allowed, percent (15)
 *
 * `make soak` runs it on lib/libstrata.so for 10 minutes; SOAK_TIME, SOAK_INTERVAL, SOAK_THREADS,
 * SOAK_CYCLE and SOAK_LIB (the allocator to preload; empty: glibc) change that.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- configuration ---- */

static double duration = 600, interval = 60, cycle = 0, max_growth = 15;
static unsigned workers = 4;
static size_t cache_budget = (size_t)64 << 20;
static double normal_rate = 2000;

enum { BINS = 24, SUBS = 96 };             /* per cycle: load bins, sampling points */
enum { PHASE_SMALL, PHASE_MEDIUM, PHASE_LARGE };
enum { LOAD_NORMAL, LOAD_BURST, LOAD_IDLE };
static const char *const phase_name[] = {"small", "medium", "large"};
static const int load_of[8] = {LOAD_NORMAL, LOAD_BURST, LOAD_NORMAL, LOAD_IDLE,
                               LOAD_NORMAL, LOAD_BURST, LOAD_BURST,  LOAD_IDLE};

/* ---- time ---- */

static double t_start;

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static double elapsed(void) { return mono() - t_start; }

/* Sleep until `elapsed() == t`. */
static void sleep_until(double t) {
    double abs = t_start + t;
    struct timespec ts = {(time_t)abs, (long)((abs - (double)(time_t)abs) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* Where t falls in the cycle: the bin (0..BINS-1), its phase and load, and when the bin ends. */
typedef struct {
    int bin, phase, load;
    double bin_end;
} moment;

static moment moment_at(double t) {
    double bin_len = cycle / BINS;
    double n = (double)(long)(t / bin_len); /* bins since the start */
    moment m;
    m.bin = (int)((long)n % BINS);
    m.phase = m.bin / 8;
    m.load = load_of[m.bin % 8];
    m.bin_end = (n + 1) * bin_len;
    return m;
}

/* ---- random numbers and the size mix of each phase ---- */

static uint64_t rnd(uint64_t *s) { /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}
static size_t rnd_range(uint64_t *s, size_t lo, size_t hi) { return lo + rnd(s) % (hi - lo + 1); }

typedef struct {
    unsigned below; /* of 1000; the last band of a mix has 1000 */
    size_t lo, hi;
} band;

static const band mixes[3][4] = {
    [PHASE_SMALL] = {{900, 16, 256}, {990, 257, 4096}, {1000, 4097, 65536}},
    [PHASE_MEDIUM] = {{300, 16, 256}, {800, 257, 16384}, {1000, 16385, 131072}},
    [PHASE_LARGE] = {{400, 16, 256}, {700, 257, 65536}, {950, 65537, 524288},
                     {1000, 524289, (size_t)4 << 20}},
};

/* A size from the phase's mix, at most cap. */
static size_t rnd_size(uint64_t *s, int phase, size_t cap) {
    unsigned r = (unsigned)(rnd(s) % 1000);
    const band *b = mixes[phase];
    while (r >= b->below) b++;
    size_t n = rnd_range(s, b->lo, b->hi);
    return n < cap ? n : cap;
}

/* ---- blocks: a header, a struct, contents derived from the address ---- */

/* Every block the program makes starts with this header; bytes [fixed, size) hold one byte
 * derived from the block's address, so a block written by another (overlapping it) or left
 * behind where a block used to be does not pass the check. */
typedef struct {
    uint64_t key;   /* MAGIC ^ the block's address */
    uint32_t size;  /* bytes asked for, header included */
    uint32_t fixed; /* header and the struct that follows it: not part of the contents */
} hdr;

#define MAGIC 0x50a4b10c4d00d1e5ull

static _Atomic size_t live; /* bytes asked for, of every block not yet freed */

static unsigned char fill_of(uintptr_t a) {
    return (unsigned char)((a >> 4) ^ (a >> 12) ^ (a >> 20) ^ 0x5a);
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...) {
    fflush(stdout);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "soak: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    _exit(2);
}

/* Check the contents [from, to) of a block, sampled: 64 bytes at each end and one byte in
 * every 4 KiB between; the offset of the first wrong byte, or 0 (a header's). */
static size_t contents_bad(const hdr *h, size_t from, size_t to, unsigned char v) {
    const unsigned char *c = (const unsigned char *)h;
    if (to <= from) return 0;
    size_t head = to - from > 128 ? from + 64 : to, tail = to - from > 128 ? to - 64 : to;
    for (size_t i = from; i < head; i++)
        if (c[i] != v) return i;
    for (size_t i = head; i < tail; i += 4096)
        if (c[i] != v) return i;
    for (size_t i = tail; i < to; i++)
        if (c[i] != v) return i;
    return 0;
}

static void check(const hdr *h, const char *what) {
    if (h->key != (MAGIC ^ (uintptr_t)h))
        die("%s %p: header overwritten (key %#llx)", what, (const void *)h,
            (unsigned long long)h->key);
    size_t usable = malloc_usable_size((void *)h);
    if (h->fixed < sizeof *h || h->size < h->fixed || h->size > usable)
        die("%s %p: header overwritten (size %u, struct %u, usable size %zu)", what,
            (const void *)h, h->size, h->fixed, usable);
    size_t bad = contents_bad(h, h->fixed, h->size, fill_of((uintptr_t)h));
    if (bad)
        die("%s %p of %u bytes: byte %zu is %#x, expected %#x", what, (const void *)h, h->size,
            bad, ((const unsigned char *)h)[bad], fill_of((uintptr_t)h));
}

/* A block of n bytes whose first `fixed` bytes are a struct that begins with its header. */
static void *make(size_t n, size_t fixed) {
    if (n < fixed) n = fixed;
    hdr *h = malloc(n);
    if (!h) die("malloc(%zu) returned NULL", n);
    h->key = MAGIC ^ (uintptr_t)h;
    h->size = (uint32_t)n;
    h->fixed = (uint32_t)fixed;
    memset((char *)h + fixed, fill_of((uintptr_t)h), n - fixed);
    atomic_fetch_add_explicit(&live, n, memory_order_relaxed);
    return h;
}

static void unmake(void *p, const char *what) {
    hdr *h = p;
    check(h, what);
    atomic_fetch_sub_explicit(&live, h->size, memory_order_relaxed);
    h->key = 0; /* a second free or a later use of it shows */
    free(h);
}

/* Grow a block to n bytes with realloc: what it held must come along. */
static void *grow(void *p, size_t n, const char *what) {
    hdr *h = p;
    check(h, what);
    size_t old = h->size, fixed = h->fixed;
    uintptr_t was = (uintptr_t)h; /* only an address once realloc has run */
    hdr *q = realloc(h, n);
    if (!q) die("realloc(%zu) returned NULL", n);
    size_t bad = contents_bad(q, fixed, old, fill_of(was));
    if (bad)
        die("%s %#lx: realloc from %zu to %zu bytes (now %p) lost byte %zu", what,
            (unsigned long)was, old, n, (void *)q, bad);
    q->key = MAGIC ^ (uintptr_t)q;
    q->size = (uint32_t)n;
    /* moved: its contents are those of the new address */
    if ((uintptr_t)q != was) memset((char *)q + fixed, fill_of((uintptr_t)q), old - fixed);
    memset((char *)q + old, fill_of((uintptr_t)q), n - old);
    atomic_fetch_add_explicit(&live, n - old, memory_order_relaxed);
    return q;
}

/* ---- queues between threads ---- */

typedef struct item {
    hdr h;
    struct item *next;
} item;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    item *head, *tail;
    unsigned count, cap;
    int closed;
} queue;

#define QUEUE_INIT(n) \
    {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, n, 0}

static void q_push(queue *q, item *it) {
    pthread_mutex_lock(&q->mu);
    while (q->count == q->cap) pthread_cond_wait(&q->not_full, &q->mu);
    it->next = NULL;
    if (q->tail) q->tail->next = it;
    else q->head = it;
    q->tail = it;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

/* The oldest item; NULL once the queue is closed and empty. */
static item *q_pop(queue *q) {
    pthread_mutex_lock(&q->mu);
    while (!q->count && !q->closed) pthread_cond_wait(&q->not_empty, &q->mu);
    item *it = q->head;
    if (it) {
        q->head = it->next;
        if (!q->head) q->tail = NULL;
        q->count--;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    return it;
}

static void q_close(queue *q) {
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

/* Requests are small to medium (at most 64 KiB: what a client sends); responses follow the mix. */
static queue requests = QUEUE_INIT(128), responses = QUEUE_INIT(64);

typedef struct {
    item it;
    uint64_t key;       /* what the request asks the cache for */
    uint32_t resp_size; /* how big its response is */
    int phase;
} request;

typedef struct {
    item it;
} response;

/* ---- the cache: shards of a hash map with LRU order and a byte budget ---- */

enum { SHARDS = 16, BUCKETS = 16384, KEYS = 1 << 18 };

typedef struct entry {
    hdr h;
    struct entry *chain, *newer, *older;
    uint64_t key;
} entry;

typedef struct {
    pthread_mutex_t mu;
    entry *bucket[BUCKETS];
    entry lru; /* lru.older: the most recently used; lru.newer: the least */
    size_t bytes;
} shard;

static shard shards[SHARDS];

static void lru_unlink(entry *e) {
    e->newer->older = e->older;
    e->older->newer = e->newer;
}
static void lru_front(shard *sh, entry *e) {
    e->newer = &sh->lru;
    e->older = sh->lru.older;
    sh->lru.older->newer = e;
    sh->lru.older = e;
}

static void cache_remove(shard *sh, entry *e, const char *why) {
    entry **pp = &sh->bucket[e->key / SHARDS % BUCKETS];
    while (*pp != e) pp = &(*pp)->chain;
    *pp = e->chain;
    lru_unlink(e);
    sh->bytes -= e->h.size;
    unmake(e, why);
}

/* A worker's visit to the cache: a hit is checked and moved to the front (and now and then
 * replaced by a fresh value); a miss is often filled, evicting the least recently used entries
 * beyond the budget. */
static void cache_visit(uint64_t key, int phase, uint64_t *s) {
    shard *sh = &shards[key % SHARDS];
    size_t budget = cache_budget / SHARDS;
    pthread_mutex_lock(&sh->mu);
    entry *e = sh->bucket[key / SHARDS % BUCKETS];
    while (e && e->key != key) e = e->chain;
    if (e) {
        check(&e->h, "cache entry, on a hit");
        lru_unlink(e);
        lru_front(sh, e);
        if (rnd(s) % 8 == 0) {
            cache_remove(sh, e, "cache entry, replaced");
            e = NULL;
        }
    } else if (rnd(s) % 2) { /* a miss not worth caching */
        pthread_mutex_unlock(&sh->mu);
        return;
    }
    if (!e) {
        e = make(sizeof *e + rnd_size(s, phase, budget / 8), sizeof *e);
        e->key = key;
        e->chain = sh->bucket[key / SHARDS % BUCKETS];
        sh->bucket[key / SHARDS % BUCKETS] = e;
        lru_front(sh, e);
        sh->bytes += e->h.size;
        while (sh->bytes > budget) cache_remove(sh, sh->lru.newer, "cache entry, evicted");
    }
    pthread_mutex_unlock(&sh->mu);
}

static void cache_init(void) {
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&shards[i].mu, NULL);
        shards[i].lru.newer = shards[i].lru.older = &shards[i].lru;
    }
}

static void cache_clear(void) {
    for (int i = 0; i < SHARDS; i++)
        while (shards[i].lru.newer != &shards[i].lru)
            cache_remove(&shards[i], shards[i].lru.newer, "cache entry, at the end");
}

/* ---- the threads ---- */

static _Atomic int stopping;
static _Atomic uint64_t served;

/* Makes requests at the rate the moment asks for: paced at normal load, as fast as the workers
 * take them in a burst (the queue's bound holds it back), none while idle. */
static void *producer(void *unused) {
    (void)unused;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int bin = -1;
    double bin_start = 0;
    unsigned long sent = 0;
    while (!atomic_load(&stopping)) {
        double t = elapsed();
        moment m = moment_at(t);
        if (m.bin != bin) {
            bin = m.bin;
            bin_start = t;
            sent = 0;
        }
        if (m.load == LOAD_IDLE) {
            sleep_until(m.bin_end < t + 0.05 ? m.bin_end : t + 0.05);
            continue;
        }
        if (m.load == LOAD_NORMAL && (double)sent >= normal_rate * (t - bin_start)) {
            sleep_until(t + 0.001);
            continue;
        }
        /* keys skewed towards small ones: hot entries stay cached, cold ones come and go */
        uint64_t key = rnd(&s) % (1 + rnd(&s) % KEYS);
        request *rq = make(sizeof *rq + rnd_size(&s, m.phase, 65536), sizeof *rq);
        rq->key = key;
        rq->phase = m.phase;
        rq->resp_size = (uint32_t)rnd_size(&s, m.phase, (size_t)4 << 20);
        q_push(&requests, &rq->it);
        sent++;
    }
    q_close(&requests);
    return NULL;
}

static void *worker(void *arg) {
    uint64_t s = 0x2545F4914F6CDD1Dull * ((uintptr_t)arg + 1);
    item *it;
    while ((it = q_pop(&requests))) {
        request *rq = (request *)it;
        uint64_t key = rq->key;
        int phase = rq->phase;
        size_t resp_size = rq->resp_size;
        unmake(rq, "request, in a worker");

        /* scratch blocks: half freed at once (in a random order), the rest after the cache */
        enum { SCRATCH = 8 };
        void *scratch[SCRATCH];
        unsigned n = 2 + (unsigned)(rnd(&s) % (SCRATCH - 1));
        for (unsigned i = 0; i < n; i++)
            scratch[i] = make(sizeof(hdr) + rnd_size(&s, phase, 256 << 10), sizeof(hdr));
        for (unsigned i = 0; i < n / 2; i++) {
            unsigned k = i + (unsigned)(rnd(&s) % (n - i));
            void *t = scratch[k];
            scratch[k] = scratch[i];
            scratch[i] = t;
            unmake(scratch[i], "scratch block");
        }
        cache_visit(key, phase, &s);
        for (unsigned i = n / 2; i < n; i++) unmake(scratch[i], "scratch block");

        /* the response: allocated at its size, or appended to until it is that big */
        response *rs;
        if (rnd(&s) % 2) {
            rs = make(sizeof *rs + resp_size, sizeof *rs);
        } else {
            rs = make(sizeof *rs + 64, sizeof *rs);
            for (size_t have = 64; have < resp_size;) {
                have = have * 2 < resp_size ? have * 2 : resp_size;
                rs = grow(rs, sizeof *rs + have, "response being built");
            }
        }
        q_push(&responses, &rs->it);
        atomic_fetch_add_explicit(&served, 1, memory_order_relaxed);
    }
    return NULL;
}

/* Keeps the last few responses a moment ("being sent"), then frees them. */
static void *collector(void *unused) {
    (void)unused;
    enum { SENDING = 16 };
    item *ring[SENDING] = {0};
    unsigned next = 0;
    item *it;
    while ((it = q_pop(&responses))) {
        if (ring[next]) unmake(ring[next], "response, in the collector");
        check(&it->h, "response, as it arrives");
        ring[next] = it;
        next = (next + 1) % SENDING;
    }
    for (unsigned i = 0; i < SENDING; i++)
        if (ring[i]) unmake(ring[i], "response, in the collector");
    return NULL;
}

/* ---- measurement ---- */

static long rss_kb(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = -1;
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static long hwm_kb(void) { /* the peak RSS (VmHWM) */
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &kb) == 1) break;
    fclose(f);
    return kb;
}

typedef struct {
    double t;
    int sub; /* which of the cycle's SUBS points */
    long rss_kb;
    size_t live;
} sample;

/* Figures for the report lines, into a caller's buffer. */
typedef char figure[32];
static const char *mib(double bytes, figure buf) {
    snprintf(buf, sizeof(figure), "%.1f MiB", bytes / 1048576.0);
    return buf;
}
static const char *clock_of(double t, figure buf) {
    snprintf(buf, sizeof(figure), "%ld:%02ld", (long)t / 60, (long)t % 60);
    return buf;
}

/* The verdict over the samples: 0 (no creep), 1 (creep), or 0 with a note when the run is too
 * short to tell. */
static int verdict(const sample *sm, size_t n, double end) {
    /* warm-up: the first cycle, if it leaves at least a cycle to compare */
    double warm = end >= 2 * cycle ? cycle : 0;
    double third = (end - warm) / 3;
    double a0 = warm, a1 = warm + third, b0 = end - third;
    double sum_a[SUBS] = {0}, sum_b[SUBS] = {0};
    unsigned n_a[SUBS] = {0}, n_b[SUBS] = {0};
    for (size_t i = 0; i < n; i++) {
        if (sm[i].live < ((size_t)1 << 20)) continue; /* a ratio over almost nothing */
        double r = (double)sm[i].rss_kb * 1024 / (double)sm[i].live;
        if (sm[i].t >= a0 && sm[i].t < a1) sum_a[sm[i].sub] += r, n_a[sm[i].sub]++;
        if (sm[i].t >= b0) sum_b[sm[i].sub] += r, n_b[sm[i].sub]++;
    }
    double mean_a = 0, mean_b = 0;
    unsigned points = 0;
    for (int k = 0; k < SUBS; k++)
        if (n_a[k] && n_b[k]) {
            mean_a += sum_a[k] / n_a[k];
            mean_b += sum_b[k] / n_b[k];
            points++;
        }
    figure c0, c1, c2, c3;
    if (points < SUBS / 8) {
        printf("soak: verdict: none; the first and last thirds share %u points of the cycle "
               "(run longer, or with a shorter -c)\n", points);
        return 0;
    }
    mean_a /= points;
    mean_b /= points;
    double growth = (mean_b / mean_a - 1) * 100;
    int creeps = growth > max_growth;
    printf("soak: verdict: RSS/live %.3f in the last third (%s-%s) against %.3f in the first "
           "(%s-%s, after a warm-up of %.0f s), at %u points of the cycle: %+.1f%% (limit "
           "%+.0f%%): %s\n", mean_b, clock_of(b0, c0), clock_of(end, c1), mean_a,
           clock_of(a0, c2), clock_of(a1, c3), warm, points, growth, max_growth,
           creeps ? "RSS CREEPS" : "no creep");
    return creeps;
}

static void usage(const char *prog) {
    fprintf(stderr, "usage: %s [-t SECONDS] [-i INTERVAL] [-w WORKERS] [-c CYCLE] [-m CACHE_MIB] "
            "[-r RATE] [-g PERCENT]\n", prog);
    exit(2);
}

int main(int argc, char **argv) {
    int opt;
    while ((opt = getopt(argc, argv, "t:i:w:c:m:r:g:")) != -1) {
        double v = atof(optarg);
        switch (opt) {
        case 't': duration = v; break;
        case 'i': interval = v; break;
        case 'w': workers = (unsigned)v; break;
        case 'c': cycle = v; break;
        case 'm': cache_budget = (size_t)(v * 1048576); break;
        case 'r': normal_rate = v; break;
        case 'g': max_growth = v; break;
        default: usage(argv[0]);
        }
    }
    if (optind != argc || duration < 1 || interval <= 0 || workers < 1 || workers > 256 ||
        cycle < 0 || cache_budget < ((size_t)1 << 20) || normal_rate <= 0)
        usage(argv[0]);
    /* 2 minutes, or a fifth of a shorter run, so that it sees 5 cycles; a bin at least 0.5 s */
    if (cycle == 0) cycle = duration / 5 < 120 ? duration / 5 : 120;
    if (cycle < 12) cycle = 12;

    const char *lib = getenv("LD_PRELOAD");
    printf("soak: %.0f s on %s, %u workers, a cycle of %.0f s (small, medium, large blocks), "
           "cache budget %zu MiB, normal load %.0f requests/s\n", duration,
           lib && *lib ? lib : "the C library's malloc", workers, cycle, cache_budget >> 20,
           normal_rate);
    fflush(stdout);

    cache_init();
    t_start = mono();
    pthread_t prod, coll, *work = calloc(workers, sizeof *work);
    if (!work) die("calloc of %u threads failed", workers);
    if (pthread_create(&prod, NULL, producer, NULL) || pthread_create(&coll, NULL, collector, NULL))
        die("pthread_create failed");
    for (unsigned i = 0; i < workers; i++)
        if (pthread_create(&work[i], NULL, worker, (void *)(uintptr_t)i)) die("pthread_create failed");

    size_t cap = (size_t)(duration / (cycle / SUBS)) + 2, n = 0;
    sample *sm = calloc(cap, sizeof *sm);
    if (!sm) die("calloc of %zu samples failed", cap);
    double sub_len = cycle / SUBS;
    unsigned long k = 0; /* the next sample: at (k + 0.5) sub_len */
    double next_report = interval, last_report = 0;
    uint64_t served_then = 0;
    size_t peak_live = 0;
    for (;;) {
        double t_sample = ((double)k + 0.5) * sub_len;
        double t = t_sample < next_report ? t_sample : next_report;
        if (t > duration) t = duration;
        sleep_until(t);
        long rss = rss_kb();
        size_t lv = atomic_load(&live);
        if (lv > peak_live) peak_live = lv;
        if (t == t_sample && t < duration && n < cap) {
            sm[n++] = (sample){t, (int)(k % SUBS), rss, lv};
            k++;
        }
        if (t == next_report || t >= duration) {
            uint64_t now_served = atomic_load(&served);
            figure c, r, l, pr, pl;
            printf("soak: %6s  rss %10s  live %10s  rss/live %5.2f  peak rss %10s  peak live "
                   "%10s  %-6s  %6.0f requests/s\n", clock_of(t, c), mib((double)rss * 1024, r),
                   mib((double)lv, l), lv ? (double)rss * 1024 / (double)lv : 0,
                   mib((double)hwm_kb() * 1024, pr), mib((double)peak_live, pl),
                   phase_name[moment_at(t).phase],
                   (double)(now_served - served_then) / (t - last_report));
            fflush(stdout);
            served_then = now_served;
            last_report = t;
            next_report += interval;
        }
        if (t >= duration) break;
    }

    /* wind down: the producer stops, the workers finish the queue, the collector the responses */
    atomic_store(&stopping, 1);
    pthread_join(prod, NULL);
    for (unsigned i = 0; i < workers; i++) pthread_join(work[i], NULL);
    q_close(&responses);
    pthread_join(coll, NULL);
    cache_clear();
    free(work);
    printf("soak: %llu requests served; every block checked and freed (%zu bytes still counted "
           "live)\n", (unsigned long long)atomic_load(&served), atomic_load(&live));
    int creeps = verdict(sm, n, duration);
    free(sm);
    if (atomic_load(&live) != 0) die("%zu bytes unaccounted for at the end", atomic_load(&live));
    return creeps;
}
