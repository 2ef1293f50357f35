/*
 * internal.h — declarations shared by strata's layers, bottom to top:
 *
 *   support/  messages, options, process start-up, internal metadata, statistics
 *   os/       the only code that makes memory system calls (mmap, munmap, mremap, madvise,
 *             mprotect, brk)
 *   region/   segments: where they come from (the brk heap or mmap), the segment map, the cache of
 *             empty segments, spans inside a segment, huge blocks with their own mapping
 *   heap/     size classes, pages, per-thread heaps, cross-thread frees, thread start and exit
 *   api/      malloc, free and the rest of the glibc interface
 */
#ifndef STRATA_INTERNAL_H
#define STRATA_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "types.h"

/* Everything declared here is the library's own: the compiler may address its variables directly
 * instead of through the GOT (one load, not two, on every fast path). */
#pragma GCC visibility push(hidden)

#define sx_likely(x) __builtin_expect(!!(x), 1)
#define sx_unlikely(x) __builtin_expect(!!(x), 0)
#define sx_noinline __attribute__((noinline))
#define sx_cold __attribute__((cold, noinline))
#define sx_public __attribute__((visibility("default")))

#define sx_load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define sx_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)

static inline size_t sx_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
static inline uintptr_t sx_align_down(uintptr_t n, size_t a) { return n & ~(uintptr_t)(a - 1); }
static inline bool sx_is_pow2(size_t n) { return n != 0 && (n & (n - 1)) == 0; }

#ifdef STRATA_DEBUG
#define SX_ASSERT(c) ((c) ? (void)0 : sx_assert_fail(#c, __FILE__, __LINE__))
#else
#define SX_ASSERT(c) ((void)0)
#endif

/* ---- support/fmt.c: formatting without malloc or stdio ---- */
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

/* ---- support/options.c ---- */
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
    bool secure; /* secure mode (api/secure.c) */
    bool pool_debug; /* strata_pool: destroyed pools' memory made inaccessible, their use caught */
    /* libstrata-diag.so only (diag/): what to record, and where to */
    int diag;            /* SX_DIAG_NONE, _LEAKS, _GUARD, _REPORT (diag/diag.h) */
    char diag_file[256]; /* the dump goes to this path + "." + pid */
    int diag_depth;      /* frames per stack */
    size_t diag_sample;  /* take a stack once per this many bytes allocated (0: every block) */
    int guard_sample;    /* guard one block in N */
    bool guard_underflow;
    size_t quarantine;   /* address space of freed guarded blocks kept inaccessible */
    bool mmap_threshold_set, trim_threshold_set, top_pad_set, memory_limit_set;
} sx_options;
extern sx_options sx_opt;
extern bool sx_diag_linked; /* true in libstrata-diag.so */
void sx_options_init(void);

/* ---- support/limit.c: the memory limit (cgroup, or memory_limit=) and the usage against it ---- */
extern size_t sx_limit_bytes; /* 0: no limit */
extern size_t sx_limit_mark;  /* past this, cached memory goes back (api/reclaim.c) */
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

/* ---- support/init.c: process start-up ---- */
extern _Atomic int sx_init_state; /* 0 none, 1 running, 2 done */
extern uintptr_t sx_secret;       /* random per process: free keys */
extern uintptr_t sx_list_key;     /* random per process, apart: free-list links */
void sx_process_init_slow(void);
void sx_announce(void); /* verbose: the first allocation of the process */
static inline void sx_process_init(void) {
    if (sx_unlikely(atomic_load_explicit(&sx_init_state, memory_order_acquire) != 2))
        sx_process_init_slow();
}

/* ---- free-list links (hardening) ----
 * A free block's first word links it to the next. The pop that takes a block checks that the
 * link stays in the block's segment (lists of one page do), so a linear overflow from the block
 * before, or a write after free, that aims it elsewhere aborts there (sx_block_pop) instead of
 * handing the program memory an attacker chose; the lists that cross segments (blocks other
 * threads freed, on their way home) are checked out of line. In libstrata-secure.so
 * (STRATA_HARDEN=2) the link is also stored xor the block's address and a secret, so that even
 * within a segment an overwrite decodes to an address nobody chose. */
