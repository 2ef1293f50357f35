/*
 * guard.c — every block on pages of its own, against a page nobody may touch (electric fence).
 *
 *   overflow (default)  [ .. pattern | block | pattern ][ guard ]   block ends at the guard page,
 *                                                                   rounded down to 16 bytes
 *   guard_underflow=1   [ guard ][ block | pattern ............ ]   block starts after it
 *
 * The bytes between the block and the guard are filled with a pattern and checked when the block
 * is freed (and at exit for blocks never freed): alignment keeps up to 15 bytes between a block's
 * end and its guard (guard_align=1: none), and a write there would otherwise go unseen. A freed
 * block's pages are given back and made inaccessible; the block waits in a quarantine (first in,
 * first out, bounded by the `quarantine` option and a count) before its address space can be
 * reused, so a use after free faults. Blocks of up to SLOT_PAGES pages live in slots of arenas
 * (below): reused after the quarantine, never unmapped; bigger ones get a mapping each, unmapped
 * after the quarantine.
 *
 * How a page is made inaccessible: with guard markers where the kernel has them (Linux 6.13,
 * sx_os_mark_guard), else with mprotect. A marker lives in the page table, so the arena stays one
 * mapping whatever its slots hold: a block costs one madvise to open and one to close, and no
 * block costs any of vm.max_map_count. With mprotect, each live block splits its arena (two
 * mappings more), each open or close costs the kernel a split or a merge of mappings, and a
 * close also needs a madvise to give the pages back.
 *
 * The SIGSEGV handler finds the block that owns the faulting address (a walk over the records:
 * this happens once, as the program stops), names the error, and writes the file with both
 * stacks. A fault that is no guard's goes to the handler that was there before.
 *
 * The map count (mprotect only, and the bigger blocks' own mappings): the kernel allows
 * vm.max_map_count (65530 by default) per process, and the core needs some too. Blocks that hold
 * mappings (live, and quarantined ones with a mapping of their own) are held to a third of the
 * limit: past it the oldest freed ones are unmapped, and if live ones fill it, blocks are served
 * unguarded from the core (no system call tried), counted and said once (diag.c). Records are
 * bounded too (MAX_RECS live and quarantined blocks: each live one holds a page of memory).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/mman.h>

#include "diag.h"

#define MAX_RECS (1u << 18)
#define HASH (1u << 18)
#define QMAX (1u << 16)
#define PATTERN 0xab
#define HEAD_FILL 16 /* pattern bytes checked before a block that ends at its guard */

enum { UNUSED = 0, LIVE, FREED, SLOT };
/* Blocks of up to SLOT_PAGES pages (the guard's included) live in slots carved from arenas: big
 * reservations, inaccessible but where a live block's data is, carved in order and never unmapped.
 * Freed and spare slots are inaccessible like the guards around them; with mprotect the kernel
 * merges them back into one mapping, so only live blocks count against vm.max_map_count. */
#define SLOT_PAGES 16
#define ARENA_BYTES ((size_t)64 << 20)

typedef struct {
    uintptr_t base;   /* the mapping, guard page included */
    size_t len;
    uintptr_t p;      /* the block */
    size_t size;
    uint32_t alloc_stack, free_stack;
    uint32_t next;    /* hash chain, or free list, or a spare slot's list (index + 1; 0 ends) */
    uint8_t state;
    bool slot;        /* in an arena: never unmapped, reused when out of the quarantine */
} grec;

static grec *recs;
static uint32_t *heads;     /* HASH chains by block address: index + 1 */
static uint32_t *quar;      /* ring of freed records, oldest first */
static uint32_t nrecs, free_recs, qfirst, qlen;
static uint32_t live_maps;                /* live blocks that hold mappings (see the top) */
static uint32_t qmaps;                    /* quarantined blocks with a mapping of their own */
static bool markers;                      /* guard markers, not mprotect */
static uint32_t spare[SLOT_PAGES + 1];    /* spare slots by length in pages: records, index + 1 */
static uintptr_t arena_next, arena_end;   /* where the next new slot is carved */
static size_t qbytes;
static sx_spin lock;
static _Atomic size_t unguarded;
static uint32_t budget; /* guarded blocks (live and quarantined) the map count leaves room for */
static __thread unsigned tls_count __attribute__((tls_model("initial-exec")));
static struct sigaction previous;

