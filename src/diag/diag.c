/*
 * diag.c — the entry points of libstrata-diag.so: each call goes to the core and, by the `diag`
 * option, is recorded (leaks, report) or served from guarded pages (guard).
 *
 * What the diagnostic layer does itself may allocate (reading /proc/self/maps, pthread_atfork
 * grows a list): a thread-local flag marks the thread as busy inside the layer, and its
 * allocations go straight to the core, unrecorded.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>
#include <string.h>

#include "diag.h"

bool sx_diag_linked = true;
int sx_diag_mode;

static _Atomic int ready; /* 0, 1 starting, 2 done */
static __thread int tls_busy __attribute__((tls_model("initial-exec")));
static __thread long tls_sample_left __attribute__((tls_model("initial-exec")));

/* ---- the layer's own memory ---- */
#define MAX_OWN 256
static struct { uintptr_t lo, hi; } own[MAX_OWN];
static size_t nown;
static sx_spin own_lock;

void *sx_diag_map(size_t size) {
    size = sx_align_up(size, sx_os_page);
    void *p = sx_os_map(size);
    if (!p) return NULL;
    sx_spin_lock(&own_lock);
    if (nown < MAX_OWN) own[nown++].lo = (uintptr_t)p, own[nown - 1].hi = (uintptr_t)p + size;
    sx_spin_unlock(&own_lock);
    return p;
}

void sx_diag_unmap(void *p, size_t size) {
    size = sx_align_up(size, sx_os_page);
    sx_spin_lock(&own_lock);
    for (size_t i = 0; i < nown; i++)
        if (own[i].lo == (uintptr_t)p) {
            own[i] = own[--nown];
            break;
        }
    sx_spin_unlock(&own_lock);
    sx_os_unmap(p, size);
}

bool sx_diag_is_own(uintptr_t a, uintptr_t *end) {
    for (size_t i = 0; i < nown; i++)
        if (a >= own[i].lo && a < own[i].hi) {
            *end = own[i].hi;
            return true;
        }
    return false;
}

/* ---- stacks of threads that have exited ----
 * glibc keeps them mapped for the next threads; the frames the thread left there are stale and
 * must not keep blocks "reachable" (its descriptor and TLS at the top are not: they stay
 * scanned). A thread notes its stack at its first recorded allocation; at its exit (a key
 * destructor) the part below that point goes on the dead list; a new thread on the same stack
 * takes it back. */
#define MAX_DEAD 256
static struct { uintptr_t lo, hi; } dead[MAX_DEAD];
static size_t ndead;
static sx_spin dead_lock;
static pthread_key_t exit_key;
static __thread uintptr_t tls_stack_lo, tls_stack_hi;

static void thread_exits(void *arg) {
    (void)arg;
    sx_track_thread_exit();
    volatile uintptr_t here = 0; /* above: the thread's descriptor and TLS, still live; below: stale */
    sx_spin_lock(&dead_lock);
    if (ndead < MAX_DEAD) dead[ndead].lo = tls_stack_lo, dead[ndead++].hi = (uintptr_t)&here;
    sx_spin_unlock(&dead_lock);
}

static sx_noinline void thread_starts(void) {
    tls_stack_lo = 1; /* tried */
    if (gettid() == getpid()) return; /* the main thread's stack is scanned from its pointer */
    pthread_attr_t a;
    void *lo;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &a)) return;
    if (!pthread_attr_getstack(&a, &lo, &size)) {
        tls_stack_lo = (uintptr_t)lo;
        tls_stack_hi = (uintptr_t)lo + size;
        sx_spin_lock(&dead_lock);
        for (size_t i = 0; i < ndead; i++)
            if (dead[i].lo < tls_stack_hi && tls_stack_lo < dead[i].hi) dead[i--] = dead[--ndead];
        sx_spin_unlock(&dead_lock);
        pthread_setspecific(exit_key, (void *)1);
    }
    pthread_attr_destroy(&a);
}