static inline sx_block *sx_block_next(const sx_block *b) {
#if STRATA_HARDEN >= 2
    return (sx_block *)(b->link ^ (uintptr_t)b ^ sx_list_key);
#else
    return (sx_block *)b->link;
#endif
}
static inline void sx_block_link(sx_block *b, const sx_block *next) {
#if STRATA_HARDEN >= 2
    b->link = (uintptr_t)next ^ (uintptr_t)b ^ sx_list_key;
#else
    b->link = (uintptr_t)next;
#endif
}
/* A block handed out is no longer freed: its free key goes (the double-free check). */
static inline void sx_block_unfree(sx_block *b) {
#if STRATA_HARDEN
    b->key = 0;
#else
    (void)b;
#endif
}
sx_block *sx_block_next_far(const sx_page *pg, const sx_block *b, sx_block *next); /* misuse.c */
/* Does the link from b to next leave b's segment (to be checked out of line)? The end of a list
 * (NULL) does too: one call per list costs less than a test on every pop. */
static inline bool sx_block_far(const sx_block *b, const sx_block *next) {
#if STRATA_HARDEN
    return ((uintptr_t)next ^ (uintptr_t)b) >> SX_SEG_SHIFT;
#else
    (void)b, (void)next;
    return false;
#endif
}
/* b's successor on the list of page pg (a page of blocks, or a list of other heaps' blocks). */
static inline sx_block *sx_block_pop(const sx_page *pg, const sx_block *b) {
    sx_block *next = sx_block_next(b);
    if (sx_unlikely(sx_block_far(b, next))) next = sx_block_next_far(pg, b, next);
    return next;
}

/* ---- support/lock.h-like helpers (pthread mutexes: no allocation, fork-safe via atfork) ---- */
typedef pthread_mutex_t sx_lock_t;
#define SX_LOCK_INIT PTHREAD_MUTEX_INITIALIZER
static inline void sx_lock(sx_lock_t *l) { pthread_mutex_lock(l); }
static inline void sx_unlock(sx_lock_t *l) { pthread_mutex_unlock(l); }

/* ---- support/meta.c: memory for thread heaps and their counters; never freed ---- */
extern sx_lock_t sx_meta_lock;
#define SX_HEAP_STRIDE ((sizeof(sx_heap) + 63) & ~(size_t)63) /* heaps of a region */
sx_heap *sx_meta_heap(void); /* a zeroed heap with its counters above it; NULL if none */
size_t sx_meta_region_heaps(void); /* heaps per region */

/* ---- support/stats.c, support/report.c, support/share.c: statistics ---- */
/* Counters of memory held and system calls, kept where they happen (rare paths); also the calls
 * of threads without a heap, the per-class peaks and a copy of the thresholds. Plain numbers, no
 * pointers: they live in the process's shared statistics file once it has one (share.c), where
 * `strata stats PID` reads them. */
typedef struct sx_counters {
    _Atomic size_t brk_bytes;        /* committed bytes below the break that strata holds */
    _Atomic size_t mapped_bytes;     /* bytes of mmap'd normal segments */
    _Atomic size_t huge_bytes, huge_count;
    _Atomic size_t huge_max_bytes, huge_max_count;
    _Atomic size_t huge_cached_bytes; /* freed huge mappings kept for reuse */
    _Atomic size_t segments;         /* normal segments owned by heaps */
    _Atomic size_t cached_segments;
    _Atomic size_t heaps;
    _Atomic size_t brk_calls, mmap_calls, munmap_calls, mremap_calls, madvise_calls;
    _Atomic size_t purged_bytes;
    _Atomic size_t huge_allocs, huge_frees; /* calls that made or freed a huge block */
    _Atomic uint64_t stray_free[SX_BINS + 1]; /* frees by threads without a heap (exiting ones) */
    _Atomic uint64_t stray_requested;
    _Atomic uint64_t class_peak[SX_BINS + 1]; /* stats=1: most live blocks seen per class */
    /* the thresholds as they are now (the variables in huge.c are what strata uses) */
    _Atomic size_t mmap_threshold, trim_threshold, top_pad, threshold_fixed;
} sx_counters;
/* The counters: private memory until the shared file exists, then the file's (share.c). */
extern sx_counters *sx_count;

