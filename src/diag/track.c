/*
 * track.c — every live block of the process: its address, requested size and stack.
 *
 * A block of the core (at a 16-byte boundary) is one word in the shadow of its 4 MiB of address
 * space (below): a store to record it, a load and a store to forget it, no lock. Other blocks
 * (guard mode's, not at a 16-byte boundary) go into 64 stripes, chosen by a hash of the address,
 * each an open-addressing table of 16-byte entries under its own spin lock (linear probing,
 * deletion by shifting back: no tombstones), grown by doubling at three quarters full. Calls,
 * bytes, live bytes, a histogram of request sizes, the stacks' counts and the peak are each
 * thread's own (below), summed when the record is written: a call shares no counter with other
 * threads. A thread that has made 16 allocations since its last look checks the clock (the
 * coarse clock: a read of the vDSO page) and, every `interval` ms, adds a sample of the live
 * bytes and the resident set to the time series (4096 samples; when full, every other one is
 * dropped and the interval doubles): report mode only.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"

#define STRIPES 64
#define BIG_SIZE UINT32_MAX /* sizes from here up: ask the core for the block's size */

typedef struct {
    uintptr_t addr; /* 0: empty */
    uint32_t stack, size;
} entry;

typedef struct {
    sx_spin lock;
    entry *tab;
    size_t cap, n;
} __attribute__((aligned(64))) stripe;

static stripe stripes[STRIPES];

static uint64_t hash(uintptr_t a) { return (a >> 4) * 0x9e3779b97f4a7c15ull; }
static stripe *stripe_of(uint64_t h) { return &stripes[h >> 58]; }
static size_t slot_of(uint64_t h, size_t cap) { return (size_t)(h >> 20) & (cap - 1); }

/* ---- what each thread counts ----
 * The counters of the run are the threads' own: plain adds into a record of the thread's (in
 * memory of the layer's, never unmapped), summed when the record is written. A thread that exits
 * adds its record into `retired` and frees it for the next thread; a thread with no record (more
 * than MAX_THREADS at once, or past its exit, when other libraries' thread destructors still
 * allocate) counts into `retired` under its lock.
 *
 * The stacks' counts (allocs, bytes) go through a small table of the thread's, by stack id, and
 * into the stack's atomic counters when another stack takes the entry, when the thread exits, and
 * when the record is written; then a stack's frees are its allocations less its blocks still
 * recorded (so a free does not look at the block's stack).
 *
 * The peak of the live bytes: each thread keeps what it added to the live bytes since it last
 * reported (`pend`) and the highest that got (`pend_max`), and reports when `pend` passes
 * +-PEAK_STEP: one atomic add into `live_all`. The peak candidate of the interval is the live bytes
 * reported before it plus `pend_max`, when no other thread reported during the interval (`seq`
 * says), else the live bytes just reported. So the peak is exact when one thread allocates at a
 * time (any number of threads one after another: a thread that exits reports), and with threads
 * allocating at once within about PEAK_STEP (64 KiB) a thread of the true peak. */
#define MAX_THREADS 4096
#define MEMO 32 /* stacks each thread counts for itself, by id */
#define PEAK_STEP ((int64_t)64 << 10)

typedef struct {
    sx_stack *st;
    uint64_t allocs, bytes;
} memo;

typedef struct {
    _Atomic int in_use;
    /* allocations and bytes: the sums of size_allocs and size_bytes; live blocks: allocations
     * less frees; live bytes (may be negative: blocks of other threads freed): reported + pend */
    uint64_t frees, untracked; /* untracked: allocations without a stack */
    int64_t reported;          /* what the thread added to live_all */
    uint64_t size_allocs[48], size_bytes[48];
    int64_t pend, pend_max; /* the peak: see above */
    int64_t base;
    uint64_t seq;
    memo memo[MEMO];
} __attribute__((aligned(64))) counts;

/* threads: [MAX_THREADS], mapped at the first need and set under threads_lock together with the
 * first nthreads; without the lock it is read only once nthreads (seq_cst: acquire) said a record
 * is there, which orders the read after the store. */