static void on_fault(int sig, siginfo_t *si, void *ctx);

/* Each guarded block holds two of the process's vm.max_map_count mappings (one once freed): keep
 * a third of the limit for the program and the core, which must still be able to map and unmap. */
static uint32_t map_budget(void) {
    char buf[32];
    long limit = 65530;
    int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            long v = 0;
            for (char *c = buf; *c >= '0' && *c <= '9'; c++) v = v * 10 + (*c - '0');
            if (v > 0) limit = v;
        }
    }
    long b = limit / 3;
    return b > (long)MAX_RECS ? MAX_RECS : (uint32_t)b;
}

/* Does the kernel have guard markers? Tried once on a page of its own. */
static bool markers_work(void) {
    uint8_t *m = sx_os_map(sx_os_page);
    if (!m) return false;
    bool ok = sx_os_mark_guard(m, sx_os_page, true);
    sx_os_unmap(m, sx_os_page);
    return ok;
}

void sx_guard_init(void) {
    budget = map_budget();
    markers = markers_work();
    recs = sx_diag_map(MAX_RECS * sizeof *recs);
    heads = sx_diag_map(HASH * sizeof *heads);
    quar = sx_diag_map(QMAX * sizeof *quar);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, &previous);
}

void sx_guard_lock(void) { sx_spin_lock(&lock); }
void sx_guard_unlock(void) { sx_spin_unlock(&lock); }

size_t sx_guard_unguarded(void) { return atomic_load(&unguarded); }

_Static_assert(MAX_RECS == 262144, "the limit as sx_guard_limit says it");
const char *sx_guard_limit(void) {
    return markers ? "262144 blocks are guarded already (each holds a page of memory)"
                   : "cannot map more guarded blocks (vm.max_map_count?)";
}

static uint32_t bucket(uintptr_t p) { return (uint32_t)(((p >> 4) * 0x9e3779b97f4a7c15ull) >> 46) & (HASH - 1); }

/* ---- records (lock held) ---- */
static grec *rec_new(void) {
    uint32_t i;
    if (free_recs) {
        i = free_recs - 1;
        free_recs = recs[i].next;
    } else if (nrecs < MAX_RECS) {
        i = nrecs++;
    } else {
        return NULL;
    }
    return &recs[i];
}

static void rec_link(grec *r) {
    uint32_t b = bucket(r->p);
    r->next = heads[b];
    heads[b] = (uint32_t)(r - recs) + 1;
}

static grec *rec_find(uintptr_t p) {
    for (uint32_t i = heads[bucket(p)]; i; i = recs[i - 1].next)
        if (recs[i - 1].p == p) return &recs[i - 1];
    return NULL;
}

/* Out of its hash chain (lock held). */
static void rec_unlink(grec *r) {
    uint32_t want = (uint32_t)(r - recs) + 1;
    for (uint32_t *link = &heads[bucket(r->p)]; *link; link = &recs[*link - 1].next)
        if (*link == want) {
            *link = r->next;
            break;
        }
}

static void rec_drop(grec *r) {
    rec_unlink(r);
    r->state = UNUSED;
    r->next = free_recs;
    free_recs = (uint32_t)(r - recs) + 1;
}

/* A slot's record onto the spare list of its length (lock held). */
static void spare_push(grec *r) {
    uint32_t pages = (uint32_t)(r->len / sx_os_page);
    r->state = SLOT;
    r->next = spare[pages];
    spare[pages] = (uint32_t)(r - recs) + 1;
}