/* What the statistics report shows, as plain numbers: taken inside the process (stats.c, which
 * also walks every segment) or read from outside by `strata stats PID` (tools/stats.c, which
 * cannot walk: `walked` is false and the report prints "-" for what only the walk knows). */
typedef struct sx_snapshot {
    int pid;
    char version[16];
    bool walked;           /* the fields marked "walk" below are known */
    bool stats_option;     /* stats=1: bytes requested were counted */
    size_t hidden_heaps;   /* heaps whose calls are not counted (outside the shared file) */
    /* counters */
    size_t brk_bytes, mapped_bytes, huge_bytes, huge_count, huge_max_bytes, huge_max_count;
    size_t huge_cached_bytes, segments, cached_segments, heaps;
    size_t brk_calls, mmap_calls, munmap_calls, mremap_calls, madvise_calls;
    size_t purged_bytes, huge_allocs, huge_frees;
    size_t mmap_threshold, trim_threshold, top_pad;
    bool threshold_fixed;
    /* walk */
    size_t segment_bytes;   /* committed bytes of live normal segments */
    size_t in_use, blocks;  /* bytes and blocks handed out, huge ones included */
    size_t huge_in_use;
    size_t large_count, large_bytes;
    size_t free_spans, free_span_bytes;
    size_t top_free;        /* committed free bytes at the top of the brk heap */
    size_t bin_used[SX_BINS], bin_capacity[SX_BINS];
    /* pages per class, [SX_BIN_LARGE]: large blocks' spans (walk inside, counted outside) */
    size_t bin_pages[SX_BINS + 1];
    /* calls summed over every heap; [SX_BIN_LARGE]: large blocks */
    uint64_t allocs[SX_BINS + 1], frees[SX_BINS + 1], peak[SX_BINS + 1];
    uint64_t requested;    /* bytes asked for, with stats=1 */
    size_t resident;       /* the process's resident set, from /proc/PID/statm */
} sx_snapshot;
void sx_stats_sample(unsigned bin); /* stats=1: note the class's live blocks if a new peak */
void sx_snapshot_take(sx_snapshot *s);
struct strata_stats;
void sx_stats_snapshot(struct strata_stats *out);
/* title NULL: the one-line exit summary of verbose=1; otherwise malloc_stats' report. */
void sx_stats_print(int fd, const char *title);
/* report.c, shared with the strata command: sums and prints snapshots. */
uint64_t sx_heap_class_allocs(const sx_heap_counts *c, unsigned bin);
void sx_snapshot_add_heap(sx_snapshot *s, const sx_heap_counts *c, bool pages);
void sx_snapshot_add_counters(sx_snapshot *s, sx_counters *c); /* after the heaps */
size_t sx_resident_bytes(const char *statm_path, size_t page);
void sx_report_print(int fd, const sx_snapshot *s, const char *title);

/* ---- support/share.c: the statistics file `strata stats PID` reads ----
 * A memfd named "strata" (the command finds it among /proc/PID/fd) holding the counters of the
 * heaps of region k (meta.c) at k * SX_HEAP_REGION: those of heap j at SX_SHARE_HEADER + j *
 * SX_HEAP_STRIDE from there. The header, with sx_count, fills the bytes before region 0's heaps. */