static counts *threads;
static _Atomic size_t nthreads;   /* records ever used: [0, nthreads) */
static sx_spin threads_lock;      /* taking and giving back records, mapping the array */
static counts retired;            /* exited threads, and threads without a record */
static sx_spin retired_lock;
static _Atomic int64_t live_all; /* what the threads reported: see above */
static _Atomic uint64_t live_seq, peak_live;
#define NO_RECORD ((counts *)1)
static __thread counts *tls_counts __attribute__((tls_model("initial-exec")));

/* Memory is mapped with no lock of this file held: sx_diag_map takes the layer's own lock, which
 * the fork handlers take before these. */
static counts *claim(void) {
    counts *fresh = atomic_load(&nthreads) ? NULL : sx_diag_map(MAX_THREADS * sizeof *threads);
    sx_spin_lock(&threads_lock);
    if (!threads) threads = fresh, fresh = NULL;
    counts *c = NULL;
    size_t n = atomic_load_explicit(&nthreads, memory_order_relaxed);
    for (size_t i = 0; threads && i < n && !c; i++)
        if (!atomic_load_explicit(&threads[i].in_use, memory_order_relaxed)) c = &threads[i];
    if (!c && threads && n < MAX_THREADS) c = &threads[n], atomic_store(&nthreads, n + 1);
    if (c) {
        memset((void *)((char *)c + sizeof c->in_use), 0, sizeof *c - sizeof c->in_use);
        c->seq = atomic_load(&live_seq);
        c->base = atomic_load(&live_all);
        atomic_store_explicit(&c->in_use, 1, memory_order_release);
    }
    sx_spin_unlock(&threads_lock);
    if (fresh) sx_diag_unmap(fresh, MAX_THREADS * sizeof *threads);
    return c;
}

static void peak_max(int64_t v) {
    if (v <= 0) return;
    uint64_t peak = atomic_load_explicit(&peak_live, memory_order_relaxed);
    while ((uint64_t)v > peak && !atomic_compare_exchange_weak(&peak_live, &peak, (uint64_t)v)) {}
}

/* Report the thread's live bytes since its last report, and the peak in between. */
static void report_live(counts *c) {
    uint64_t s = atomic_fetch_add(&live_seq, 1);
    int64_t before = atomic_fetch_add(&live_all, c->pend), now = before + c->pend;
    peak_max(s == c->seq ? c->base + c->pend_max : now);
    c->base = now;
    c->seq = s + 1;
    c->reported += c->pend;
    c->pend = c->pend_max = 0;
}

static void memo_flush(memo *m) {
    if (m->st) {
        if (m->allocs) atomic_fetch_add_explicit(&m->st->allocs, m->allocs, memory_order_relaxed);
        if (m->bytes) atomic_fetch_add_explicit(&m->st->bytes, m->bytes, memory_order_relaxed);
    }
    *m = (memo){0};
}

static inline memo *memo_of(counts *c, sx_stack *st) {
    memo *m = &c->memo[st->id & (MEMO - 1)];
    if (sx_unlikely(m->st != st)) {
        memo_flush(m);
        m->st = st;
    }
    return m;
}

/* Add c's counts into `retired` (its lock held), c's stacks into theirs. */
static void fold(counts *c) {
    if (c != &retired) {
        retired.reported += c->reported + c->pend;
        retired.frees += c->frees;
        retired.untracked += c->untracked;
        for (int b = 0; b < 48; b++) {
            retired.size_allocs[b] += c->size_allocs[b];
            retired.size_bytes[b] += c->size_bytes[b];
        }
    }
    for (int i = 0; i < MEMO; i++) memo_flush(&c->memo[i]);
}

/* The calling thread's record, or `retired` with its lock held (then unlock_counts). */
static inline counts *my_counts(void) {
    counts *c = tls_counts;
    if (sx_likely(c > NO_RECORD)) return c;
    if (!c && (c = claim())) return tls_counts = c;
    tls_counts = NO_RECORD;
    sx_spin_lock(&retired_lock);
    return &retired;
}
static inline void unlock_counts(counts *c) {
    if (c == &retired) sx_spin_unlock(&retired_lock);
}

void sx_track_thread_exit(void) {
    counts *c = tls_counts;
    tls_counts = NO_RECORD; /* from now on, into `retired` */
    if (c <= NO_RECORD) return;
    report_live(c);
    sx_spin_lock(&retired_lock);
    fold(c);
    sx_spin_unlock(&retired_lock);
    atomic_store_explicit(&c->in_use, 0, memory_order_release);
}

