/*
 * sampled.c — the sampled guard (guard_sample=N, off by default): about one allocation in N,
 * chosen at random, is served from a small fixed pool of slots, each a page of its own between
 * two pages nobody may touch, as GWP-ASan does in production allocators. An overflow or underflow
 * out of a sampled block, and any use of it after free, faults where it happens; the handler says
 * what happened, with the stacks of the access, the allocation and the free, then the process dies
 * of the SIGSEGV as it would have. A slot freed stays inaccessible until every other free slot has
 * been used: the pool is a first-in, first-out queue of free slots.
 *
 *   [ guard ][ slot 0 ][ guard ][ slot 1 ] ... [ slot SLOTS-1 ][ guard ]
 *
 * A block sits at the end of its page (an overflow faults at once; alignment leaves up to 15
 * bytes before the guard) or, one time in two, at its start (an underflow does). The rest of the
 * page holds a pattern checked when the block is freed, so a write into it is named then.
 *
 * The heaps choose when (heap.c): a heap counts the blocks each refill of a free list makes
 * available and, once that count has passed a random gap of mean N, its next slow path serves
 * a sampled block. So the fast paths carry nothing for it, on or off. A time budget bounds the
 * rest (guard_sample_cost: the share of the time samples may take; see within_budget).
 *
 * Cost: a slot is opened and closed with mprotect. The guards are marked so the kernel never
 * merges them with a closed slot (sx_os_advise_nohuge sets a flag the slots lack), so each
 * mprotect changes one whole mapping: no split, no merge, and the page keeps its memory. With 64
 * slots the pool costs 129 mappings, 256 KiB of memory at most and its records (about 20 KiB).
 * The stacks are unwound (support/unwind.c) only for sampled blocks.
 *
 * The report goes to stderr, frames as module+offset. With diag_file set (`strata run` sets it
 * when guard_sample is on), the same goes to diag_file.PID as a record (support/record.h), which
 * the command reads once the program has died, to print the stacks with functions and lines.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../support/record.h"
#include "region.h"

#define SLOTS 64
#define DEPTH 16
#define PATTERN 0xcd

enum { SPARE, LIVE, FREEING, FREED }; /* FREEING: one free has it (no second may) */

typedef struct {
    uintptr_t block;
    size_t size;
    uint8_t state, alloc_depth, free_depth;
    void *alloc_frames[DEPTH], *free_frames[DEPTH];
} slot_rec;

typedef struct {
    uint32_t queue[SLOTS]; /* free slots, the longest free first */
    uint32_t head, count;
    uint64_t rng;
    slot_rec slot[SLOTS];
} pool_state;

int sx_sampled_every;
uintptr_t sx_sampled_lo, sx_sampled_hi;
sx_lock_t sx_sampled_lock = PTHREAD_MUTEX_INITIALIZER;
static pool_state *pool;
static struct sigaction previous;
static __thread bool tls_sampling __attribute__((tls_model("initial-exec")));

static void on_fault(int sig, siginfo_t *si, void *ctx);
static void *sample(size_t size, size_t align, bool zero);

/* The time budget: what samples have cost, at their malloc and at their free, in every thread,
 * against guard_sample_cost percent of the time since start (and a millisecond to start with).
 * A sample that would go past it is not taken. */
static _Atomic uint64_t spent_ns;
static uint64_t start_ns;

/* The one thread that reports a misuse (the others wait, for the process ends with it). */
static bool report_claim(void) {
    static _Atomic int reporting;
    return !atomic_exchange(&reporting, 1);
}

/* A free slot to the back of the queue (lock held). Each slot is queued once at most. */
static void queue_push(uint32_t i) {
    if (pool->count < SLOTS) pool->queue[(pool->head + pool->count++) % SLOTS] = i;
}

static uintptr_t slot_page(uint32_t i) { return sx_sampled_lo + (2 * (uintptr_t)i + 1) * sx_os_page; }

/* At start: sampling on, the pool made at the first sample (pool_make), so that a process that
 * never takes one (a short command) pays nothing for it: no mapping, no unwinder loaded. */
void sx_sampled_init(void) {
    if (!sx_opt.sampled_guard) return;
    start_ns = sx_now_ns();
    sx_sampled_every = sx_opt.guard_sample;
}