bool sx_diag_is_dead_stack(uintptr_t a, uintptr_t *end) {
    for (size_t i = 0; i < ndead; i++)
        if (a >= dead[i].lo && a < dead[i].hi) {
            *end = dead[i].hi;
            return true;
        }
    return false;
}

/* ---- start-up and fork ---- */
static void fork_prepare(void) {
    sx_spin_lock(&own_lock);
    sx_guard_lock();
    sx_track_lock_all();
}

static void fork_release(void) {
    sx_track_unlock_all();
    sx_guard_unlock();
    sx_spin_unlock(&own_lock);
}

static void fork_child(void) {
    sx_track_fork_child();
    fork_release();
    sx_dump_pid_changed();
}

static sx_noinline void diag_start(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&ready, &expected, 1)) {
        while (atomic_load_explicit(&ready, memory_order_acquire) != 2) sched_yield();
        return;
    }
    tls_busy++;
    sx_process_init();
    if (sx_opt.diag != SX_DIAG_NONE) {
        sx_stack_init();
        if (sx_opt.diag == SX_DIAG_GUARD) sx_guard_init();
        sx_dump_init();
        pthread_key_create(&exit_key, thread_exits);
        pthread_atfork(fork_prepare, fork_release, fork_child);
        sx_diag_mode = sx_opt.diag;
    }
    atomic_store_explicit(&ready, 2, memory_order_release);
    tls_busy--;
}

/* Record this call? (not from inside the layer itself) */
static inline bool recording(void) {
    if (tls_busy) return false;
    if (sx_unlikely(atomic_load_explicit(&ready, memory_order_acquire) != 2)) diag_start();
    return sx_diag_mode != SX_DIAG_NONE;
}

__attribute__((constructor)) static void diag_start_early(void) { recording(); }

/* diag_sample: a stack for the block that crosses the next multiple of the sampling interval. */
static bool want_stack(size_t size) {
    if (!sx_opt.diag_sample) return true;
    tls_sample_left -= (long)size;
    if (tls_sample_left > 0) return false;
    while (tls_sample_left <= 0) tls_sample_left += (long)sx_opt.diag_sample;
    return true;
}

/* ---- the core, unrecorded ---- */
static void *core_alloc(size_t size, size_t align, bool zero) {
    if (align > 16) return sx_alloc(size, align, zero);
    return zero ? sx_calloc_inline(1, size) : sx_malloc_inline(size);
}

/* A free block's first four words hold the core's links (next block, free key, a run's tail and
 * length: types.h, heap/remote.c): stale pointers to other blocks once it is handed out, which the
 * leak scan would take for the program's (memcheck sees them as undefined bytes). Cleared, from
 * `from` (bytes the program's own already) to the end of that head or of the request. */
static inline void clear_links(void *p, size_t from, size_t size) {
    size_t end = size < 4 * sizeof(uintptr_t) ? size : 4 * sizeof(uintptr_t);
    if (from) {
        if (from < end) memset((char *)p + from, 0, end - from);
        return;
    }
    uintptr_t *w = p; /* a new block: the whole words the scan reads (a block holds 16 bytes at least) */
    w[0] = w[1] = 0;
    if (end >= 3 * sizeof *w) w[2] = 0;
    if (end == 4 * sizeof *w) w[3] = 0;
}

/* free() of what is neither guarded nor in a strata segment: invalid, unless forwarded. Recorded
 * for the file; the core says it and stops the program. */
static void invalid_free(void *p, sx_site at) {
    if (sx_opt.foreign_free != SX_FOREIGN_ABORT) return;
    sx_stack *st = sx_stack_here(at);
    sx_diag_error e = {.kind = "invalid-free", .addr = (uintptr_t)p, .block = (uintptr_t)p,
                       .at_stack = st ? st->id : 0, .access = "free"};
    sx_dump_error(&e);
    sx_dump_write("abort", 0);
}

/* The core could serve a block that the guard could not: its records (live and quarantined
 * blocks) or, without guard markers, the map count ran out, not memory. */