#define SX_SHARE_MAGIC 0x5453415441525453ULL /* "STRATAST" in memory */
#define SX_SHARE_VERSION 1u
#define SX_SHARE_NAME "strata"
#define SX_SHARE_HEADER ((size_t)2048)
typedef struct sx_share_header {
    uint64_t magic;
    uint32_t version;     /* SX_SHARE_VERSION; the sizes below must match as well */
    uint32_t header_size, counters_size, heap_counts_size, bins, direct_slots;
    uint32_t heaps_at;     /* SX_SHARE_HEADER */
    uint32_t heap_stride;  /* SX_HEAP_STRIDE */
    uint32_t region_heaps; /* heaps per region */
    uint64_t region_bytes; /* SX_HEAP_REGION */
    int32_t pid;          /* getpid() of the process that writes it */
    char library[16];     /* STRATA_VERSION_STRING */
    uint8_t stats_option;
    _Atomic uint32_t heaps;        /* heaps made, in order: region i / region_heaps */
    _Atomic uint32_t hidden_heaps; /* of them, ones whose counters are not in the file */
    sx_counters count;    /* sx_count, in place */
} sx_share_header;
_Static_assert(sizeof(sx_share_header) <= SX_SHARE_HEADER, "the header fits before the heaps");
/* Map the file's bytes of region k over `at` (SX_HEAP_REGION of them), making the file with
 * region 0; false if there is no file (then the memory there stays private). meta lock held. */
bool sx_share_map(void *at, unsigned region);
void sx_share_heap_made(bool in_file); /* meta lock held */
void sx_share_fork_child(void);        /* the child's own file, a copy of its parent's */

/* ---- os/os.c: memory system calls; errno is preserved by all of them ---- */
extern size_t sx_os_page;
void sx_os_init(void);
void *sx_os_map(size_t size);
/* A mapping of `size` bytes at base B with B % SX_SEG_SIZE == 0 and (B + offset) % align == 0
 * (align is raised to SX_SEG_SIZE if smaller; pass offset 0 unless align is bigger). */
void *sx_os_map_aligned(size_t size, size_t align, size_t offset);
bool sx_os_unmap(void *p, size_t size); /* false: still mapped (the map count was full) */
bool sx_os_mapped(const void *p);
bool sx_os_map_at(void *p, size_t size); /* exactly there, if nothing is mapped in the range */
void sx_os_decommit(void *p, size_t size);
/* Resize a mapping in place; false if the address range after it is taken. */
bool sx_os_remap_inplace(void *p, size_t old_size, size_t new_size);
/* Move a mapping's pages (no copy) onto `dest`, which must be a mapping of new_size bytes. */
bool sx_os_remap_to(void *p, size_t old_size, size_t new_size, void *dest);
bool sx_os_protect(void *p, size_t size, int prot);
void *sx_os_reserve(size_t size); /* PROT_NONE */
bool sx_os_guard(void *p, size_t size, bool on);
/* Which pages of [p, p + size) are resident: vec[i] & 1 for page i (mincore); false on failure. */
bool sx_os_resident(void *p, size_t size, unsigned char *vec);
/* Huge pages: ask for transparent ones on a range; map reserved (hugetlb) ones, 2 MiB multiples,
 * aligned to `align`, or NULL if the kernel has none to give. */
void sx_os_advise_huge(void *p, size_t size);
void sx_os_advise_nohuge(void *p, size_t size); /* small metadata: never a 2 MiB page */
void *sx_os_map_hugetlb(size_t size, size_t align);
uintptr_t sx_os_brk_get(void);
bool sx_os_brk_set(uintptr_t end);
bool sx_os_getrandom(void *buf, size_t n);
/* The shared statistics file (a memfd; share.c). */
int sx_os_shm_create(const char *name);
bool sx_os_shm_resize(int fd, size_t size);
void *sx_os_shm_map(int fd, size_t offset, size_t size, void *at);
bool sx_os_shm_write(int fd, const void *p, size_t n, size_t offset);
uint64_t sx_os_fd_identity(int fd);
bool sx_os_fd_move(int from, int to);
void sx_os_close(int fd);

/* ---- region/segmap.c: which 4 MiB chunks are segment bases ---- */
extern _Atomic uint64_t sx_segmap[SX_SEGMAP_BITS / 64];
void sx_segmap_set(const sx_segment *seg);
void sx_segmap_clear(const sx_segment *seg);
static inline bool sx_segmap_contains(const void *seg) {
    uintptr_t i = (uintptr_t)seg >> SX_SEG_SHIFT;
    if (sx_unlikely(i >= SX_SEGMAP_BITS)) return false;
    return (sx_load_relaxed(&sx_segmap[i >> 6]) >> (i & 63)) & 1;
}
/* The segment of a block. A block is never at offset 0 of its segment (the header is there), but
 * a huge block with an alignment of 4 MiB or more sits exactly one segment after its header. */