/* In a fork child: the other threads are gone, their counts stay. Locks: the fork handlers'. */
void sx_track_fork_child(void) {
    size_t n = atomic_load(&nthreads);
    for (size_t i = 0; i < n && threads; i++) {
        counts *c = &threads[i];
        if (c == tls_counts || !atomic_load(&c->in_use)) continue;
        report_live(c);
        fold(c);
        atomic_store(&c->in_use, 0);
    }
}

static int64_t live_of(const counts *c) {
    return __atomic_load_n(&c->reported, __ATOMIC_RELAXED) + __atomic_load_n(&c->pend, __ATOMIC_RELAXED);
}

static uint64_t allocs_of(const counts *c) {
    uint64_t n = 0;
    for (int b = 0; b < 48; b++) n += c->size_allocs[b];
    return n;
}

static uint64_t live_now(void) {
    int64_t live = live_of(&retired);
    size_t n = atomic_load(&nthreads);
    for (size_t i = 0; i < n && threads; i++) live += live_of(&threads[i]);
    return live > 0 ? (uint64_t)live : 0;
}

static bool grow(stripe *s) {
    size_t cap = s->cap ? s->cap * 2 : 4096 / sizeof(entry); /* a page: small programs stay small */
    entry *t = sx_diag_map(cap * sizeof *t);
    if (!t) return false;
    for (size_t i = 0; i < s->cap; i++) {
        uintptr_t a = s->tab[i].addr;
        if (!a) continue;
        size_t j = slot_of(hash(a), cap);
        while (t[j].addr) j = (j + 1) & (cap - 1);
        t[j] = s->tab[i];
    }
    if (s->tab) sx_diag_unmap(s->tab, s->cap * sizeof *s->tab);
    s->tab = t;
    s->cap = cap;
    return true;
}

static unsigned size_bucket(size_t size) {
    unsigned b = size <= 1 ? 0 : 64 - (unsigned)__builtin_clzl(size - 1);
    return b < 48 ? b : 47;
}

/* ---- the time series ---- */
#define NSAMPLES 4096
static sx_sample samples[NSAMPLES];
static size_t nsamples;
static sx_spin sample_lock;
static uint64_t start_ms;
/* written under sample_lock; maybe_sample looks at them without it first (relaxed: the look is
 * taken again under the lock) */
static _Atomic uint64_t interval_ms = 10, last_ms;
static _Atomic uint64_t total_allocs_approx;
static __thread unsigned tls_since_look __attribute__((tls_model("initial-exec")));
/* Allocations between two looks at the clock: a program that allocates a few thousand times a
 * second still gets a sample every interval. */
#define LOOK_EVERY 16

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rss_bytes(void) { return sx_resident_bytes("/proc/self/statm", sx_os_kernel_page); }

void sx_track_sample_now(void) {
    if (sx_diag_mode != SX_DIAG_REPORT) return;
    uint64_t live = live_now();
    uint64_t t = now_ms();
    sx_spin_lock(&sample_lock);
    if (!start_ms) start_ms = t;
    if (nsamples == NSAMPLES) { /* keep every other one, sample half as often */
        for (size_t i = 0; i < NSAMPLES / 2; i++) samples[i] = samples[2 * i];
        nsamples = NSAMPLES / 2;
        atomic_store_explicit(&interval_ms, 2 * atomic_load_explicit(&interval_ms, memory_order_relaxed),
                              memory_order_relaxed);
    }
    samples[nsamples++] = (sx_sample){t - start_ms, live, rss_bytes(), atomic_load(&total_allocs_approx)};
    atomic_store_explicit(&last_ms, t, memory_order_relaxed);
    sx_spin_unlock(&sample_lock);
}

static void maybe_sample(void) {
    if (sx_diag_mode != SX_DIAG_REPORT || ++tls_since_look % LOOK_EVERY) return; /* only report draws it */
    atomic_fetch_add_explicit(&total_allocs_approx, LOOK_EVERY, memory_order_relaxed);
    uint64_t t = now_ms();
    if (t - atomic_load_explicit(&last_ms, memory_order_relaxed) <
        atomic_load_explicit(&interval_ms, memory_order_relaxed))
        return;
    if (!sx_spin_trylock(&sample_lock)) return;
    bool due = t - atomic_load_explicit(&last_ms, memory_order_relaxed) >=
               atomic_load_explicit(&interval_ms, memory_order_relaxed);
    if (due) atomic_store_explicit(&last_ms, t, memory_order_relaxed); /* claim it */
    sx_spin_unlock(&sample_lock);
    if (due) sx_track_sample_now();
}