/* The pool, its signal handler and the unwinder, by the first thread to sample; a thread that
 * comes meanwhile does not wait (it may hold the loader's lock that loading the unwinder takes):
 * it serves the block from the heap. False: no pool (yet, or ever). */
static _Atomic int pool_made; /* 0 not yet, 1 being made, 2 made, 3 failed */
static void pool_make(void);

static bool pool_ready(void) {
    int st = atomic_load_explicit(&pool_made, memory_order_acquire);
    if (sx_likely(st == 2)) return true;
    int expected = 0;
    if (st != 0 || !atomic_compare_exchange_strong(&pool_made, &expected, 1)) return false;
    pool_make();
    atomic_store_explicit(&pool_made, pool ? 2 : 3, memory_order_release);
    return pool != NULL;
}

static void pool_make(void) {
    size_t page = sx_os_page, len = (2 * SLOTS + 1) * page;
    uint8_t *m = sx_os_map(len);
    pool_state *ps = sx_os_map(sx_align_up(sizeof *ps, page));
    if (!m || !ps) {
        sx_message("guard_sample: no memory for the pool of %d slots; sampling stays off", SLOTS);
        if (m) sx_os_unmap(m, len);
        if (ps) sx_os_unmap(ps, sx_align_up(sizeof *ps, page));
        return;
    }
    bool ok = true;
    for (uint32_t i = 0; i <= 2 * SLOTS; i++) {
        uint8_t *p = m + (size_t)i * page;
        if (i % 2 == 0) sx_os_advise_nohuge(p, page); /* a guard: never merged with a closed slot */
        ok &= sx_os_protect(p, page, PROT_NONE);
    }
    if (!ok) {
        sx_message("guard_sample: cannot protect the pool's pages; sampling stays off");
        sx_os_unmap(m, len);
        sx_os_unmap(ps, sx_align_up(sizeof *ps, page));
        return;
    }
    for (uint32_t i = 0; i < SLOTS; i++) ps->queue[i] = i;
    ps->count = SLOTS;
    ps->rng = sx_secret | 1;
    pool = ps;
    sx_sampled_lo = (uintptr_t)m;
    __atomic_store_n(&sx_sampled_hi, (uintptr_t)m + len, __ATOMIC_RELEASE); /* last: see sx_sampled_owns */
    /* Loading the unwinder allocates (the caller keeps that from sampling). Another sampler
     * loading it now (the heap profile) leaves the stacks empty until it is done. */
    sx_unwind_ready(page);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK; /* a program's stack-overflow handler needs
                                                            its alternate stack */
    sigaction(SIGSEGV, &sa, &previous);
}

/* The gap to the next sample: uniform in [1, 2N - 1], mean N. */
int64_t sx_sampled_gap(uint64_t *rng, uintptr_t salt) {
    if (!*rng) *rng = (sx_secret ^ (salt * 0x9e3779b97f4a7c15ull)) | 1; /* each heap its own */
    uint64_t x = sx_xorshift(rng), n = (uint64_t)sx_sampled_every;
    return n <= 1 ? 1 : (int64_t)(1 + x % (2 * n - 1));
}

/* Frames of the caller's stack from `from` (a frame's address) on, or else with libstrata's own
 * first frames left out. */
static uint8_t unwind_from(void **frames, uintptr_t from) {
    return sx_unwind_ready(sx_os_page) ? (uint8_t)sx_unwind(frames, DEPTH, from) : 0;
}

static uint8_t unwind(void **frames) { return unwind_from(frames, 0); }

static bool within_budget(uint64_t now) {
    uint64_t spent = atomic_load_explicit(&spent_ns, memory_order_relaxed);
    return spent * 100 <= (now - start_ns) * (uint64_t)sx_opt.guard_sample_cost + 100000000u;
}

/* A sample's cost is the CPU time its thread spent on it: a thread that lost its CPU in the middle
 * of one (to another process, on a busy machine) would otherwise be charged that wait, up to a
 * scheduler's time slice, and the samples would stop for a hundred times as long. */
