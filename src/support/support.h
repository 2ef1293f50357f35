/*
 * support.h — the support layer: messages and formatting without malloc (fmt.c), options
 * (options.c), the memory limit and the usage against it (limit.c), the process's counters
 * (counters.c), its secrets (secret.c), the statistics report's printer (report.c, which the
 * strata command shares), and valgrind's client requests (vgrind.h). Uses nothing of strata but
 * base.h.
 */
#ifndef STRATA_SUPPORT_H
#define STRATA_SUPPORT_H

#include <time.h>

#include "../base.h"
#include "statfile.h"
#include "vgrind.h"

/* Everything declared here is the library's own: the compiler may address its variables directly
 * instead of through the GOT (one load, not two, on every fast path). */
#pragma GCC visibility push(hidden)

#ifdef STRATA_DEBUG
#define SX_ASSERT(c) ((c) ? (void)0 : sx_assert_fail(#c, __FILE__, __LINE__))
#else
#define SX_ASSERT(c) ((void)0)
#endif

/* ---- fmt.c: formatting without malloc or stdio ---- */
size_t sx_vfmt(char *buf, size_t cap, const char *fmt, va_list ap);
size_t sx_fmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sx_write(int fd, const char *s, size_t n);
void sx_printf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line on stderr, prefixed "strata: ". */
void sx_message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void sx_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void sx_assert_fail(const char *cond, const char *file, int line);
/* "12.0 MiB"-style rendering of a byte count into buf. */
const char *sx_fmt_bytes(char *buf, size_t cap, size_t n);

/* ---- maps.c: the lines of /proc/self/maps, and the loaded objects in them ---- */
typedef struct {
    uintptr_t lo, hi, offset;
    const char *perms; /* "rw-p" ... */
    const char *name;  /* a path, "[stack]" and the like, or "" */
} sx_map_line;
void sx_maps_each(void (*fn)(const sx_map_line *m, void *arg), void *arg);
/* A loaded object's code: [lo, hi) mapped from path; its ELF address is run-time address - bias. */
typedef struct {
    uintptr_t bias, lo, hi;
    const char *path;
} sx_module;
void sx_modules_each(size_t page, void (*fn)(const sx_module *m, void *arg), void *arg);