/* Oldest quarantined record out (lock held); its mapping is the caller's to unmap. */
static bool quarantine_pop(uintptr_t *base, size_t *len) {
    if (!qlen) return false;
    grec *r = &recs[quar[qfirst]];
    qfirst = (qfirst + 1) % QMAX;
    qlen--;
    qbytes -= r->len;
    if (r->slot) { /* back to the spare slots: nothing to unmap */
        rec_unlink(r);
        spare_push(r);
        *len = 0;
        return true;
    }
    qmaps--;
    *base = r->base;
    *len = r->len;
    rec_drop(r);
    return true;
}

/* Unmap quarantined blocks until at most `keep_bytes` and `keep_count` remain. */
static void quarantine_trim(size_t keep_bytes, uint32_t keep_count) {
    for (;;) {
        uintptr_t base;
        size_t len;
        sx_spin_lock(&lock);
        bool more = (qbytes > keep_bytes || qlen > keep_count) && quarantine_pop(&base, &len);
        sx_spin_unlock(&lock);
        if (!more) return;
        if (len) sx_os_unmap((void *)base, len);
    }
}

/* ---- pages made inaccessible, or accessible again ---- */
static bool protected_some; /* markers refused once, mprotect did it: opening undoes both */

static bool pages_close(void *p, size_t len) {
    if (markers && sx_os_mark_guard(p, len, true)) return true; /* the contents go with the marking */
    if (markers) protected_some = true; /* refused (a locked mapping): mprotect it */
    sx_os_decommit(p, len);
    return sx_os_protect(p, len, PROT_NONE);
}

static bool pages_open(void *p, size_t len) {
    if (!markers) return sx_os_protect(p, len, PROT_READ | PROT_WRITE);
    return sx_os_mark_guard(p, len, false) && (!protected_some || sx_os_protect(p, len, PROT_READ | PROT_WRITE));
}

/* Address space for slots or a big block, all of it inaccessible. */
static uint8_t *pages_reserve(size_t len) {
    if (!markers) return sx_os_reserve(len);
    uint8_t *m = sx_os_map(len);
    if (m) sx_os_advise_nohuge(m, len); /* else a slot opened is a 2 MiB page resident */
    if (m && !sx_os_mark_guard(m, len, true)) {
        sx_os_unmap(m, len);
        return NULL;
    }
    return m;
}

/* ---- allocation ---- */
static uint8_t *map_guarded(size_t len, size_t page) {
    if (live_maps + qmaps >= budget) quarantine_trim((size_t)-1, qlen / 2); /* room: oldest freed out */
    if (live_maps + qmaps >= budget) { /* the map count is spoken for: no guard, and no system call */
        atomic_fetch_add(&unguarded, 1);
        return NULL;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        uint8_t *m = sx_os_map(len);
        if (m) {
            uint8_t *guard = sx_opt.guard_underflow ? m : m + len - page;
            if (markers ? sx_os_mark_guard(guard, page, true) : sx_os_protect(guard, page, PROT_NONE))
                return m;
            sx_os_unmap(m, len);
        }
        quarantine_trim(qbytes / 2, qlen / 2); /* the map count, most likely: make room */
    }
    atomic_fetch_add(&unguarded, 1);
    return NULL;
}

static void fill_pattern(uintptr_t from, uintptr_t to) {
    if (to > from) memset((void *)from, PATTERN, to - from);
}

/* Where the pattern lies around a block: [h0, h1) before, [t0, t1) after. */
static void pattern_bounds(const grec *r, size_t page, uintptr_t *h0, uintptr_t *h1, uintptr_t *t0,
                           uintptr_t *t1) {
    uintptr_t data = sx_opt.guard_underflow ? r->base + page : r->base;
    uintptr_t data_end = data + r->len - page;
    *h1 = r->p;
    *h0 = r->p - data > HEAD_FILL ? r->p - HEAD_FILL : data;
    *t0 = r->p + r->size;
    *t1 = data_end;
}

/* A slot of `len` bytes (lock held): a spare one, or one carved from the arena; its data made
 * accessible by the caller. *r: the spare slot's record, or NULL. NULL: no address space. */