static uint64_t spend_start(void) { return sx_opt.guard_sample_cost ? sx_thread_cpu_ns() : 0; }
static void spend(uint64_t since) {
    if (since) atomic_fetch_add_explicit(&spent_ns, sx_thread_cpu_ns() - since, memory_order_relaxed);
}

void *sx_sampled_alloc(size_t size, size_t align, bool zero) {
    size_t page = sx_os_page;
    if (tls_sampling || size > page - 16 || align > page) return NULL;
    tls_sampling = true; /* making the pool allocates (the unwinder's loading): not sampled */
    bool ready = pool_ready();
    tls_sampling = false;
    if (!ready) return NULL;
    if (sx_opt.guard_sample_cost && !within_budget(sx_now_ns())) return NULL;
    uint64_t t0 = spend_start();
    void *p = sample(size, align, zero);
    spend(t0);
    return p;
}

static void *sample(size_t size, size_t align, bool zero) {
    size_t page = sx_os_page;
    if (align < 16) align = 16;
    tls_sampling = true;
    sx_lock(&sx_sampled_lock);
    if (!pool->count) { /* every slot holds a live block */
        sx_unlock(&sx_sampled_lock);
        tls_sampling = false;
        return NULL;
    }
    uint32_t i = pool->queue[pool->head];
    pool->head = (pool->head + 1) % SLOTS;
    pool->count--;
    bool at_start = sx_xorshift(&pool->rng) & 1;
    slot_rec *r = &pool->slot[i];
    uint8_t *pg = (uint8_t *)slot_page(i);
    if (!sx_os_protect(pg, page, PROT_READ | PROT_WRITE)) { /* the map count: give it back */
        queue_push(i);
        sx_unlock(&sx_sampled_lock);
        tls_sampling = false;
        return NULL;
    }
    /* malloc(0) too is a byte of the page: its pointer must be the slot's, not the guard's */
    uintptr_t p = at_start ? (uintptr_t)pg : sx_align_down((uintptr_t)pg + page - (size ? size : 1), align);
    r->block = p;
    r->size = size;
    r->state = LIVE;
    r->free_depth = 0;
    sx_unlock(&sx_sampled_lock);
    memset(pg, PATTERN, page);
    if (zero) memset((void *)p, 0, size);
    r->alloc_depth = unwind(r->alloc_frames);
    tls_sampling = false;
    return (void *)p;
}

static slot_rec *slot_of(uintptr_t p, uint32_t *index) {
    uintptr_t off = p - sx_sampled_lo;
    uint32_t n = (uint32_t)(off / sx_os_page);
    if (n % 2 == 0) return NULL; /* a guard page */
    *index = n / 2;
    return &pool->slot[n / 2];
}

typedef struct {
    const char *what;  /* for people: "use after free (write)" */
    const char *kind;  /* for the record: overflow, underflow, use-after-free, double-free, corrupt-tail */
    const char *access; /* read, write, free */
    const char *at_title;
    int sig;           /* the record's end: signal N, or 0: abort */
} misuse;
static void report(const misuse *m, uintptr_t addr, const slot_rec *r, void *const *at, int at_depth);

/* The first byte of [from, to) that is not the pattern, or NULL: a word at a time. */
static const uint8_t *pattern_broken(const uint8_t *from, const uint8_t *to) {
    const uint64_t word = 0x0101010101010101ull * PATTERN;
    while (from < to && ((uintptr_t)from & 7)) {
        if (*from != PATTERN) return from;
        from++;
    }
    for (; from + 8 <= to; from += 8)
        if (*(const uint64_t *)from != word) break;
    for (; from < to; from++)
        if (*from != PATTERN) return from;
    return NULL;
}

/* The slot of a block given back: a pointer into the pool that is no block's start is misuse. */
static slot_rec *slot_checked(const void *p, const char *fn, uint32_t *index) {
    slot_rec *r = slot_of((uintptr_t)p, index);
    if (!r || r->block != (uintptr_t)p) sx_fatal("%s(): invalid pointer %p (inside a sampled block's page)", fn, p);
    return r;
}

size_t sx_sampled_size(const void *p, const char *fn) {
    uint32_t i;
    slot_rec *r = slot_checked(p, fn, &i);
    if (r->state != LIVE) sx_fatal("%s(): pointer %p: the sampled block was already freed", fn, p);
    return r->size;
}

