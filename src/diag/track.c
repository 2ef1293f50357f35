/*
 * track.c — every live block of the process: its address, requested size and stack.
 *
 * 64 stripes, chosen by a hash of the address, each an open-addressing table of 16-byte entries
 * under its own spin lock (linear probing, deletion by shifting back: no tombstones), grown by
 * doubling at three quarters full. The stripe also counts calls, bytes, live bytes and a
 * histogram of request sizes, so no counter is shared by all threads. Summing the stripes gives
 * the totals; a thread that has made 16 allocations since its last look checks the clock (the
 * coarse clock: a read of the vDSO page) and,
 * every `interval` ms, adds a sample of the live bytes and the resident set to the time series
 * (4096 samples; when full, every other one is dropped and the interval doubles).
 */
#define _GNU_SOURCE
#include <fcntl.h>
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
    uint64_t allocs, frees, bytes, live, tracked;
    uint64_t size_allocs[48], size_bytes[48];
} __attribute__((aligned(64))) stripe;

static stripe stripes[STRIPES];
static _Atomic uint64_t live_all, peak_live; /* exact peak: one shared counter (diagnostics only) */

static uint64_t hash(uintptr_t a) { return (a >> 4) * 0x9e3779b97f4a7c15ull; }
static stripe *stripe_of(uint64_t h) { return &stripes[h >> 58]; }
static size_t slot_of(uint64_t h, size_t cap) { return (size_t)(h >> 20) & (cap - 1); }

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

static uint64_t live_now(void) {
    uint64_t live = 0;
    for (int i = 0; i < STRIPES; i++) live += __atomic_load_n(&stripes[i].live, __ATOMIC_RELAXED);
    return live;
}

/* ---- the time series ---- */
#define NSAMPLES 4096
static sx_sample samples[NSAMPLES];
static size_t nsamples;
static sx_spin sample_lock;
static uint64_t interval_ms = 10, last_ms, start_ms;
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

static uint64_t rss_bytes(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char *p = buf;
    while (*p && *p != ' ') p++; /* size, then resident */
    uint64_t v = 0;
    for (p++; *p >= '0' && *p <= '9'; p++) v = v * 10 + (uint64_t)(*p - '0');
    return v * sx_os_page;
}

void sx_track_sample_now(void) {
    if (sx_diag_mode != SX_DIAG_REPORT) return;
    uint64_t live = live_now();
    uint64_t t = now_ms();
    sx_spin_lock(&sample_lock);
    if (!start_ms) start_ms = t;
    if (nsamples == NSAMPLES) { /* keep every other one, sample half as often */
        for (size_t i = 0; i < NSAMPLES / 2; i++) samples[i] = samples[2 * i];
        nsamples = NSAMPLES / 2;
        interval_ms *= 2;
    }
    samples[nsamples++] = (sx_sample){t - start_ms, live, rss_bytes(), atomic_load(&total_allocs_approx)};
    last_ms = t;
    sx_spin_unlock(&sample_lock);
}

static void maybe_sample(void) {
    if (sx_diag_mode != SX_DIAG_REPORT || ++tls_since_look % LOOK_EVERY) return; /* only report draws it */
    atomic_fetch_add_explicit(&total_allocs_approx, LOOK_EVERY, memory_order_relaxed);
    uint64_t t = now_ms();
    if (t - __atomic_load_n(&last_ms, __ATOMIC_RELAXED) < interval_ms) return;
    if (!sx_spin_trylock(&sample_lock)) return;
    bool due = t - last_ms >= interval_ms;
    if (due) last_ms = t; /* claim it */
    sx_spin_unlock(&sample_lock);
    if (due) sx_track_sample_now();
}

const sx_sample *sx_track_samples(size_t *n) {
    *n = nsamples;
    return samples;
}