static inline sx_segment *sx_segment_of(const void *p) {
    return (sx_segment *)(((uintptr_t)p - 1) & ~(uintptr_t)SX_SEG_MASK);
}
/* The segment whose header holds descriptor d. */
static inline sx_segment *sx_segment_of_desc(const sx_page *d) {
    return (sx_segment *)((uintptr_t)d & ~(uintptr_t)SX_SEG_MASK);
}
/* Slice descriptors record how far back the first slice of their span is, in bytes (one
 * subtraction on free's path). */
static inline void sx_slice_set_back(sx_page *s, size_t slices) {
    s->slice_back = (uint16_t)(slices * sizeof(sx_page));
}
static inline sx_page *sx_slice_first(sx_page *s) {
    return (sx_page *)((uintptr_t)s - s->slice_back);
}
static inline sx_page *sx_page_of(sx_segment *seg, const void *p) {
    /* the slice's index times the descriptor size, in one shift and one mask */
    _Static_assert(sizeof(sx_page) == 1u << SX_PAGE_SHIFT, "SX_PAGE_SHIFT");
    uintptr_t off = (((uintptr_t)p - (uintptr_t)seg) >> (SX_SLICE_SHIFT - SX_PAGE_SHIFT)) &
                    ~(uintptr_t)(sizeof(sx_page) - 1);
    return sx_slice_first((sx_page *)((uintptr_t)seg->slices + off));
}
static inline size_t sx_slice_index(const sx_page *d) {
    return (size_t)(d - sx_segment_of_desc(d)->slices);
}
static inline uint8_t *sx_slice_addr(sx_segment *seg, size_t idx) {
    return (uint8_t *)seg + idx * SX_SLICE_SIZE;
}

/* ---- region/segment.c: segments, the registry and the cache ---- */
extern sx_lock_t sx_region_lock;
extern sx_segment *sx_all_segments;
sx_segment *sx_segment_acquire(void);
void sx_segment_release(sx_segment *seg);
/* Make memory up to `end` of a brk segment usable; false if the break cannot move there. */
bool sx_segment_commit(sx_segment *seg, uintptr_t end);
void sx_registry_add(sx_segment *seg);    /* region lock held */
void sx_registry_remove(sx_segment *seg); /* region lock held */
size_t sx_segcache_purge(void);           /* release cached segments; returns bytes */
void sx_segcache_unlink(sx_segment *seg);            /* region lock held */
void sx_segcache_push(sx_segment *seg, bool dirty);  /* region lock held */
size_t sx_retain_budget(void); /* freed memory kept resident for reuse (segment.c) */
void sx_segcache_heap_made(void); /* a thread heap was made: the budget grows by a segment */

/* ---- region/brkheap.c: the [heap] region grown and shrunk with the program break ---- */
sx_segment *sx_brk_segment_new(size_t commit);       /* region lock held */
bool sx_brk_commit(sx_segment *seg, uintptr_t end);  /* region lock held */
bool sx_brk_release(sx_segment *seg);                /* region lock held */
/* The break lowered through the cached (empty) segments at the top; bytes. Region lock held. */
size_t sx_brk_release_cached(void);
/* A cached segment below the top: give back its address space but for its header's first page;
 * map it again in place before use (false: someone else has mapped there). Region lock held. */
bool sx_brk_punch(sx_segment *seg);
bool sx_brk_unpunch(sx_segment *seg);
/* Lower the break to keep `pad` bytes above free_from, the start of the top segment's free tail. */
bool sx_brk_trim(sx_segment *seg, uintptr_t free_from, size_t pad);
bool sx_brk_is_top(const sx_segment *seg);