static uint8_t *slot_get(size_t len, grec **r) {
    uint32_t pages = (uint32_t)(len / sx_os_page);
    *r = NULL;
    if (spare[pages]) {
        *r = &recs[spare[pages] - 1];
        spare[pages] = (*r)->next;
        return (uint8_t *)(*r)->base;
    }
    if (arena_end - arena_next < len) {
        uint8_t *a = pages_reserve(ARENA_BYTES); /* the rest of the old one stays unused */
        if (!a) return NULL;
        arena_next = (uintptr_t)a;
        arena_end = arena_next + ARENA_BYTES;
    }
    uint8_t *m = (uint8_t *)arena_next;
    arena_next += len;
    return m;
}

/* A slot back where it came from after its data could not be made accessible (lock held). */
static void slot_put(uint8_t *m, size_t len, grec *r) {
    if (r) {
        spare_push(r);
    } else if ((uintptr_t)m + len == arena_next) {
        arena_next = (uintptr_t)m;
    }
}

void *sx_guard_alloc(size_t size, size_t align, sx_stack *st) {
    size_t page = sx_os_page;
    if (align > page) return NULL;
    if (sx_opt.guard_sample > 1 && ++tls_count % (unsigned)sx_opt.guard_sample) return NULL;
    if (size > SIZE_MAX - 2 * page) return NULL;
    if (align < (size_t)sx_opt.guard_align) align = (size_t)sx_opt.guard_align;
    size_t data = sx_align_up(size ? size : 1, page), len = data + page;
    bool in_slot = len <= SLOT_PAGES * page && (markers || live_maps + qmaps < budget);
    uint8_t *m = NULL;
    grec *r = NULL;
    if (in_slot) {
        sx_spin_lock(&lock);
        m = slot_get(len, &r);
        sx_spin_unlock(&lock);
        uint8_t *d = sx_opt.guard_underflow ? m + page : m;
        if (m && !pages_open(d, data)) {
            sx_spin_lock(&lock);
            slot_put(m, len, r);
            sx_spin_unlock(&lock);
            m = NULL;
        }
    }
    if (!m) {
        in_slot = false;
        r = NULL;
        if (!(m = map_guarded(len, page))) return NULL;
    }
    uintptr_t start = sx_opt.guard_underflow ? (uintptr_t)m + page : (uintptr_t)m;
    uintptr_t p = sx_opt.guard_underflow ? start : sx_align_down(start + data - size, align);
    sx_spin_lock(&lock);
    if (!r) r = rec_new();
    if (r) {
        *r = (grec){.base = (uintptr_t)m, .len = len, .p = p, .size = size,
                    .alloc_stack = st ? st->id : 0, .state = LIVE, .slot = in_slot};
        rec_link(r);
        live_maps += !in_slot || !markers;
    }
    sx_spin_unlock(&lock);
    if (!r) {
        if (in_slot) pages_close(m, len); /* the address space stays the arena's */
        else sx_os_unmap(m, len);
        atomic_fetch_add(&unguarded, 1);
        return NULL;
    }
    uintptr_t h0, h1, t0, t1;
    pattern_bounds(r, page, &h0, &h1, &t0, &t1);
    fill_pattern(h0, h1);
    fill_pattern(t0, t1);
    return (void *)p;
}

/* The first byte around the block that is not the pattern, or 0. */
static uintptr_t pattern_broken(const grec *r) {
    uintptr_t h0, h1, t0, t1;
    pattern_bounds(r, sx_os_page, &h0, &h1, &t0, &t1);
    for (uintptr_t a = h0; a < h1; a++)
        if (*(const uint8_t *)a != PATTERN) return a;
    for (uintptr_t a = t0; a < t1; a++)
        if (*(const uint8_t *)a != PATTERN) return a;
    return 0;
}

