/*
 * unwind.c — the caller's call stack, for the samplers (the sampled guard, the heap profile):
 * return addresses from glibc's backtrace (the DWARF unwinder in libgcc_s), with libstrata's own
 * frames left out.
 *
 * The first backtrace loads libgcc_s, which allocates and takes the loader's lock. So the first
 * thread to need a stack loads it (sx_unwind_ready) while a thread that comes meanwhile does not
 * wait, since it may hold the loader's lock itself: it goes without a stack this time. The
 * allocations of the loading are the loading thread's own, made while it is in the middle of
 * it: a sampler must not sample them (its caller keeps a flag, see profile.c and sampled.c).
 */
#define _GNU_SOURCE
#include <execinfo.h>
#include <string.h>

#include "support.h"

static uintptr_t own_lo, own_hi; /* libstrata's code, whose frames stacks leave out */
static _Atomic int state;       /* 0 not yet, 1 being loaded, 2 ready */

static void own_module(const sx_module *m, void *arg) {
    (void)arg;
    uintptr_t self = (uintptr_t)sx_unwind;
    if (self >= m->lo && self < m->hi && strstr(m->path, ".so")) own_lo = m->lo, own_hi = m->hi;
}

bool sx_unwind_ready(size_t page) {
    int st = atomic_load_explicit(&state, memory_order_acquire);
    if (sx_likely(st == 2)) return true;
    int expected = 0;
    if (st != 0 || !atomic_compare_exchange_strong(&state, &expected, 1)) return false;
    sx_modules_each(page, own_module, NULL); /* linked in statically: none */
    void *warm[4];
    backtrace(warm, 4);
    atomic_store_explicit(&state, 2, memory_order_release);
    return true;
}

int sx_unwind(void **frames, int max, uintptr_t from) {
    void *buf[SX_UNWIND_MAX + 16];
    if (max > SX_UNWIND_MAX) max = SX_UNWIND_MAX;
    int n = backtrace(buf, max + 16), skip = 0;
    if (from) {
        while (skip < n && (uintptr_t)buf[skip] != from) skip++;
    } else {
        while (skip < n && (uintptr_t)buf[skip] - own_lo < own_hi - own_lo) skip++;
    }
    if (skip == n) skip = 0;
    int d = 0;
    for (int i = skip; i < n && d < max; i++) frames[d++] = buf[i];
    return d;
}