void sx_sampled_free(void *ptr, const char *fn) {
    uint64_t t0 = spend_start();
    uintptr_t p = (uintptr_t)ptr;
    uint32_t i;
    slot_rec *r = slot_checked(ptr, fn, &i);
    void *here[DEPTH];
    sx_lock(&sx_sampled_lock); /* two frees at once: one goes on, the other is the double free */
    bool live = r->state == LIVE;
    if (live) r->state = FREEING;
    sx_unlock(&sx_sampled_lock);
    if (!live) {
        if (!report_claim()) for (;;) pause(); /* another thread reports, and ends the process */
        int d = unwind(here);
        report(&(misuse){"double free", "double-free", "free", "freed again at", 0}, p, r, here, d);
        sx_fatal("%s(): double free of %p detected (a sampled block)", fn, ptr);
    }
    uint8_t *pg = (uint8_t *)(p & ~(uintptr_t)(sx_os_page - 1));
    const uint8_t *b = pattern_broken(pg, (uint8_t *)p);
    if (!b) b = pattern_broken((uint8_t *)p + r->size, pg + sx_os_page);
    if (b) {
        if (!report_claim()) for (;;) pause();
        int d = unwind(here);
        const char *what = b < (uint8_t *)p ? "write before the block (found at free)"
                                            : "write past the block (found at free)";
        report(&(misuse){what, "corrupt-tail", "free", "freed at", 0}, (uintptr_t)b, r, here, d);
        sx_fatal("%s(): the sampled block %p of %zu bytes was written out of its bounds at %p", fn, ptr, r->size,
                 (void *)b);
    }
    bool was = tls_sampling;
    tls_sampling = true;
    r->free_depth = unwind(r->free_frames);
    tls_sampling = was;
    sx_lock(&sx_sampled_lock);
    sx_os_protect(pg, sx_os_page, PROT_NONE);
    r->state = FREED;
    queue_push(i);
    sx_unlock(&sx_sampled_lock);
    spend(t0);
}

/* ---- the report: written with write(2) only, at a fault or before an abort ---- */

typedef struct {
    uintptr_t addr;
    char line[640];
    bool found;
} frame_find;

static void module_of(const sx_module *m, void *arg) {
    frame_find *f = arg;
    if (f->found || f->addr < m->lo || f->addr >= m->hi) return;
    f->found = true;
    sx_fmt(f->line, sizeof f->line, " (%s+0x%lx)", m->path, (unsigned long)(f->addr - m->bias));
}

static void print_stack(const char *title, void *const *frames, int depth) {
    if (!depth) return;
    sx_printf(2, "  %s\n", title);
    for (int i = 0; i < depth; i++) {
        frame_find f = {.addr = (uintptr_t)frames[i]};
        sx_modules_each(sx_os_page, module_of, &f);
        sx_printf(2, "    #%d 0x%lx%s\n", i, (unsigned long)frames[i], f.found ? f.line : "");
    }
}

/* ---- the record, for `strata run` ---- */
static void record_module(const sx_module *m, void *arg) {
    sx_printf(*(int *)arg, "module 0x%lx 0x%lx 0x%lx %s\n", (unsigned long)m->bias, (unsigned long)m->lo,
              (unsigned long)m->hi, m->path);
}

static void record_stack(int fd, int id, void *const *frames, int depth) {
    if (!depth) return;
    char line[DEPTH * 20 + 32];
    size_t n = sx_fmt(line, sizeof line, "stack %d %d", id, depth);
    for (int i = 0; i < depth && n < sizeof line; i++)
        n += sx_fmt(line + n, sizeof line - n, " 0x%lx", (unsigned long)frames[i]);
    sx_printf(fd, "%s\n", line);
}

