/*
 * profile.c — the heap profile: which call stacks hold the process's memory, kept always, at a
 * cost no one notices, where `strata profile PID` reads it from outside.
 *
 * Sampling. Each heap counts the bytes that its refills make available (a page's free list
 * swapped in or extended, a block taken from its stash, a large block's span): the fast paths
 * count nothing. When the count passes the next point of a Poisson process over bytes (gaps drawn
 * from an exponential of mean profile_rate, so every byte has the same chance), the request that
 * made the refill is a sample (h->profile_due, served by core/alloc.c). It stands for the bytes
 * between points: each point the mean gap's bytes (profile_rate), that is that many over the block
 * size blocks of its stack and size. Huge blocks (a mapping of their own, already a system call)
 * are all recorded, each as itself.
 *
 * A sample costs an unwind (glibc's backtrace: a few µs). A thread that allocates a gigabyte a
 * second would spend a few percent of its time there, so each heap keeps what its samples took
 * against profile_cost percent of its time (budget below) and draws longer gaps while past it.
 *
 * Knowing a sampled block at free, with nothing on the fast path: sampled blocks of the size
 * classes come from the profile heap, a heap that no thread owns, used under sx_profile_lock. Any
 * free of one is then a free of another heap's block, which takes the remote path (remote.c);
 * there the block leaves the profile and goes back to its page. A large block's free always takes
 * a slow path (its page's last block goes: heap.c), so a sampled one stays where it is and its page
 * carries a flag; so does a recorded huge block's header.
 *
 * Records. The stacks and the live samples are tables in a part of the statistics file (share.c,
 * format in support/statfile.h), made at the first sample: a process that never takes one pays
 * nothing. Writers hold the lock and make the generation odd while they write, so a reader in
 * another process takes a copy that was whole. The tables are bounded (1.7 MiB, touched as they
 * fill: in proportion to the stacks and live samples); a sample that finds one full is counted as
 * dropped. A process with no statistics file
 * keeps them in private memory, for profile_dump.
 *
 * profile_dump=PATH: at exit, the process that read the options (not its forked children) writes
 * its profile to PATH: "STRAPDMP", the part's size as 8 bytes, the part, then /proc/self/maps.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "heap.h"

size_t sx_profile_rate;
_Atomic(sx_heap *) sx_profile_heap;
sx_lock_t sx_profile_lock = PTHREAD_MUTEX_INITIALIZER;

static sx_profile_header *area;
static sx_profile_stack *stacks;
static sx_profile_live *live;
static _Atomic int made; /* 0 not yet, 1 being made, 2 made, 3 failed */
static pid_t options_pid;
static uint64_t start_ns;
static __thread bool tls_busy __attribute__((tls_model("initial-exec")));
static __thread uint64_t tls_t0 __attribute__((tls_model("initial-exec"))); /* the sample's start */

void sx_profile_init(void) {
    sx_profile_rate = sx_opt.profile_rate;
    options_pid = getpid();
    start_ns = sx_now_ns();
}

/* ---- when a sample is due ---- */

/* An exponential gap of mean profile_rate: -ln(u) * rate for u uniform in (0, 1], with ln from
 * u = 2^k * m / 2^53, m in [1, 2), and ln m = 2 atanh((m - 1) / (m + 1)) by its series (within
 * 1e-5): no libm. */
static int64_t gap(uint64_t *rng, uint64_t mean) {
    uint64_t v = (sx_xorshift(rng) >> 11) + 1; /* 1 .. 2^53 */
    int k = 63 - __builtin_clzll(v);
    double m = (double)v / (double)(1ull << k);
    double t = (m - 1) / (m + 1), t2 = t * t;
    double ln_m = 2 * t * (1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 / 9))));
    double g = ((53 - k) * 0.6931471805599453 - ln_m) * (double)mean;
    return g < 1 ? 1 : g > 0x1p62 ? (int64_t)1 << 62 : (int64_t)g;
}

void sx_profile_cross(sx_heap *h) {
    int64_t step = (int64_t)(h->profile_step ? h->profile_step : sx_profile_rate);
    if (h->profile_rng == 0) { /* a new heap: its own generator, and a first gap */
        h->profile_rng = (sx_secret ^ ((uintptr_t)h * 0x9e3779b97f4a7c15ull)) | 1;
        h->profile_left += gap(&h->profile_rng, (uint64_t)step);
        h->profile_since = sx_now_ns();
    }
    if (h->profile_left < -64 * step) { /* a tiny rate: most points at once */
        h->profile_due += (uint64_t)(-h->profile_left / step * step);
        h->profile_left %= step;
    }
    while (h->profile_left < 0) {
        h->profile_due += (uint64_t)step;
        h->profile_left += gap(&h->profile_rng, (uint64_t)step);
    }
}

