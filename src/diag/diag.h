/*
 * diag.h — the diagnostic layer of libstrata-diag.so: leak tracking, guard pages, run recording.
 *
 * The same core as libstrata, with its own entry points (entry.c: api/entry.h's) that go
 * through diag.c, which picks by the option `diag`:
 *
 *   none    straight to the core (a few instructions more than libstrata)
 *   leaks   every block is recorded (track.c) with the call stack that allocated it (stack.c);
 *   report  at exit a conservative scan (scan.c) tells lost blocks from reachable ones; report
 *           also samples live bytes and RSS over time
 *   guard   blocks get pages of their own, ending against a PROT_NONE page (guard.c); freed ones
 *           are made inaccessible and wait in a quarantine; a fault is explained and stops the
 *           program
 *
 * What was recorded goes to a file (dump.c, format in dump.h) that the `strata` command reads.
 * libstrata itself (the release build) contains none of this: its fast paths stay as they are.
 */
#ifndef STRATA_DIAG_H
#define STRATA_DIAG_H

#include "../api/api.h"
#include "../support/record.h"

#pragma GCC visibility push(hidden) /* the library's own (see support.h) */

enum { SX_DIAG_NONE = 0, SX_DIAG_LEAKS, SX_DIAG_GUARD, SX_DIAG_REPORT };
extern int sx_diag_mode; /* set once, at start-up */

/* ---- diag.c: entry points (api.c calls these in the diag build) ---- */
/* Where the program called: the return address into it and its stack pointer there. */
typedef struct { uintptr_t pc, sp; } sx_site;
#define SX_SITE ((sx_site){(uintptr_t)__builtin_return_address(0), (uintptr_t)__builtin_frame_address(0)})
void *sx_diag_alloc(size_t size, size_t align, bool zero, sx_site at);
void *sx_diag_calloc(size_t count, size_t size, sx_site at);
void sx_diag_free(void *p, const char *fn, sx_site at);
void *sx_diag_realloc(void *p, size_t size, const char *fn, sx_site at);
int sx_diag_memalign(void **out, size_t align, size_t size, sx_site at);
size_t sx_diag_usable(void *p);

/* Memory for the diagnostic layer's own tables: mapped by the OS layer, remembered so that the
 * leak scan does not take the tables' pointers for the program's. */
void *sx_diag_map(size_t size);
void sx_diag_unmap(void *p, size_t size);
bool sx_diag_is_own(uintptr_t a, uintptr_t *end); /* in one of them? *end: where it ends */
/* In the stack of a thread that has exited (still mapped, for reuse)? *end: where it ends */
bool sx_diag_is_dead_stack(uintptr_t a, uintptr_t *end);