const sx_sample *sx_track_samples(size_t *n) {
    *n = nsamples;
    return samples;
}

/* ---- blocks: the shadow ----
 * A block at a 16-byte boundary (every block of the core) has a word of its own: the shadow of
 * its 4 MiB chunk of address space (2 MiB of the layer's memory, mapped when the chunk's first
 * block comes and touched only where blocks are) holds one word per 16 bytes. Adding a block is
 * a store, removing it a load and a store, next to the words of its neighbours: no lock, since
 * a block's malloc comes before its free and its free before the next malloc of its address (the
 * core orders them). A word: SHADOW_SET | stack id << 32 | size (BIG_SIZE: ask the core), its top
 * bit set so that no word of the shadow looks like a pointer to the leak scan. Chunks are found
 * through two levels of pointers, 4096 then 8192 of them (47 bits of address space). */
#define CHUNK_SHIFT 22
#define SHADOW_WORDS ((size_t)1 << (CHUNK_SHIFT - 4))
#define SHADOW_BYTES (SHADOW_WORDS * sizeof(uint64_t))
#define L2_BITS 13
#define L1_SIZE ((size_t)1 << (47 - CHUNK_SHIFT - L2_BITS))
#define L2_SIZE ((size_t)1 << L2_BITS)
#define SHADOW_SET (1ull << 63)
#define SHADOW_GROUP 8 /* shadows mapped at once */

typedef _Atomic uint64_t word;
typedef _Atomic(word *) shadow_ptr;
static _Atomic(shadow_ptr *) l1[L1_SIZE];
static sx_spin shadow_lock;
static uint8_t *group; /* shadows mapped and not handed out yet */
static _Atomic size_t group_left; /* written under shadow_lock; shadow_make looks first without it */
static _Atomic size_t hashed; /* blocks in the stripes (not at a 16-byte boundary, or no shadow) */
static _Atomic int gate;      /* lock_all: calls wait */

static sx_noinline word *shadow_make(uintptr_t a) {
    /* Only the core's segments: guard mode's slots (a block a page) would make their shadow as
     * resident as they are big, where the hash table holds one entry per live block. */
    if (!sx_segmap_contains(sx_segment_of((void *)a))) return NULL;
    size_t i1 = a >> (CHUNK_SHIFT + L2_BITS), i2 = (a >> CHUNK_SHIFT) & (L2_SIZE - 1);
    word *sh = NULL;
    for (int tries = 0; tries < 4 && !sh; tries++) { /* mapping with no lock held (see claim) */
        shadow_ptr *new_l2 = atomic_load(&l1[i1]) ? NULL : sx_diag_map(L2_SIZE * sizeof *new_l2);
        uint8_t *new_group = atomic_load_explicit(&group_left, memory_order_relaxed)
                                 ? NULL
                                 : sx_diag_map(SHADOW_GROUP * SHADOW_BYTES);
        sx_spin_lock(&shadow_lock);
        shadow_ptr *l2 = atomic_load_explicit(&l1[i1], memory_order_acquire);
        if (!l2 && new_l2) atomic_store_explicit(&l1[i1], l2 = new_l2, memory_order_release), new_l2 = NULL;
        if (l2 && !(sh = atomic_load_explicit(&l2[i2], memory_order_acquire))) {
            size_t left = atomic_load_explicit(&group_left, memory_order_relaxed);
            if (!left && new_group) group = new_group, left = SHADOW_GROUP, new_group = NULL;
            if (left) {
                sh = (word *)group;
                group += SHADOW_BYTES;
                atomic_store_explicit(&group_left, left - 1, memory_order_relaxed);
                atomic_store_explicit(&l2[i2], sh, memory_order_release);
            }
        }
        sx_spin_unlock(&shadow_lock);
        if (new_l2) sx_diag_unmap(new_l2, L2_SIZE * sizeof *new_l2);
        if (new_group) sx_diag_unmap(new_group, SHADOW_GROUP * SHADOW_BYTES);
        if (!l2 && !new_l2 && !atomic_load(&l1[i1])) break; /* no memory */
    }
    return sh ? &sh[(a & ((1u << CHUNK_SHIFT) - 1)) >> 4] : NULL;
}

