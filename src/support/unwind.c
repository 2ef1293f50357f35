/*
 * unwind.c — the caller's call stack, for the samplers (the sampled guard, the heap profile):
 * return addresses from the DWARF unwinder (_Unwind_Backtrace), with libstrata's own frames left
 * out.
 *
 * The unwinder is libgcc's, linked into libstrata (-static-libgcc, its symbols kept local): glibc's
 * backtrace() would dlopen libgcc_s at its first call, and a first sample can come from anywhere,
 * the dynamic loader included — a malloc of ld.so in the middle of a dlopen, where loading
 * another object crashes it. Linked in, nothing is ever loaded. It finds other objects' frame
 * tables through glibc (_dl_find_object), without the loader's lock.
 *
 * The first caller also reads which addresses are libstrata's (/proc/self/maps, support/maps.c);
 * a thread that comes meanwhile does not wait: it goes without a stack this time.
 */
#define _GNU_SOURCE
#include <string.h>
#include <unwind.h>

#include "support.h"

static uintptr_t own_lo, own_hi; /* libstrata's code, whose frames stacks leave out */
static _Atomic int state;       /* 0 not yet, 1 being read, 2 ready */

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
    atomic_store_explicit(&state, 2, memory_order_release);
    return true;
}

typedef struct {
    void **frames;
    int n, max;
    uintptr_t from; /* 0: leave out libstrata's first frames; else the frame to start at */
    bool started;
} walk;

/* One frame: kept once the walk has started (at `from`, or past libstrata's frames), up to max;
 * the walk stops there, so that a deep stack costs no more than the frames kept. */
static _Unwind_Reason_Code one_frame(struct _Unwind_Context *ctx, void *arg) {
    walk *w = arg;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (!ip || w->n >= w->max) return _URC_END_OF_STACK;
    if (!w->started) {
        if (w->from ? ip != w->from : ip - own_lo < own_hi - own_lo) return _URC_NO_REASON;
        w->started = true;
    }
    w->frames[w->n++] = (void *)ip;
    return _URC_NO_REASON;
}

int sx_unwind(void **frames, int max, uintptr_t from) {
    if (max > SX_UNWIND_MAX) max = SX_UNWIND_MAX;
    walk w = {frames, 0, max, from, false};
    _Unwind_Backtrace(one_frame, &w);
    if (!w.started) { /* `from` never came (or every frame was libstrata's): the whole stack */
        w = (walk){frames, 0, max, 0, true};
        _Unwind_Backtrace(one_frame, &w);
    }
    return w.n;
}
