/*
 * exchange — many more threads than cores passing blocks to each other, the shape of mimalloc's
 * test-stress: every round creates --threads threads afresh and joins them (thread churn: each
 * round's threads start with no cache and leave their heaps behind). Each thread runs STEPS
 * steps, several scheduler time slices' worth, so that on a machine with few cores threads are
 * preempted in the middle of their work, not run one after another. The number of threads started
 * over all rounds is fixed (THREAD_RUNS at --scale 1), so 32 and 64 threads do the same work in
 * 20 and 10 rounds: what differs is how many are alive at once. A step draws one of
 *   - a new block into a random one of the thread's local places; what was there is freed;
 *   - a block (a local one, or a new one) put into a random slot of a shared array with an atomic
 *     exchange: the block that was there, made by another thread and perhaps in an earlier round
 *     by a thread long gone, is taken over and freed at once or kept locally for a while;
 *   - a local block freed.
 * Sizes: mostly small, some medium, a rare one of about 1 MiB. The slots keep their blocks from
 * one round to the next; a thread frees its local blocks before it ends.
 *
 * Every block carries a tag (its address mixed with a unique id) at both ends, its size, and one
 * word derived from the tag every 4 KiB between (so that big blocks are resident, as real data
 * would be, at a word per page); every block is checked before it is freed. A local place
 * remembers its block's tag; a slot holds the top 16 bits of it above the address, so that a
 * block handed out twice by a broken allocator is caught wherever it travels.
 *
 * `ops` counts the malloc calls; `time` covers every round, thread creation included.
 */
#include <stdbool.h>

#include "../workload.h"

enum {
    SLOTS = 1024,             /* the shared array */
    KEEP = 32,                /* local places per thread */
    STEPS = 15000,            /* per thread: 2 to 3 ms of one core's time under glibc */
    THREAD_RUNS = 640,        /* threads started over all rounds at --scale 1 (scaled) */
    PAGE = 4096,              /* a pattern word every PAGE bytes of a big block */
    MAX_SIZE = 1280 << 10,
};
#define ADDR_BITS 48
#define ADDR_MASK ((UINT64_C(1) << ADDR_BITS) - 1)

/* A slot: the block's address, and above it the top bits of its tag. 0: empty. */
static _Atomic uint64_t slots[SLOTS];

static unsigned round_no;        /* set before a round's threads start */
static _Atomic uint64_t mallocs; /* summed by each thread as it ends */
static _Atomic int bad;
static char why[256]; /* the first failure, written by the thread that set `bad` */