static void record(const misuse *m, uintptr_t addr, const slot_rec *r, void *const *at, int at_depth) {
    char path[300];
    if (!sx_opt.diag_file[0] ||
        sx_fmt(path, sizeof path, "%s.%d", sx_opt.diag_file, (int)getpid()) >= sizeof path)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    sx_printf(fd, "strata-diag %d\n", SX_DIAG_DUMP_VERSION);
    if (m->sig) sx_printf(fd, "process %d sampled signal %d\n", (int)getpid(), m->sig);
    else sx_printf(fd, "process %d sampled abort\n", (int)getpid());
    sx_printf(fd, "exe %s\n", exe);
    sx_modules_each(sx_os_page, record_module, &fd);
    record_stack(fd, 1, r->alloc_frames, r->alloc_depth);
    record_stack(fd, 2, r->free_frames, r->free_depth);
    record_stack(fd, 3, at, at_depth);
    sx_printf(fd, "error %s 0x%lx %d %d %zu %ld %s %d\nend\n", m->kind, (unsigned long)addr, r->alloc_depth ? 1 : 0,
              r->free_depth ? 2 : 0, r->size, (long)(addr - r->block), m->access, at_depth ? 3 : 0);
    close(fd);
}

static void report(const misuse *m, uintptr_t addr, const slot_rec *r, void *const *at, int at_depth) {
    long off = (long)(addr - r->block);
    sx_printf(2, "strata: guard_sample: %s at %p, offset %ld in the %zu-byte block at %p\n", m->what,
              (void *)addr, off, r->size, (void *)r->block);
    if (sx_opt.diag_file[0]) { /* strata run prints the stacks with their lines */
        record(m, addr, r, at, at_depth);
        return;
    }
    print_stack(m->at_title, at, at_depth);
    print_stack("the block was allocated at", r->alloc_frames, r->alloc_depth);
    print_stack(r->state == FREED ? "and freed at" : "and not freed", r->free_frames, r->free_depth);
}

static void on_fault(int sig, siginfo_t *si, void *ctx) {
    uintptr_t a = (uintptr_t)si->si_addr;
    /* not ours (another address, or a signal sent, not a fault): to the handler before */
    if (si->si_code <= 0 || !sx_sampled_owns((void *)a)) {
        if (previous.sa_flags & SA_SIGINFO) {
            previous.sa_sigaction(sig, si, ctx);
        } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
            previous.sa_handler(sig);
        } else {
            signal(SIGSEGV, SIG_DFL); /* a fault comes again, and kills as it would have */
            if (si->si_code <= 0) raise(sig); /* a signal sent does not come again: send it */
        }
        return;
    }
    if (!report_claim()) for (;;) pause(); /* another thread reports, and ends the process */
    /* The slot the address is in; for a guard page, the block whose edge is nearer: the one
     * before it overflowed, or the one after it underflowed. */
    uint32_t n = (uint32_t)((a - sx_sampled_lo) / sx_os_page);
    const slot_rec *r = NULL;
    if (n % 2) {
        r = &pool->slot[n / 2];
    } else {
        const slot_rec *before = n ? &pool->slot[n / 2 - 1] : NULL, *after = n / 2 < SLOTS ? &pool->slot[n / 2] : NULL;
        if (before && before->state == SPARE) before = NULL;
        if (after && after->state == SPARE) after = NULL;
        uintptr_t past = before ? a - (before->block + before->size) : UINTPTR_MAX;
        uintptr_t ahead = after ? after->block - a : UINTPTR_MAX;
        r = past <= ahead ? before : after;
    }
    char what[96];
    const char *acc = sx_fault_access(ctx);
    const char *kind = !r || r->state == SPARE ? "wild"
                       : r->state == FREED     ? "use-after-free"
                       : a < r->block          ? "underflow"
                                               : "overflow";
    if (!r || r->state == SPARE) sx_fmt(what, sizeof what, "%s of a sampled slot never used", acc);
    else if (r->state == FREED) sx_fmt(what, sizeof what, "use after free (%s)", acc);
    else sx_fmt(what, sizeof what, "heap %s (%s)", kind, acc);
    void *here[DEPTH];
    uintptr_t pc = sx_fault_pc(ctx);
    /* libgcc is loaded (sx_sampled_init): its unwinder steps through the signal frame */
    int d = pc ? unwind_from(here, pc) : 0;
    if (r) report(&(misuse){what, kind, acc, "accessed at", sig}, a, r, here, d);
    else sx_printf(2, "strata: guard_sample: %s at %p\n", what, (void *)a);
    signal(SIGSEGV, SIG_DFL); /* returning faults again, now fatally */
}