/* ---- the heap's span lock (sx_heap.span_lock): a spin lock, uncontended but for a reclaimer ---- */
void sx_heap_lock_wait(struct sx_heap *h); /* span.c */
static inline void sx_heap_lock(struct sx_heap *h) {
    if (sx_unlikely(atomic_exchange_explicit(&h->span_lock, 1, memory_order_acquire)))
        sx_heap_lock_wait(h);
}
static inline bool sx_heap_trylock(struct sx_heap *h) {
    return !atomic_load_explicit(&h->span_lock, memory_order_relaxed) &&
           !atomic_exchange_explicit(&h->span_lock, 1, memory_order_acquire);
}
static inline void sx_heap_unlock(struct sx_heap *h) {
    atomic_store_explicit(&h->span_lock, 0, memory_order_release);
}

/* ---- region/span.c: free spans of a heap's segments; each call takes the heap's span lock ---- */
sx_page *sx_span_alloc(struct sx_heap *h, size_t n);
void sx_span_free(struct sx_heap *h, sx_segment *seg, size_t idx, size_t n);
void sx_span_free_locked(struct sx_heap *h, sx_segment *seg, size_t idx, size_t n); /* lock held */
void sx_span_mark(sx_segment *seg, size_t idx, size_t n, uint8_t kind);
bool sx_span_grow(struct sx_heap *h, sx_page *pg, size_t n);
void sx_span_shrink(struct sx_heap *h, sx_page *pg, size_t n);
bool sx_heap_segment_add(struct sx_heap *h);
size_t sx_span_purge(struct sx_heap *h); /* decommit free spans not yet decommitted; bytes */
void sx_span_trim_top(struct sx_heap *h, size_t pad);
/* Give back the empty segments of another thread's heap and decommit its free spans, if its span
 * lock is free (never waits); bytes given back. */
size_t sx_span_reclaim_other(struct sx_heap *h);

/* ---- region/huge.c: blocks with a mapping of their own ---- */
extern _Atomic size_t sx_mmap_threshold;
extern _Atomic size_t sx_trim_threshold;
extern _Atomic size_t sx_top_pad;
extern _Atomic bool sx_threshold_fixed;
extern _Atomic size_t sx_direct_slots;  /* direct-table slots that may point at pages */
extern _Atomic unsigned sx_direct_epoch; /* changes with sx_direct_slots */
void sx_thresholds_init(void);
void sx_threshold_set_mmap(size_t v);
void sx_thresholds_share(void); /* after any change: copy them into sx_count */
void *sx_huge_alloc(size_t size, size_t align, bool zero);
void sx_huge_free(sx_segment *seg);
void *sx_huge_realloc(sx_segment *seg, void *p, size_t size);
size_t sx_huge_usable(sx_segment *seg, const void *p);
/* Was p a huge block that has been freed (and not since mapped by someone else)? */
bool sx_huge_freed(const void *p);

/* ---- region/hugecache.c: freed huge mappings kept for reuse ---- */
bool sx_hugecache_put(sx_segment *seg);        /* false: not kept, the caller unmaps it */
sx_segment *sx_hugecache_take(size_t total);   /* a mapping of exactly `total` bytes, or NULL */
size_t sx_hugecache_purge(void);               /* unmap them all; returns bytes */
bool sx_hugecache_holds(const sx_segment *seg);
/* Unmap a huge mapping; if the kernel refuses, decommit it and unmap it at the next purge. */
void sx_huge_unmap(sx_segment *seg, size_t size);

/* ---- heap/page.c, heap/heap.c ---- */
extern sx_page sx_page_empty;
extern sx_heap sx_heap_empty;
void sx_page_init(sx_heap *h, sx_page *pg, unsigned bin, size_t slices);
void sx_page_extend(sx_page *pg);
void sx_page_set_block_size(sx_page *pg, size_t bsize);
sx_heap *sx_heap_new(void);
void *sx_heap_alloc_small(sx_heap *h, size_t size);
void *sx_heap_alloc_bin(sx_heap *h, unsigned bin);
void *sx_heap_alloc_large(sx_heap *h, size_t size, size_t align);
void sx_page_free_slow(sx_heap *h, sx_page *pg);
void sx_heap_release_empty(sx_heap *h);
void sx_heap_release_pages(sx_heap *h);
/* Everything the heap keeps but does not use: other heaps' blocks it holds go home, blocks sent
 * to it are taken in, empty pages and segments go back, the brk top is trimmed to pad, free spans
 * are decommitted. The heap's owner (or whoever holds a pooled heap) calls it; bytes decommitted. */