/* The shadow word of a (NULL: a is not at a 16-byte boundary, or has no shadow and make is false
 * or none could be mapped). */
static inline word *shadow_word(uintptr_t a, bool make) {
    if ((a & 15) || (a >> 47)) return NULL;
    shadow_ptr *l2 = atomic_load_explicit(&l1[a >> (CHUNK_SHIFT + L2_BITS)], memory_order_acquire);
    word *sh = l2 ? atomic_load_explicit(&l2[(a >> CHUNK_SHIFT) & (L2_SIZE - 1)], memory_order_acquire) : NULL;
    if (sx_likely(sh)) return &sh[(a & ((1u << CHUNK_SHIFT) - 1)) >> 4];
    return make ? shadow_make(a) : NULL;
}

static sx_noinline void gate_wait(void) {
    while (atomic_load_explicit(&gate, memory_order_acquire)) sched_yield();
}

/* ---- blocks: the stripes, for the others ---- */
static bool hash_add(void *p, size_t size, sx_stack *st) {
    uint64_t h = hash((uintptr_t)p);
    stripe *s = stripe_of(h);
    sx_spin_lock(&s->lock);
    if ((s->n + 1) * 4 > s->cap * 3 && !grow(s)) {
        sx_spin_unlock(&s->lock); /* no memory for the table: the block goes unrecorded */
        return false;
    }
    size_t i = slot_of(h, s->cap);
    while (s->tab[i].addr) i = (i + 1) & (s->cap - 1);
    s->tab[i] = (entry){(uintptr_t)p, st ? st->id : 0, size >= BIG_SIZE ? BIG_SIZE : (uint32_t)size};
    s->n++;
    atomic_fetch_add_explicit(&hashed, 1, memory_order_relaxed);
    sx_spin_unlock(&s->lock);
    return true;
}

static size_t entry_size(const entry *e) {
    return e->size == BIG_SIZE ? sx_usable_size((void *)e->addr) : e->size;
}

/* Remove slot i, shifting back the entries after it that probed past it. */
static void remove_slot(stripe *s, size_t i) {
    size_t mask = s->cap - 1;
    for (size_t j = (i + 1) & mask; s->tab[j].addr; j = (j + 1) & mask) {
        size_t home = slot_of(hash(s->tab[j].addr), s->cap);
        /* j's entry may move to i if its home is not in (i, j] (cyclically) */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            s->tab[i] = s->tab[j];
            i = j;
        }
    }
    s->tab[i].addr = 0;
    s->n--;
}

static entry *find(stripe *s, uintptr_t a, size_t *slot) {
    if (!s->cap) return NULL;
    for (size_t i = slot_of(hash(a), s->cap); s->tab[i].addr; i = (i + 1) & (s->cap - 1))
        if (s->tab[i].addr == a) {
            *slot = i;
            return &s->tab[i];
        }
    return NULL;
}

static bool hash_remove(void *p, size_t *size, uint32_t *id) {
    uint64_t h = hash((uintptr_t)p);
    stripe *s = stripe_of(h);
    size_t i;
    sx_spin_lock(&s->lock);
    entry *e = find(s, (uintptr_t)p, &i);
    if (e) {
        *size = entry_size(e);
        *id = e->stack;
        remove_slot(s, i);
        atomic_fetch_sub_explicit(&hashed, 1, memory_order_relaxed);
    }
    sx_spin_unlock(&s->lock);
    return e != NULL;
}

