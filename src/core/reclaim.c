/*
 * reclaim.c — giving back everything strata holds but does not use, when the process is short of
 * memory.
 *
 * strata keeps memory it does not use in many places, each for speed: a running thread keeps an
 * empty page per size class and its last empty segment; the pages of free spans stay resident in
 * their segments; empty segments wait in the segment cache, freed huge mappings in the huge cache;
 * the top of the brk heap is lowered only past the trim threshold; exited threads' heaps wait
 * as orphans. None of that may stand between a program and the memory it asks for. So:
 *
 *   - when the kernel refuses memory (mmap or brk fail: RLIMIT_AS, vm.max_map_count, no memory),
 *     the allocation that failed gives all of it back (sx_reclaim) and tries once more before it
 *     returns NULL with ENOMEM;
 *   - under a memory limit (support/limit.c: the cgroup's, or memory_limit=), each time strata has
 *     taken another step of memory from the kernel the next slow path looks at the usage, and past
 *     the high-water mark gives everything back at once and keeps nothing cached until the usage
 *     falls below the mark again (sx_pressure);
 *   - malloc_trim does the same on request.
 *
 * The calling thread gives back its own heap's memory; orphan heaps are collected; for every other
 * live thread, the free spans and empty segments of its heap (which only its slow path touches,
 * under the heap's span lock) are given back when the lock is free, and the owner is asked to give
 * back its kept pages at its next slow path. One thread reclaims at a time (sx_reclaim_lock, also
 * taken around fork).
 */
#include "core.h"

/* The calling thread's own heap: everything it keeps goes. */
static size_t give_back_own(sx_heap *h, size_t pad) {
    if (sx_heap_hook.release) sx_heap_hook.release(h); /* secure mode: its quarantine */
    return sx_heap_give_back(h, pad);
}

/* Other threads' heaps: what their owners' fast paths never touch. */
static size_t give_back_others(sx_heap *self) {
    size_t bytes = 0;
    sx_lock(&sx_orphan_lock);
    sx_heap *first = sx_all_heaps;
    sx_unlock(&sx_orphan_lock);
    for (sx_heap *h = first; h; h = h->all_next) { /* heaps are never freed; new ones go in front */
        if (h == self || atomic_load_explicit(&h->state, memory_order_acquire) != SX_HEAP_LIVE)
            continue;
        bytes += sx_span_reclaim_other(h);
        atomic_store_explicit(&h->trim_asked, true, memory_order_relaxed);
    }
    return bytes;
}

size_t sx_reclaim(size_t pad) {
    size_t bytes = 0;
    /* acquire: the heap as the first sample made it (heap/profile.c) */
    sx_heap *profile_heap = atomic_load_explicit(&sx_profile_heap, memory_order_acquire);
    if (profile_heap) { /* no thread runs it to be asked; before the reclaim lock, as fork */
        sx_lock(&sx_profile_lock);
        bytes += sx_heap_give_back(profile_heap, 0);
        sx_unlock(&sx_profile_lock);
    }
    sx_lock(&sx_reclaim_lock);
    sx_heap *self = sx_tls_heap;
    if (self != &sx_heap_empty) bytes += give_back_own(self, pad);
    bytes += sx_orphans_give_back();
    bytes += give_back_others(self);
    bytes += sx_segcache_purge();
    bytes += sx_hugecache_purge();
    if (sx_huge_hook.purge) bytes += sx_huge_hook.purge(); /* secure mode's held mappings */
    sx_unlock(&sx_reclaim_lock);
    if (sx_opt.verbose >= 2) {
        char b[32];
        sx_message("gave back %s", sx_fmt_bytes(b, sizeof b, bytes));
    }
    return bytes;
}

void sx_limit_check(void) {
    if (!atomic_exchange_explicit(&sx_limit_due, false, memory_order_relaxed)) return;
    atomic_store_explicit(&sx_limit_credit, (intptr_t)sx_limit_step, memory_order_relaxed);
    size_t used = sx_limit_usage();
    bool over = used >= sx_limit_mark;
    bool was = atomic_exchange_explicit(&sx_pressure, over, memory_order_relaxed);
    if (over) {
        if (!was && sx_opt.verbose >= 1) {
            char u[32], l[32];
            sx_message("%s in use, past %d%% of the %s limit: giving back cached memory",
                       sx_fmt_bytes(u, sizeof u, used), sx_opt.high_water,
                       sx_fmt_bytes(l, sizeof l, sx_limit_bytes));
        }
        sx_reclaim(0);
    }
}