size_t sx_heap_give_back(sx_heap *h, size_t pad);
void sx_heap_direct_point(sx_heap *h, unsigned bin, sx_page *pg); /* direct slots of bin */
void sx_heap_direct_update(sx_heap *h, unsigned bin); /* back to the class's first page */
void sx_heap_direct_refresh(sx_heap *h); /* every slot again: sx_direct_slots changed */

/* A heap's counters, SX_HEAP_REGION above it (meta.c). The empty heap of threads without one has
 * none: nothing counts in it (threads without a heap count in sx_count). */
static inline sx_heap_counts *sx_counts_of(sx_heap *h) {
    SX_ASSERT(h != &sx_heap_empty);
    return (sx_heap_counts *)((uintptr_t)h + SX_HEAP_REGION);
}
static inline const sx_heap_counts *sx_counts_of_const(const sx_heap *h) {
    return (const sx_heap_counts *)((uintptr_t)h + SX_HEAP_REGION);
}

/* Bytes requested (stats=1): a thread without a heap counts them in sx_count instead. */
static inline void sx_count_requested(sx_heap *h, size_t size) {
    if (h == &sx_heap_empty)
        atomic_fetch_add_explicit(&sx_count->stray_requested, size, memory_order_relaxed);
    else sx_counts_of(h)->requested += size;
}

/* The blocks a page has handed out and not had back (its `used` is kept less its trigger, so that
 * free's test is one decrement). */
static inline uint16_t sx_page_used(const sx_page *pg) { return (uint16_t)(pg->used + pg->trigger); }
static inline void sx_page_set_trigger(sx_page *pg, uint16_t trigger) {
    pg->used = (uint16_t)(pg->used + pg->trigger - trigger);
    pg->trigger = trigger;
}

/* Put a block back on its page; the owner heap does this, for its own frees and for frees that
 * other threads sent it. */
static inline void sx_page_free_block(sx_heap *h, sx_page *pg, sx_block *b) {
    SX_ASSERT(sx_page_used(pg) > 0 && pg->used != 0 && (pg->kind == SX_SPAN_PAGE || pg->kind == SX_SPAN_LARGE));
    sx_block_link(b, pg->local_free);
    pg->local_free = b;
    if (sx_unlikely(--pg->used == 0)) sx_page_free_slow(h, pg); /* empty, or was full */
}

/* Put n blocks, linked from head to tail, back on their page at once (other threads' frees). */
static inline void sx_page_free_run(sx_heap *h, sx_page *pg, sx_block *head, sx_block *tail, uint32_t n) {
    SX_ASSERT(n >= 1 && sx_page_used(pg) >= n && (pg->kind == SX_SPAN_PAGE || pg->kind == SX_SPAN_LARGE));
    sx_block_link(tail, pg->local_free);
    pg->local_free = head;
    pg->used = (uint16_t)(pg->used - n);
    /* as `--used == 0` does for one (a kept page's never comes down to 0) */
    if (sx_unlikely((int16_t)pg->used <= 0)) sx_page_free_slow(h, pg);
}

/* ---- heap/remote.c: frees of blocks that belong to another thread's heap ---- */
void sx_free_remote(sx_segment *seg, sx_page *pg, sx_block *b);
void sx_remote_collect(sx_heap *h);
void sx_outbox_flush(sx_heap *h);
extern _Atomic unsigned sx_thread_exits; /* heaps pooled so far: kept blocks may be theirs */
void sx_foreign_init(sx_heap *h);
void sx_foreign_flush(sx_heap *h); /* send the other heaps' blocks it keeps to their owners */

enum { SX_FOREIGN_BASE = 0x8000 }; /* a foreign list's `used` minus its length */