/* ---- blocks ---- */
void sx_track_add(void *p, size_t size, sx_stack *st) {
    if (sx_unlikely(atomic_load_explicit(&gate, memory_order_relaxed))) gate_wait();
    word *w = shadow_word((uintptr_t)p, true);
    if (sx_likely(w))
        atomic_store_explicit(w, SHADOW_SET | (uint64_t)(st ? st->id : 0) << 32 | (size >= BIG_SIZE ? BIG_SIZE : size),
                              memory_order_relaxed);
    else if (!hash_add(p, size, st))
        return;
    counts *c = my_counts();
    unsigned b = size_bucket(size);
    c->size_allocs[b]++;
    c->size_bytes[b] += size;
    if (sx_likely(st)) {
        memo *m = memo_of(c, st);
        m->allocs++;
        m->bytes += size;
    } else {
        c->untracked++;
    }
    c->pend += (int64_t)size;
    if (c->pend > c->pend_max) {
        c->pend_max = c->pend;
        if (sx_unlikely(c->pend >= PEAK_STEP)) report_live(c);
    }
    unlock_counts(c);
    maybe_sample();
}

bool sx_track_remove(void *p, size_t *size, sx_stack **stp) {
    if (sx_unlikely(atomic_load_explicit(&gate, memory_order_relaxed))) gate_wait();
    word *w = shadow_word((uintptr_t)p, false);
    uint64_t v;
    size_t sz;
    uint32_t id;
    if (sx_likely(w && (v = atomic_load_explicit(w, memory_order_relaxed)))) {
        atomic_store_explicit(w, 0, memory_order_relaxed);
        id = (uint32_t)(v >> 32) & 0x7fffffff;
        sz = (uint32_t)v;
        if (sz == BIG_SIZE) sz = sx_usable_size(p);
    } else if (!atomic_load_explicit(&hashed, memory_order_relaxed) || !hash_remove(p, &sz, &id)) {
        return false;
    }
    counts *c = my_counts();
    c->frees++;
    c->pend -= (int64_t)sz;
    if (sx_unlikely(c->pend <= -PEAK_STEP)) report_live(c);
    unlock_counts(c);
    *size = sz;
    if (stp) *stp = sx_stack_get(id);
    return true;
}

size_t sx_track_size(void *p) {
    word *w = shadow_word((uintptr_t)p, false);
    uint64_t v;
    if (w && (v = atomic_load_explicit(w, memory_order_relaxed)))
        return (uint32_t)v == BIG_SIZE ? sx_usable_size(p) : (uint32_t)v;
    uint64_t h = hash((uintptr_t)p);
    stripe *s = stripe_of(h);
    size_t i, sz = 0;
    sx_spin_lock(&s->lock);
    entry *e = find(s, (uintptr_t)p, &i);
    if (e) sz = entry_size(e);
    sx_spin_unlock(&s->lock);
    return sz;
}

/* Every lock; calls wait at the gate until unlock_all (one that passed it just before goes on:
 * the record is written at exit, when the program's threads are done, or when a thread forks). */
void sx_track_lock_all(void) {
    atomic_store(&gate, 1);
    for (int i = 0; i < STRIPES; i++) sx_spin_lock(&stripes[i].lock);
    sx_spin_lock(&shadow_lock);
    sx_spin_lock(&threads_lock);
    sx_spin_lock(&retired_lock);
}

void sx_track_unlock_all(void) {
    sx_spin_unlock(&retired_lock);
    sx_spin_unlock(&threads_lock);
    sx_spin_unlock(&shadow_lock);
    for (int i = STRIPES - 1; i >= 0; i--) sx_spin_unlock(&stripes[i].lock);
    atomic_store(&gate, 0);
}

size_t sx_track_live_blocks(void) {
    int64_t n = (int64_t)(allocs_of(&retired) - retired.frees);
    size_t nt = atomic_load(&nthreads);
    for (size_t i = 0; i < nt && threads; i++)
        if (atomic_load(&threads[i].in_use)) n += (int64_t)(allocs_of(&threads[i]) - threads[i].frees);
    for (int i = 0; i < STRIPES; i++) n += (int64_t)stripes[i].n;
    return n > 0 ? (size_t)n : 0;
}

/* fn(block, its size, its stack) for every recorded block; stops when fn returns false. The
 * shadows' resident pages only (the others never held a block). */