/* ---- for the samplers (region/sampled.c, heap/profile.c) ---- */
/* A clock in nanoseconds (0 if it cannot be read). */
static inline uint64_t sx_clock_ns(clockid_t clock) {
    struct timespec t = {0, 0};
    clock_gettime(clock, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
static inline uint64_t sx_now_ns(void) { return sx_clock_ns(CLOCK_MONOTONIC); }
/* The calling thread's CPU time: what a piece of work cost it, not counting the time it waited
 * for a CPU (a system call, where CLOCK_MONOTONIC is a vDSO read). */
static inline uint64_t sx_thread_cpu_ns(void) { return sx_clock_ns(CLOCK_THREAD_CPUTIME_ID); }
/* The next of a xorshift sequence (*x not 0). */
static inline uint64_t sx_xorshift(uint64_t *x) {
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return *x;
}

/* ---- unwind.c: the caller's call stack, for the samplers ---- */
#define SX_UNWIND_MAX 64
/* Is the unwinder loaded? The first caller loads it (page: the page size); one that comes while
 * another loads it gets false and must do without a stack (it may hold the loader's lock). */
bool sx_unwind_ready(size_t page);
/* Return addresses, innermost first, at most max: from the frame whose address is `from` when it
 * is found, else from the first that is not libstrata's. */
int sx_unwind(void **frames, int max, uintptr_t from);

/* ---- fault.c: a SIGSEGV's context (the handler's third argument) ---- */
const char *sx_fault_access(const void *ctx); /* "read", "write", or "access" where unknown */
uintptr_t sx_fault_pc(const void *ctx);         /* the faulting instruction, 0 where unknown */

/* ---- options.c ---- */
enum { SX_FOREIGN_ABORT = 0, SX_FOREIGN_FORWARD, SX_FOREIGN_IGNORE };
enum { SX_HUGE_OFF = 0, SX_HUGE_THP, SX_HUGE_HUGETLB };
typedef struct sx_options {
    size_t mmap_threshold;
    size_t trim_threshold;
    size_t top_pad;
    bool brk;
    int verbose;
    int foreign_free;
    int huge_pages;
    bool stats; /* count requested bytes and sample per-class peaks; report at exit */
    size_t memory_limit; /* a memory limit set by hand (0: none, not even the cgroup's) */
    int high_water;      /* percent of the memory limit past which cached memory goes back */
    bool secure; /* secure mode (secure/secure.c) */
    int secure_verify; /* secure mode: a block leaving the quarantine is checked whole one time in N */
    bool pool_debug; /* strata_pool: destroyed pools' memory made inaccessible, their use caught */
    /* libstrata-diag.so only (diag/): what to record, and where to */
    int diag;            /* SX_DIAG_NONE, _LEAKS, _GUARD, _REPORT (diag/diag.h) */
    char diag_file[256]; /* the dump goes to this path + "." + pid */
    int diag_depth;      /* frames per stack */
    size_t diag_sample;  /* take a stack once per this many bytes allocated (0: every block) */
    int guard_sample;    /* guard one block in N */
    bool sampled_guard;  /* guard_sample > 0 in the release build, not in secure mode (region/sampled.c) */
    int guard_sample_cost; /* percent of the time the sampled guard's samples may take (0: no limit) */
    size_t profile_rate;  /* the heap profile: mean bytes allocated between samples (0: off) */
    int profile_cost;     /* percent of a thread's time its samples may take (0: no limit) */
    char profile_dump[256]; /* the heap profile goes to this path at exit (strata profile -- CMD) */
    int guard_align;     /* a guarded block's end is aligned to this (1: at its guard page) */
    bool guard_underflow;
    size_t quarantine;   /* address space of freed guarded blocks kept inaccessible */
    bool mmap_threshold_set, trim_threshold_set, top_pad_set, memory_limit_set;
} sx_options;
extern sx_options sx_opt;
extern bool sx_diag_linked; /* true in libstrata-diag.so */
void sx_options_init(void);
/* An environment variable's value, or NULL; works before libc has set up `environ`. */
const char *sx_env_get(const char *name);

/* ---- limit.c: the memory limit (cgroup, or memory_limit=) and the usage against it ---- */
extern size_t sx_limit_bytes; /* 0: no limit */
extern size_t sx_limit_mark;  /* past this, cached memory goes back (sx_reclaim) */
extern size_t sx_limit_step;  /* bytes taken from the kernel between two looks; 0: no limit */
extern _Atomic intptr_t sx_limit_credit;
extern _Atomic bool sx_limit_due;  /* a look at the usage is due: the next slow path takes it */
extern _Atomic bool sx_pressure;   /* over the mark at the last look: keep nothing cached */
void sx_limit_init(void);
size_t sx_limit_usage(void);       /* anonymous memory counted against the limit; 0: unknown */
/* Note bytes taken from the kernel (a segment, a huge mapping): once sx_limit_step of them have
 * been taken since the last look, the next slow path looks at the usage (sx_limit_check). */
static inline void sx_limit_take(size_t bytes) {
    if (sx_likely(sx_limit_step == 0)) return;
    intptr_t left = atomic_fetch_sub_explicit(&sx_limit_credit, (intptr_t)bytes, memory_order_relaxed);
    if (left <= (intptr_t)bytes) atomic_store_explicit(&sx_limit_due, true, memory_order_relaxed);
}
static inline bool sx_under_pressure(void) {
    return atomic_load_explicit(&sx_pressure, memory_order_relaxed);
}

/* ---- counters.c: the process's counters ---- */
/* Private memory until the shared statistics file exists, then the file's (heap/share.c), which
 * publishes it with release once it is mapped and holds the counts so far. Any thread may count
 * (a thread without a heap too), so sx_count loads it with acquire: a plain load on x86, ldar on
 * arm64, on the slow paths that count (system calls, heaps made, frees of exiting threads). */
extern _Atomic(sx_counters *) sx_count_at;
static inline sx_counters *sx_counters_now(void) {
    return atomic_load_explicit(&sx_count_at, memory_order_acquire);
}
#define sx_count (sx_counters_now())

/* ---- secret.c: random per process ---- */
extern uintptr_t sx_secret;   /* free keys (secret ^ address: the double-free check) */
extern uintptr_t sx_list_key; /* apart: free-list links in libstrata-secure.so */
void sx_secret_init(void);    /* once, at start-up, before any block is freed */
/* A canary for the memory at `at` (salt tells uses apart): the secret's, but for its edge bytes,
 * the first (which an overflow by 1 of what lies below reaches) and the last (which an underflow
 * by 1 of what lies above reaches): their top bit is set and they are never 0xff, so that a stray
 * NUL, text byte or 0xff always breaks them, not 255 times in 256. */
static inline uintptr_t sx_canary(const void *at, uintptr_t salt) {
    return ((sx_secret ^ (uintptr_t)at ^ salt) & 0x7effffffffffff7eull) | 0x8000000000000080ull;
}
bool sx_getrandom(void *buf, size_t n);

/* ---- report.c: sums and prints snapshots (shared with the strata command) ---- */
uint64_t sx_heap_class_allocs(const sx_heap_counts *c, unsigned bin);
void sx_snapshot_add_heap(sx_snapshot *s, const sx_heap_counts *c, bool pages);
void sx_snapshot_add_counters(sx_snapshot *s, sx_counters *c); /* after the heaps */
size_t sx_resident_bytes(const char *statm_path, size_t page);
void sx_report_print(int fd, const sx_snapshot *s, const char *title);

#pragma GCC visibility pop

#endif