/* ---- blocks ---- */
void sx_track_add(void *p, size_t size, sx_stack *st) {
    uint64_t h = hash((uintptr_t)p);
    stripe *s = stripe_of(h);
    sx_spin_lock(&s->lock);
    if ((s->n + 1) * 4 > s->cap * 3 && !grow(s)) {
        sx_spin_unlock(&s->lock); /* no memory for the table: the block goes unrecorded */
        return;
    }
    size_t i = slot_of(h, s->cap);
    while (s->tab[i].addr) i = (i + 1) & (s->cap - 1);
    s->tab[i] = (entry){(uintptr_t)p, st ? st->id : 0, size >= BIG_SIZE ? BIG_SIZE : (uint32_t)size};
    s->n++;
    s->allocs++;
    s->bytes += size;
    s->live += size;
    s->tracked += st != NULL;
    unsigned b = size_bucket(size);
    s->size_allocs[b]++;
    s->size_bytes[b] += size;
    sx_spin_unlock(&s->lock);
    if (st) {
        atomic_fetch_add_explicit(&st->allocs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&st->bytes, size, memory_order_relaxed);
    }
    uint64_t live = atomic_fetch_add_explicit(&live_all, size, memory_order_relaxed) + size;
    uint64_t peak = atomic_load_explicit(&peak_live, memory_order_relaxed);
    while (live > peak && !atomic_compare_exchange_weak(&peak_live, &peak, live)) {}
    maybe_sample();
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

bool sx_track_remove(void *p, size_t *size, sx_stack **stp) {
    uint64_t h = hash((uintptr_t)p);
    stripe *s = stripe_of(h);
    size_t i;
    sx_spin_lock(&s->lock);
    entry *e = find(s, (uintptr_t)p, &i);
    if (!e) {
        sx_spin_unlock(&s->lock);
        return false;
    }
    size_t sz = entry_size(e);
    uint32_t id = e->stack;
    remove_slot(s, i);
    s->frees++;
    s->live -= sz;
    sx_spin_unlock(&s->lock);
    atomic_fetch_sub_explicit(&live_all, sz, memory_order_relaxed);
    sx_stack *st = sx_stack_get(id);
    if (st) atomic_fetch_add_explicit(&st->frees, 1, memory_order_relaxed);
    *size = sz;
    *stp = st;
    return true;
}

size_t sx_track_size(void *p) {
    uint64_t h = hash((uintptr_t)p);
    stripe *s = stripe_of(h);
    size_t i, sz = 0;
    sx_spin_lock(&s->lock);
    entry *e = find(s, (uintptr_t)p, &i);
    if (e) sz = entry_size(e);
    sx_spin_unlock(&s->lock);
    return sz;
}

void sx_track_lock_all(void) {
    for (int i = 0; i < STRIPES; i++) sx_spin_lock(&stripes[i].lock);
}

void sx_track_unlock_all(void) {
    for (int i = STRIPES - 1; i >= 0; i--) sx_spin_unlock(&stripes[i].lock);
}

size_t sx_track_live_blocks(void) {
    size_t n = 0;
    for (int i = 0; i < STRIPES; i++) n += stripes[i].n;
    return n;
}

size_t sx_track_collect(sx_tracked *out, size_t cap) {
    size_t k = 0;
    for (int i = 0; i < STRIPES; i++) {
        stripe *s = &stripes[i];
        for (size_t j = 0; j < s->cap && k < cap; j++)
            if (s->tab[j].addr)
                out[k++] = (sx_tracked){s->tab[j].addr, entry_size(&s->tab[j]), sx_stack_get(s->tab[j].stack)};
    }
    return k;
}

void sx_track_totals_get(sx_track_totals *t) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < STRIPES; i++) {
        stripe *s = &stripes[i];
        t->allocs += s->allocs;
        t->frees += s->frees;
        t->bytes += s->bytes;
        t->live += s->live;
        t->live_blocks += s->n;
        t->tracked += s->tracked;
        for (int b = 0; b < 48; b++) {
            t->size_allocs[b] += s->size_allocs[b];
            t->size_bytes[b] += s->size_bytes[b];
        }
    }
    t->peak_live = atomic_load(&peak_live);
    if (t->live > t->peak_live) t->peak_live = t->live;
}