static inline void *sx_foreign_pop(sx_page *f) {
    sx_block *b = f->free;
    f->free = sx_block_pop(f, b);
    f->used++;
    sx_block_unfree(b);
    return b;
}

/* ---- heap/thread.c: thread heaps, thread exit, fork ---- */
extern __thread sx_heap *sx_tls_heap __attribute__((tls_model("initial-exec")));
extern sx_lock_t sx_pool_lock;
extern sx_lock_t sx_reclaim_lock; /* one thread reclaims at a time (api/reclaim.c); fork takes it */
extern sx_heap *sx_all_heaps;
sx_heap *sx_thread_heap_slow(void); /* the thread's heap, made on first use; NULL if exiting */
void *sx_alloc_exiting(size_t size, size_t align, bool zero);
void sx_thread_key_init(void);
void sx_fork_init(void);
void sx_pool_collect(size_t max);       /* collect up to max pooled heaps */
void sx_pool_collect_heap(sx_heap *h);  /* collect h now, if it is pooled */
size_t sx_pool_give_back(void);         /* sx_heap_give_back on every pooled heap; bytes */

/* ---- api/alloc.c: slow paths ---- */
void *sx_malloc_slow(size_t size);
__attribute__((returns_nonnull)) void *sx_malloc_far(sx_heap *h, size_t slot, sx_page *pg, sx_block *b,
                                                     sx_block *next);
void *sx_alloc_core(size_t size, size_t align, bool zero); /* no secure mode, no statistics */
size_t sx_block_usable(void *p, const char *fn, sx_page **pgp); /* 0, *pgp NULL: foreign */

/* ---- api/reclaim.c: giving back what strata holds and does not use ---- */
/* Everything, from every heap it can reach and every cache; bytes given back (0: nothing was
 * there). pad: bytes kept at the top of the brk heap (malloc_trim's argument). */
size_t sx_reclaim(size_t pad);
void sx_limit_check(void); /* sx_limit_due: look at the usage, reclaim past the mark */

/* ---- api/secure.c: secure mode (secure=1, lib/libstrata-secure.so) ---- */
extern bool sx_secure_on;
void sx_secure_init(void);
void *sx_secure_alloc(size_t size, size_t align, bool zero);
void sx_secure_free(void *p, const char *fn, size_t size, bool sized);
void *sx_secure_realloc(void *p, size_t size, const char *fn);
size_t sx_secure_usable(void *p);
sx_block *sx_secure_fresh(uint8_t *first, uint32_t n, size_t bsize, bool skip_first, sx_block **tail);
uint64_t sx_secure_random(void);
void sx_secure_flush(sx_heap *h); /* empty its quarantine (malloc_trim) */
bool sx_secure_guard(const sx_page *pg, bool on); /* a guard page at the end of a page's span */
void sx_secure_hold(void *map, size_t size, size_t from); /* a freed huge mapping, kept inaccessible */
void *sx_secure_reuse(size_t size); /* a held mapping for a new huge block, or NULL */
size_t sx_secure_release_held(void); /* unmap every held mapping; bytes */
void *sx_alloc(size_t size, size_t align, bool zero);
void *sx_heap_alloc(sx_heap *h, size_t size, size_t align, bool zero);
void *sx_realloc(void *p, size_t size, const char *fn);
size_t sx_usable_size(void *p);
int sx_memalign(void **out, size_t align, size_t size);

/* ---- api/misuse.c: invalid, double and foreign frees ---- */
bool sx_is_foreign(const sx_segment *seg, const sx_page *pg, const void *p);
_Noreturn void sx_free_invalid(void *p, const char *fn, sx_segment *seg, sx_page *pg);
void sx_free_bad(void *p, sx_segment *seg, sx_page *pg); /* free() of a pointer that is no block */
_Noreturn void sx_double_free(void *p, const char *fn);
void sx_free_foreign(void *p, const char *fn);
void *sx_foreign_realloc(void *p, size_t size);
size_t sx_foreign_usable_size(void *p);

#pragma GCC visibility pop

#endif