/* profile_cost: what a heap's samples took, against that share of the time, over about the last
 * second or two. Past it, the mean gap doubles (up to 1024 times profile_rate); well under it, it
 * halves back. A point still stands for the mean gap it was drawn with, so the estimates stay
 * unbiased; a thread that allocates gigabytes a second only gets fewer, heavier samples. */
static void budget(sx_heap *h, uint64_t t0) {
    uint64_t t1 = sx_now_ns(), cost = (uint64_t)sx_opt.profile_cost;
    if (!cost || h->profile_rng == 0) return;
    h->profile_spent += t1 - t0;
    if (t1 - h->profile_since > 2000000000u) { /* a window of one to two seconds */
        h->profile_since = t1 - 1000000000u;
        h->profile_spent /= 2;
    }
    uint64_t allowed = (t1 - h->profile_since + 10000000u) * cost; /* x 100; 10 ms to start with */
    uint64_t base = sx_profile_rate, step = h->profile_step ? h->profile_step : base;
    if (h->profile_spent * 100 > allowed && step < base << 10) step *= 2;
    else if (step > base && h->profile_spent * 200 < allowed) step /= 2;
    h->profile_step = step;
}

/* ---- the tables ---- */

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* The writers' half of the seqlock (Boehm, "Can seqlocks get along with programming language
 * memory models?"); writers hold table_lock, one at a time. The odd generation must be visible
 * before any of the stores that follow it: a reader that copies one of them must also see the
 * generation odd, or changed, when it looks again after its copy. A release or seq_cst store (or
 * read-modify-write) orders only what comes before it, so a release fence goes after it (arm64:
 * dmb ish; x86: nothing). The even generation that ends the write is a release store: a reader
 * that sees it sees the whole write. */