__attribute__((format(printf, 1, 2))) static void broken(const char *fmt, ...) {
    if (atomic_exchange(&bad, 1)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
}

typedef struct {
    uint64_t *p;
    uint64_t tag;
} held;

/* Mostly small, some medium, a rare one of about 1 MiB: a malloc threshold is crossed now and
 * then, and big blocks are freed by other threads too. */
static size_t draw_size(uint64_t *s) {
    unsigned r = (unsigned)(wl_rnd(s) % 1000);
    if (r < 900) return wl_rnd_range(s, 16, 512);
    if (r < 990) return wl_rnd_range(s, 513, 16384);
    if (r < 999) return wl_rnd_range(s, 16385, 131072);
    return wl_rnd_range(s, 768 << 10, MAX_SIZE);
}

static void fill(uint64_t *p, size_t n, uint64_t tag) {
    wl_stamp(p, n, tag);
    for (size_t off = PAGE; off + 16 <= n; off += PAGE) p[off / 8] = tag ^ off;
}

/* The block at p, which should carry `tag`: intact? (A block is at least 16 bytes: its head.) */
static bool intact(const uint64_t *p, uint64_t tag) {
    wl_head h;
    memcpy(&h, p, sizeof h);
    if (h.tag != tag || h.size < 16 || h.size > MAX_SIZE || !wl_stamped(p, h.size, tag))
        return false;
    for (size_t off = PAGE; off + 16 <= h.size; off += PAGE)
        if (p[off / 8] != (tag ^ off)) return false;
    return true;
}

static held make(uint64_t *s, uint64_t *id) {
    size_t n = draw_size(s);
    held b = {malloc(n), 0};
    if (!b.p) {
        broken("malloc(%zu) returned NULL", n);
        return b;
    }
    if ((uintptr_t)b.p >> ADDR_BITS) {
        broken("%p: an address above 2^%d leaves no room for the check bits", (void *)b.p, ADDR_BITS);
        return (held){NULL, 0};
    }
    b.tag = (uint64_t)(uintptr_t)b.p ^ (*id)++ * 0x9E3779B97F4A7C15ULL;
    fill(b.p, n, b.tag);
    return b;
}

static void drop(held b, const char *where) {
    if (!b.p) return;
    if (!intact(b.p, b.tag)) broken("round %u: a block %s at %p was overwritten", round_no, where,
                                    (void *)b.p);
    else free(b.p);
}

/* A block taken from a slot: only its tag's top bits are known. */
static held taken(uint64_t v) {
    held b = {(uint64_t *)(uintptr_t)(v & ADDR_MASK), 0};
    memcpy(&b.tag, b.p, sizeof b.tag);
    if ((b.tag & ~ADDR_MASK) != (v & ~ADDR_MASK) || !intact(b.p, b.tag)) {
        broken("round %u: a block taken from a slot at %p was overwritten", round_no, (void *)b.p);
        return (held){NULL, 0};
    }
    return b;
}

static void *worker(void *arg) {
    uint64_t me = (uintptr_t)arg, s = (me * 0x2545F4914F6CDD1DULL) ^ ((uint64_t)round_no << 32) ^ 1;
    uint64_t id = (uint64_t)round_no << 40 | me << 24, first = id;
    held keep[KEEP] = {{0}};
    for (uint64_t i = 0; i < STEPS && !atomic_load_explicit(&bad, memory_order_relaxed);
         i++) {
        uint64_t r = wl_rnd(&s);
        unsigned k = (unsigned)(r % KEEP), op = (unsigned)((r >> 8) % 100);
        if (op < 40) { /* a new local block */
            drop(keep[k], "kept locally");
            keep[k] = make(&s, &id);
        } else if (op < 80) { /* publish one, take over another */
            held b = keep[k].p ? keep[k] : make(&s, &id);
            keep[k] = (held){NULL, 0};
            if (!b.p) break;
            uint64_t v = (uint64_t)(uintptr_t)b.p | (b.tag & ~ADDR_MASK);
            uint64_t old = atomic_exchange(&slots[(r >> 20) % SLOTS], v);
            if (!old) continue;
            held o = taken(old);
            if (r >> 63) keep[k] = o; /* freed later, perhaps after its maker's round */
            else drop(o, "taken from a slot");
        } else {
            drop(keep[k], "kept locally");
            keep[k] = (held){NULL, 0};
        }
    }
    for (unsigned k = 0; k < KEEP; k++) drop(keep[k], "kept locally, at its thread's end");
    mallocs += id - first;
    return NULL;
}

int main(int argc, char **argv) {
    wl_args a = wl_parse(argc, argv);
    if (a.threads > 512) wl_fail("at most 512 threads");
    uint64_t rounds = wl_scaled(THREAD_RUNS, a.scale) / (uint64_t)a.threads;
    if (rounds < 1) rounds = 1;
    double t0 = wl_now();
    for (uint64_t r = 1; r <= rounds && !bad; r++) {
        round_no = (unsigned)r; /* pthread_create orders this write before the threads read it */
        wl_threads(a.threads, worker);
    }
    double secs = wl_now() - t0;
    for (unsigned i = 0; i < SLOTS && !bad; i++) {
        uint64_t v = atomic_exchange(&slots[i], 0);
        if (v) drop(taken(v), "left in a slot");
    }
    if (bad) wl_fail("%s", why);
    wl_result(secs, mallocs, NULL);
    return 0;
}