static _Noreturn void free_error(const grec *r, const char *kind, uintptr_t addr, uint32_t free_stack,
                                 uint32_t here) {
    sx_diag_error e = {.kind = kind, .addr = addr, .block = r->p, .size = r->size,
                       .alloc_stack = r->alloc_stack, .free_stack = free_stack, .at_stack = here,
                       .access = "free"};
    sx_dump_error(&e);
    sx_dump_write("abort", 0);
    abort();
}

bool sx_guard_free(void *ptr, sx_stack *st) {
    uintptr_t p = (uintptr_t)ptr;
    sx_spin_lock(&lock);
    grec *r = rec_find(p);
    if (!r) {
        sx_spin_unlock(&lock);
        return false;
    }
    grec copy = *r;
    sx_spin_unlock(&lock);
    uint32_t id = st ? st->id : 0;
    if (copy.state == FREED) free_error(&copy, "double-free", p, copy.free_stack, id);
    uintptr_t bad = pattern_broken(&copy);
    if (bad) free_error(&copy, "corrupt-tail", bad, 0, id);
    pages_close((void *)copy.base, copy.len);
    sx_spin_lock(&lock);
    r->state = FREED;
    r->free_stack = id;
    live_maps -= !r->slot || !markers;
    quar[(qfirst + qlen) % QMAX] = (uint32_t)(r - recs);
    qlen++;
    if (!r->slot) qmaps++;
    qbytes += r->len;
    sx_spin_unlock(&lock);
    quarantine_trim(sx_opt.quarantine, QMAX - 1);
    return true;
}

/* At exit, or at a fatal signal (locked: false, the lock may be held), the bytes around every
 * live guarded block: a write into the slack between a block's end and its guard page, or before
 * it, is seen only at free otherwise, and never for a block that is not freed. The first broken
 * block is the error the dump reports. */
bool sx_guard_check_live(bool locked) {
    if (!recs) return false;
    if (locked) sx_spin_lock(&lock);
    bool found = false;
    for (uint32_t i = 0; i < nrecs && !found; i++) {
        const grec *r = &recs[i];
        uintptr_t bad = r->state == LIVE ? pattern_broken(r) : 0;
        if (!bad) continue;
        sx_diag_error e = {.kind = "corrupt-tail", .addr = bad, .block = r->p, .size = r->size,
                           .alloc_stack = r->alloc_stack, .access = "exit"};
        sx_dump_error(&e);
        found = true;
    }
    if (locked) sx_spin_unlock(&lock);
    return found;
}

bool sx_guard_size(const void *p, size_t *size) {
    sx_spin_lock(&lock);
    grec *r = rec_find((uintptr_t)p);
    bool live = r && r->state == LIVE;
    if (live) *size = r->size;
    sx_spin_unlock(&lock);
    return live;
}

/* ---- the fault ---- */
static void on_fault(int sig, siginfo_t *si, void *ctx) {
    uintptr_t a = (uintptr_t)si->si_addr;
    const grec *hit = NULL;
    for (uint32_t i = 0; i < nrecs && !hit; i++)
        if (recs[i].state != UNUSED && a - recs[i].base < recs[i].len) hit = &recs[i];
    if (hit) {
        const char *kind = hit->state == FREED || hit->state == SLOT ? "use-after-free" /* a spare slot: freed too */
                           : a >= hit->p + hit->size ? "overflow"
                                                     : "underflow";
        sx_stack *here = sx_stack_here((sx_site){sx_fault_pc(ctx), 0});
        sx_diag_error e = {.kind = kind, .addr = a, .block = hit->p, .size = hit->size,
                           .alloc_stack = hit->alloc_stack, .free_stack = hit->free_stack,
                           .at_stack = here ? here->id : 0, .access = sx_fault_access(ctx)};
        sx_dump_error(&e);
        sx_dump_write("signal", sig);
        signal(SIGSEGV, SIG_DFL); /* returning faults again, now fatally */
        return;
    }
    sigaction(SIGSEGV, &previous, NULL); /* not ours: to whoever handled it before */
}