static void write_begin(void) {
    uint64_t g = atomic_load_explicit(&area->generation, memory_order_relaxed);
    atomic_store_explicit(&area->generation, g + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}
static void write_end(void) {
    area->now_ns = sx_now_ns();
    uint64_t g = atomic_load_explicit(&area->generation, memory_order_relaxed);
    atomic_store_explicit(&area->generation, g + 1, memory_order_release);
}

/* The tables' hash indexes: slot -> entry + 1 (0: empty), twice as many slots as entries, linear
 * probing. The entries are filled from the first (the stacks) or from a free list (the live
 * samples, linked through `stack`), so that the pages written are in proportion to what is used. */
#define STACK_SLOTS (2 * SX_PROFILE_STACKS)
#define LIVE_SLOTS (2 * SX_PROFILE_LIVE)
static uint16_t *stack_index, *live_index;
static uint32_t live_used, live_free = UINT32_MAX; /* entries ever used; the free list's head */

/* The stack's entry, made if new; -1 when the table is full. */
static int64_t stack_entry(const void *const *frames, int depth) {
    uint64_t hash = (uint64_t)depth;
    for (int i = 0; i < depth; i++) hash = mix(hash ^ (uintptr_t)frames[i]);
    for (uint32_t i = (uint32_t)hash % STACK_SLOTS, n = 0; n < STACK_SLOTS; i = (i + 1) % STACK_SLOTS, n++) {
        uint32_t e = stack_index[i];
        if (e == 0) {
            if (area->nstacks >= SX_PROFILE_STACKS) return -1;
            uint32_t k = area->nstacks++;
            sx_profile_stack *s = &stacks[k];
            s->hash = hash;
            for (int f = 0; f < depth; f++) s->pc[f] = (uintptr_t)frames[f];
            s->depth = (uint32_t)depth;
            stack_index[i] = (uint16_t)(k + 1);
            return k;
        }
        const sx_profile_stack *s = &stacks[e - 1];
        if (s->hash == hash && s->depth == (uint32_t)depth &&
            !memcmp(s->pc, frames, (size_t)depth * sizeof *s->pc))
            return e - 1;
    }
    return -1;
}

static uint32_t live_home(uint64_t addr) { return (uint32_t)mix(addr) % LIVE_SLOTS; }

/* The index slot of a live sample; -1 if there is none. Bounded, as every walk of the tables: they
 * lie in the program's address space, where a wild write may have filled them. */
static int64_t live_find(uint64_t addr) {
    for (uint32_t i = live_home(addr), n = 0; n < LIVE_SLOTS; i = (i + 1) % LIVE_SLOTS, n++) {
        uint32_t e = live_index[i];
        if (e == 0 || e > SX_PROFILE_LIVE) return -1;
        if (live[e - 1].addr == addr) return i;
    }
    return -1;
}

static bool live_add(uint64_t addr, size_t size, double objects, uint32_t stack, uint32_t flags) {
    if (area->nlive >= SX_PROFILE_LIVE) return false;
    uint32_t i = live_home(addr), n = 0;
    while (live_index[i] && n++ < LIVE_SLOTS) i = (i + 1) % LIVE_SLOTS;
    if (live_index[i]) return false;
    uint32_t k;
    if (live_free < SX_PROFILE_LIVE) {
        k = live_free;
        live_free = live[k].stack;
    } else if (live_used < SX_PROFILE_LIVE) {
        k = live_used++;
    } else {
        return false;
    }
    live[k] = (sx_profile_live){.addr = addr, .size = size, .objects = objects, .stack = stack, .flags = flags};
    live_index[i] = (uint16_t)(k + 1);
    area->nlive++;
    return true;
}

/* Take the sample of index slot i out; later slots of its cluster move back so that no search
 * stops short. */
static void live_remove(uint32_t i) {
    uint32_t k = live_index[i] - 1u;
    live[k].addr = 0;
    live[k].stack = live_free;
    live_free = k;
    area->nlive--;
    uint32_t j = i;
    for (uint32_t n = 0; n < LIVE_SLOTS; n++) {
        j = (j + 1) % LIVE_SLOTS;
        uint32_t e = live_index[j];
        if (e == 0 || e > SX_PROFILE_LIVE) break;
        uint32_t h = live_home(live[e - 1].addr);
        /* the slot at j stays when its home lies cyclically in (i, j] */
        if (i <= j ? (i < h && h <= j) : (i < h || h <= j)) continue;
        live_index[i] = live_index[j];
        i = j;
    }
    live_index[i] = 0;
}

/* ---- the profile's memory and heap, at the first sample ---- */

static void make(void) {
    sx_lock(&sx_meta_lock);
    uint8_t *part = sx_share_profile_map(SX_PROFILE_BYTES);
    sx_unlock(&sx_meta_lock);
    if (!part) part = sx_os_map(SX_PROFILE_BYTES); /* no statistics file: for profile_dump */
    sx_heap *h = part ? sx_heap_new() : NULL;
    if (!h) return;
    /* the profile heap samples nothing itself, and keeps a page per class and a segment as a
     * thread's heap does, so that a loop whose samples come and go makes no system call */
    h->sample_left = h->profile_left = INT64_MAX / 2;
    h->profile_rng = 1;
    h->retain = true;
    h->mmap_only = true;
    sx_profile_header *a = (sx_profile_header *)part;
    /* The statistics file gives readers the part already (share.c): it is written as any write
     * is, the generation odd meanwhile (write_begin), so that no reader takes half of it. */
    atomic_store_explicit(&a->generation, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    a->version = SX_PROFILE_VERSION;
    a->header_size = sizeof *a;
    a->stack_size = sizeof(sx_profile_stack);
    a->live_size = sizeof(sx_profile_live);
    a->depth = SX_PROFILE_DEPTH;
    a->max_stacks = SX_PROFILE_STACKS;
    a->max_live = SX_PROFILE_LIVE;
    a->pid = getpid();
    a->rate = sx_profile_rate;
    a->stacks_at = SX_PROFILE_HEADER;
    a->live_at = SX_PROFILE_HEADER + SX_PROFILE_STACKS * sizeof(sx_profile_stack);
    a->start_ns = start_ns;
    a->now_ns = sx_now_ns();
    stacks = (sx_profile_stack *)(part + a->stacks_at);
    live = (sx_profile_live *)(part + a->live_at);
    stack_index = (uint16_t *)(live + SX_PROFILE_LIVE);
    live_index = stack_index + STACK_SLOTS;
    a->magic = SX_PROFILE_MAGIC;
    atomic_store_explicit(&a->generation, 2, memory_order_release);
    area = a;
    /* last: a reclaiming thread that sees the heap gives back what it holds (core/reclaim.c) */
    atomic_store_explicit(&sx_profile_heap, h, memory_order_release);
}

/* Made by the first sampler; one that comes meanwhile does not wait (see support/unwind.c). */
static bool ready(void) {
    int st = atomic_load_explicit(&made, memory_order_acquire);
    if (sx_unlikely(st != 2)) {
        int expected = 0;
        if (st != 0 || !atomic_compare_exchange_strong(&made, &expected, 1)) return false;
        make();
        atomic_store_explicit(&made, area ? 2 : 3, memory_order_release);
        if (!area) return false;
    }
    return sx_unwind_ready(sx_os_page);
}

/* ---- samples ----
 * Two locks: sx_profile_lock, held while the profile heap allocates or takes a block back (and
 * taken before the others by fork), and the tables' lock, innermost: nothing else is taken while
 * it is held, so that a block may leave the profile from anywhere (a large block's free, under a
 * reclaiming thread's locks). */
static sx_lock_t table_lock = PTHREAD_MUTEX_INITIALIZER;

bool sx_profile_unwind(void **frames, int *depth) {
    if (tls_busy) return false; /* the unwinder's loading, or the profile heap's own allocations */
    tls_busy = true;
    if (!ready()) {
        tls_busy = false;
        return false;
    }
    tls_t0 = sx_now_ns();
    *depth = sx_unwind(frames, SX_PROFILE_DEPTH, 0);
    return true;
}

void sx_profile_record(sx_heap *h, void *p, size_t size, double objects, const void *const *frames,
                       int depth, uint32_t flags) {
    if (p) {
        sx_lock(&table_lock);
        write_begin();
        area->samples++;
        int64_t s = depth > 0 ? stack_entry(frames, depth) : -1;
        if (s < 0 || !live_add((uintptr_t)p, size, objects, (uint32_t)s, flags)) {
            area->dropped++;
        } else {
            stacks[s].alloc_objects += objects;
            stacks[s].alloc_space += objects * (double)size;
        }
        write_end();
        sx_unlock(&table_lock);
    }
    if (h) budget(h, tls_t0);
    tls_busy = false;
}

void sx_profile_forget(const void *p) {
    sx_lock(&table_lock);
    int64_t e = area ? live_find((uintptr_t)p) : -1;
    if (e >= 0) {
        write_begin();
        live_remove((uint32_t)e);
        write_end();
    }
    sx_unlock(&table_lock);
}

void sx_profile_free(sx_page *pg, sx_block *b) {
    sx_lock(&sx_profile_lock);
    sx_profile_forget(b);
    sx_heap *h = atomic_load_explicit(&sx_profile_heap, memory_order_relaxed);
    sx_counts_of(h)->n_free[pg->bin]++;
    sx_page_free_block(h, pg, b);
    sx_unlock(&sx_profile_lock);
}

void sx_profile_moved(const void *from, const void *to, size_t size) {
    sx_lock(&table_lock);
    int64_t e = area ? live_find((uintptr_t)from) : -1;
    if (e >= 0) {
        sx_profile_live moved = live[live_index[e] - 1];
        write_begin();
        live_remove((uint32_t)e);
        live_add((uintptr_t)to, size, moved.objects, moved.stack, moved.flags);
        write_end();
    }
    sx_unlock(&table_lock);
}

void sx_profile_fork_prepare(void) { sx_lock(&table_lock); }
void sx_profile_fork_done(void) { sx_unlock(&table_lock); }

/* ---- profile_dump ---- */

static bool write_all(int fd, const void *p, size_t n) {
    const uint8_t *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w <= 0) return false;
        c += w, n -= (size_t)w;
    }
    return true;
}

void sx_profile_dump(void) {
    if (!sx_opt.profile_dump[0] || getpid() != options_pid) return;
    int fd = open(sx_opt.profile_dump, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        sx_message("cannot write the heap profile to %s", sx_opt.profile_dump);
        return;
    }
    sx_lock(&table_lock);
    uint64_t n = area ? SX_PROFILE_BYTES : 0;
    bool ok = write_all(fd, "STRAPDMP", 8) && write_all(fd, &n, sizeof n) && (!n || write_all(fd, area, n));
    sx_unlock(&table_lock);
    int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    char buf[4096];
    ssize_t r;
    while (ok && maps >= 0 && (r = read(maps, buf, sizeof buf)) > 0) ok = write_all(fd, buf, (size_t)r);
    if (maps >= 0) close(maps);
    if (close(fd) != 0 || !ok) sx_message("cannot write the heap profile to %s", sx_opt.profile_dump);
}