/* A spin lock for short critical sections; fork handlers take and release them all. */
typedef struct { _Atomic int v; } sx_spin;
static inline void sx_spin_lock(sx_spin *l) {
    while (atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
        while (atomic_load_explicit(&l->v, memory_order_relaxed)) sx_cpu_relax();
}
static inline bool sx_spin_trylock(sx_spin *l) {
    return !atomic_exchange_explicit(&l->v, 1, memory_order_acquire);
}
static inline void sx_spin_unlock(sx_spin *l) { atomic_store_explicit(&l->v, 0, memory_order_release); }

/* ---- stack.c: call stacks, deduplicated ---- */
typedef struct sx_stack {
    uint32_t id, depth;
    uint64_t hash;
    _Atomic uint64_t allocs, bytes, frees;
    /* filled by the leak scan */
    uint64_t lost_blocks, lost_bytes, reach_blocks, reach_bytes;
    uintptr_t lost_addr, reach_addr;
    uintptr_t frames[];
} sx_stack;
/* The stack of the current allocation: `site` is the return address into the program and `sp` its
 * stack pointer there (a cache key: the same pair almost always means the same stack, and every
 * so often that is checked by unwinding again). NULL when the table is full. */
sx_stack *sx_stack_lookup(sx_site at); /* the cache or an unwind: what sx_stack_here cannot answer */
/* Each thread remembers its last lookups by call site (stack.c): a hit costs a few compares. */
#define SX_STACK_MEMO 16
#define SX_STACK_MEMO_DEPTH 4
typedef struct {
    uintptr_t pc, sp;
    uint32_t gen, n;                     /* sx_stack_gen then; words compared */
    uint32_t off[SX_STACK_MEMO_DEPTH];   /* the words above sp the cache's walk read */
    uintptr_t val[SX_STACK_MEMO_DEPTH];  /* and what they held */
    sx_stack *st;
} sx_stack_memo;
extern __thread sx_stack_memo sx_stack_memos[SX_STACK_MEMO] __attribute__((tls_model("initial-exec")));
extern __thread int sx_stack_verify_left __attribute__((tls_model("initial-exec"))); /* to the next check */
extern _Atomic uint32_t sx_stack_gen;
static inline size_t sx_stack_memo_of(sx_site at) {
    return (at.pc ^ (at.pc >> 7) ^ (at.sp >> 4)) & (SX_STACK_MEMO - 1);
}
static inline sx_stack *sx_stack_here(sx_site at) {
    if (sx_likely(at.sp) && sx_likely(--sx_stack_verify_left > 0)) {
        const sx_stack_memo *m = &sx_stack_memos[sx_stack_memo_of(at)];
        if (m->pc == at.pc && m->sp == at.sp &&
            m->gen == atomic_load_explicit(&sx_stack_gen, memory_order_relaxed)) {
            const uintptr_t *w = (const uintptr_t *)at.sp;
            uint32_t i = 0;
            while (i < m->n && w[m->off[i]] == m->val[i]) i++;
            if (sx_likely(i == m->n)) return m->st;
        }
    }
    return sx_stack_lookup(at);
}
sx_stack *sx_stack_get(uint32_t id);
uint32_t sx_stack_count(void); /* ids are 1 .. count */
void sx_stack_init(void);

/* ---- track.c: every live block, its size and stack; counters over the run ---- */
void sx_track_add(void *p, size_t size, sx_stack *st);
/* Forget p; false if it was not recorded. *size, *st (st may be NULL): its requested size and
 * stack. */
bool sx_track_remove(void *p, size_t *size, sx_stack **st);
size_t sx_track_size(void *p); /* requested size of a recorded block, 0 if none */
void sx_track_lock_all(void);   /* every lock of the table and the counters (fork, the record) */
void sx_track_unlock_all(void);
void sx_track_thread_exit(void); /* the thread's counts into the process's */
void sx_track_fork_child(void);  /* locks held: the other threads' counts kept, their records freed */
void sx_track_settle(void);      /* locks held: the threads' stack counts into the stacks */
typedef struct { uintptr_t addr; size_t size; sx_stack *st; } sx_tracked;
/* Every recorded block into out[] (capacity cap); locks held. Returns the number. */
size_t sx_track_collect(sx_tracked *out, size_t cap);
size_t sx_track_live_blocks(void); /* locks held */
typedef struct {
    uint64_t allocs, frees, bytes, live, live_blocks, peak_live, tracked;
    uint64_t size_allocs[48], size_bytes[48]; /* [i]: requests of at most 2^i bytes */
} sx_track_totals;
void sx_track_totals_get(sx_track_totals *t); /* locks held */
/* Samples over time of the live bytes and the resident set. */
typedef struct { uint64_t ms, live, rss, allocs; } sx_sample;
const sx_sample *sx_track_samples(size_t *n);
void sx_track_sample_now(void);

/* ---- scan.c: the leak scan at exit ---- */
/* Marks every recorded block reachable or lost, adding to the stacks' lost_/reach_ fields.
 * Track locks held. Returns false if it could not get memory for its work. */
bool sx_scan_leaks(void);
/* Leaked blocks that have no stack (diag_sample): lost blocks, bytes, reachable blocks, bytes. */
extern uint64_t sx_scan_nostack[4];
/* Where the stack of the thread that scans starts to count, up (0: the scan's own stack pointer):
 * the frame of the exit hook that called the record, the frames below it (the record's and the
 * scan's own, and stale ones of returned calls) are not roots. */
extern uintptr_t sx_scan_stack_from;

/* ---- guard.c: guard pages and quarantine ---- */
void sx_guard_init(void);
void *sx_guard_alloc(size_t size, size_t align, sx_stack *st); /* NULL: not guarded: the core */
bool sx_guard_free(void *p, sx_stack *st);   /* false: not a guarded block; st: the free's stack */
size_t sx_guard_unguarded(void); /* blocks served without a guard */
const char *sx_guard_limit(void); /* why a block could not be guarded, for people */
bool sx_guard_size(const void *p, size_t *size);             /* false: not a guarded block */
/* Check the pattern around every live guarded block; the first broken one becomes the error. */
bool sx_guard_check_live(bool locked);
void sx_guard_lock(void);
void sx_guard_unlock(void);

/* ---- dump.c: the file for the command; exit and crash ---- */
typedef struct {
    const char *kind;   /* overflow, underflow, use-after-free, double-free, invalid-free, corrupt-tail */
    uintptr_t addr;     /* the faulting or freed address */
    uintptr_t block;    /* the block's start (0: none) */
    size_t size;
    uint32_t alloc_stack, free_stack;
    uint32_t at_stack;  /* where it happened: the faulting access, or the bad free */
    const char *access; /* read, write, free */
} sx_diag_error;
void sx_dump_init(void); /* handlers of fatal signals write what was recorded */
void sx_dump_pid_changed(void); /* in a fork child */
/* Keep the misuse that stops the program (for the file) and say it in one line on stderr. */
void sx_dump_error(const sx_diag_error *e);
/* Write the file (once per process): how = "exit" (then leaks are scanned), "signal" or "abort". */
void sx_dump_write(const char *how, int sig);

#pragma GCC visibility pop

#endif