static void say_unguarded(void) {
    static _Atomic bool said;
    if (!atomic_exchange(&said, true))
        sx_message("guard: %s; the rest are not guarded (guard_sample=N guards one in N)", sx_guard_limit());
}

/* ---- entry points ---- */
void *sx_diag_alloc(size_t size, size_t align, bool zero, sx_site at) {
    if (!recording()) return core_alloc(size, align, zero);
    tls_busy++;
    if (sx_unlikely(!tls_stack_lo)) thread_starts();
    sx_stack *st = want_stack(size) ? sx_stack_here(at) : NULL;
    void *p = NULL;
    if (sx_diag_mode == SX_DIAG_GUARD) {
        size_t missed = sx_guard_unguarded();
        p = sx_guard_alloc(size, align, st);
        if (!p && sx_guard_unguarded() != missed && (p = core_alloc(size, align, zero)))
            say_unguarded();
    }
    if (!p && (p = core_alloc(size, align, zero)) && !zero) clear_links(p, 0, size);
    if (p) sx_track_add(p, size, st);
    tls_busy--;
    return p;
}

void *sx_diag_calloc(size_t count, size_t size, sx_site at) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return sx_diag_alloc(total, 0, true, at);
}

void sx_diag_free(void *p, const char *fn, sx_site at) {
    if (!p) return;
    bool rec = recording();
    tls_busy++;
    if (sx_unlikely(!tls_stack_lo) && rec) thread_starts();
    size_t size;
    bool guarded = sx_diag_mode == SX_DIAG_GUARD && sx_guard_free(p, sx_stack_here(at));
    if (!guarded && rec && sx_diag_mode == SX_DIAG_GUARD && !sx_segmap_contains(sx_segment_of(p)))
        invalid_free(p, at);
    if (rec || guarded) sx_track_remove(p, &size, NULL);
    if (!guarded) sx_free_inline(p);
    tls_busy--;
}

void *sx_diag_realloc(void *p, size_t size, const char *fn, sx_site at) {
    if (!p) return sx_diag_alloc(size, 0, false, at);
    if (size == 0) {
        sx_diag_free(p, fn, at);
        return NULL;
    }
    bool rec = recording();
    size_t old;
    if (sx_diag_mode == SX_DIAG_GUARD) { /* always a new block: the old one goes to quarantine */
        if (!sx_guard_size(p, &old)) {
            if (!sx_segmap_contains(sx_segment_of(p))) { /* freed guarded block, or invalid */
                if (rec && sx_opt.foreign_free == SX_FOREIGN_ABORT) sx_diag_free(p, fn, at);
                return sx_realloc(p, size, fn);
            }
            if (!rec) return sx_realloc(p, size, fn);
            old = sx_usable_size(p);
        }
        void *q = sx_diag_alloc(size, 0, false, at);
        if (!q) return NULL;
        memcpy(q, p, old < size ? old : size);
        sx_diag_free(p, fn, at);
        return q;
    }
    if (!rec) return sx_realloc_inline(p, size, fn);
    tls_busy++;
    sx_stack *st = NULL;
    bool had = sx_track_remove(p, &old, &st); /* before: once freed, p may be handed out again */
    void *q = sx_realloc_inline(p, size, fn);
    if (q && q != p && had) clear_links(q, old, size);
    if (q) sx_track_add(q, size, want_stack(size) ? sx_stack_here(at) : NULL);
    else if (had) sx_track_add(p, old, st);
    tls_busy--;
    return q;
}

int sx_diag_memalign(void **out, size_t align, size_t size, sx_site at) {
    int saved = errno;
    void *p = sx_diag_alloc(size, align, false, at);
    errno = saved;
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

size_t sx_diag_usable(void *p) {
    size_t size;
    if (p && sx_diag_mode == SX_DIAG_GUARD && sx_guard_size(p, &size)) return size;
    return sx_usable_size(p);
}