static void each_block(bool (*fn)(uintptr_t a, size_t size, sx_stack *st, void *arg), void *arg) {
    enum { BATCH = 256 };
    unsigned char vec[BATCH];
    size_t page = sx_os_page, words = page / sizeof(uint64_t), pages = SHADOW_BYTES / page;
    for (size_t i1 = 0; i1 < L1_SIZE; i1++) {
        shadow_ptr *l2 = atomic_load(&l1[i1]);
        for (size_t i2 = 0; l2 && i2 < L2_SIZE; i2++) {
            word *sh = atomic_load(&l2[i2]);
            uintptr_t chunk = (uintptr_t)(i1 << L2_BITS | i2) << CHUNK_SHIFT;
            for (size_t pg = 0; sh && pg < pages; pg += BATCH) {
                size_t n = pages - pg < BATCH ? pages - pg : BATCH;
                if (!sx_os_resident((void *)(sh + pg * words), n * page, vec)) memset(vec, 1, n);
                for (size_t j = 0; j < n; j++)
                    for (size_t w = (pg + j) * words; (vec[j] & 1) && w < (pg + j + 1) * words; w++) {
                        uint64_t v = atomic_load_explicit(&sh[w], memory_order_relaxed);
                        if (!v) continue;
                        uintptr_t a = chunk + (w << 4);
                        size_t sz = (uint32_t)v == BIG_SIZE ? sx_usable_size((void *)a) : (uint32_t)v;
                        if (!fn(a, sz, sx_stack_get((uint32_t)(v >> 32) & 0x7fffffff), arg)) return;
                    }
            }
        }
    }
    for (int i = 0; i < STRIPES; i++) {
        stripe *s = &stripes[i];
        for (size_t j = 0; j < s->cap; j++)
            if (s->tab[j].addr &&
                !fn(s->tab[j].addr, entry_size(&s->tab[j]), sx_stack_get(s->tab[j].stack), arg))
                return;
    }
}

typedef struct {
    sx_tracked *out;
    size_t n, cap;
} collecting;

static bool collect_one(uintptr_t a, size_t size, sx_stack *st, void *arg) {
    collecting *c = arg;
    if (c->n == c->cap) return false;
    c->out[c->n++] = (sx_tracked){a, size, st};
    return true;
}

size_t sx_track_collect(sx_tracked *out, size_t cap) {
    collecting c = {out, 0, cap};
    each_block(collect_one, &c);
    return c.n;
}

static bool not_freed(uintptr_t a, size_t size, sx_stack *st, void *arg) {
    (void)a, (void)size, (void)arg;
    if (st) atomic_fetch_sub_explicit(&st->frees, 1, memory_order_relaxed);
    return true;
}

/* Every thread's stack counts into the stacks (before they are written). Locks held. */
void sx_track_settle(void) {
    size_t n = atomic_load(&nthreads);
    for (size_t i = 0; i < n && threads; i++)
        if (atomic_load(&threads[i].in_use))
            for (int k = 0; k < MEMO; k++) memo_flush(&threads[i].memo[k]);
    fold(&retired);
    /* a stack's frees: its blocks that are not live any more */
    uint32_t ns = sx_stack_count();
    for (uint32_t id = 1; id <= ns; id++) {
        sx_stack *st = sx_stack_get(id);
        if (st) atomic_store(&st->frees, atomic_load(&st->allocs));
    }
    each_block(not_freed, NULL);
}

static void add_counts(sx_track_totals *t, const counts *c) {
    uint64_t allocs = allocs_of(c);
    t->allocs += allocs;
    t->frees += c->frees;
    t->live += (uint64_t)live_of(c);
    t->tracked += allocs - c->untracked;
    for (int b = 0; b < 48; b++) {
        t->size_allocs[b] += c->size_allocs[b];
        t->size_bytes[b] += c->size_bytes[b];
        t->bytes += c->size_bytes[b];
    }
}

void sx_track_totals_get(sx_track_totals *t) {
    memset(t, 0, sizeof *t);
    t->live_blocks = sx_track_live_blocks();
    add_counts(t, &retired);
    uint64_t seq = atomic_load(&live_seq), peak = atomic_load(&peak_live);
    size_t n = atomic_load(&nthreads);
    for (size_t i = 0; i < n && threads; i++) {
        const counts *c = &threads[i];
        if (!atomic_load(&c->in_use)) continue;
        add_counts(t, c);
        /* the interval not reported yet: exact when no other thread reported since it began */
        if (c->seq == seq && c->base + c->pend_max > (int64_t)peak) peak = (uint64_t)(c->base + c->pend_max);
    }
    t->peak_live = peak > t->live ? peak : t->live;
}
