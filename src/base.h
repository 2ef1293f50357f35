/*
 * base.h — what every layer of strata builds on: compiler hints, alignment arithmetic, locks.
 * Below every layer; includes only the geometry (config.h) and the data structures (types.h).
 *
 * The layers and their order: ARCHITECTURE.md ("Layer order:"), checked by tests/layers.sh.
 */
#ifndef STRATA_BASE_H
#define STRATA_BASE_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "types.h"

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

/* Inside a spin loop: tell the core (x86 pause, arm64 yield). */
static inline void sx_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/* Locks: pthread mutexes (no allocation; fork-safe through the atfork handlers, heap/thread.c). */
typedef pthread_mutex_t sx_lock_t;
#define SX_LOCK_INIT PTHREAD_MUTEX_INITIALIZER
static inline void sx_lock(sx_lock_t *l) { pthread_mutex_lock(l); }
static inline void sx_unlock(sx_lock_t *l) { pthread_mutex_unlock(l); }

/* Once per process: true for the one caller that must do the work (then sx_once_done); one that
 * arrives meanwhile waits until the work is done. *state: 0 not yet, 1 running, 2 done. */
static inline bool sx_once_claim(_Atomic int *state) {
    if (atomic_load_explicit(state, memory_order_acquire) == 2) return false;
    int expected = 0;
    if (atomic_compare_exchange_strong(state, &expected, 1)) return true;
    while (atomic_load_explicit(state, memory_order_acquire) != 2) sched_yield();
    return false;
}
static inline void sx_once_done(_Atomic int *state) { atomic_store_explicit(state, 2, memory_order_release); }

/* ---- bitmaps of atomic 64-bit words: one bit per 4 MiB of address space in the segment map
 * (region/segmap.c) and the slab map (explicit/pagemap.c); one implementation for both ---- */
static inline bool sx_bitmap_test(const _Atomic uint64_t *map, size_t bits, uintptr_t i) {
    if (sx_unlikely(i >= bits)) return false;
    return (sx_load_relaxed(&map[i >> 6]) >> (i & 63)) & 1;
}
static inline void sx_bitmap_set(_Atomic uint64_t *map, uintptr_t i, bool on) {
    uint64_t bit = (uint64_t)1 << (i & 63);
    if (on) atomic_fetch_or_explicit(&map[i >> 6], bit, memory_order_release);
    else atomic_fetch_and_explicit(&map[i >> 6], ~bit, memory_order_release);
}

/* ---- doubly-linked lists: one implementation for every list of strata ----
 * Intrusive and NULL-terminated: a node links to its neighbours through two fields of its own,
 * named by the caller (next/prev, all_next/all_prev, ...), so that any struct will do. A list is
 * the pointer to its first node; a queue has one to its last as well. */
#define SX_LIST_PUSH(first, node, NEXT, PREV)                                                      \
    do {                                                                                           \
        __typeof__(node) n_ = (node);                                                              \
        n_->PREV = NULL;                                                                           \
        n_->NEXT = (first);                                                                        \
        if (n_->NEXT) n_->NEXT->PREV = n_;                                                         \
        (first) = n_;                                                                              \
    } while (0)
#define SX_LIST_REMOVE(first, node, NEXT, PREV)                                                    \
    do {                                                                                           \
        __typeof__(node) n_ = (node);                                                              \
        if (n_->PREV) n_->PREV->NEXT = n_->NEXT;                                                   \
        else (first) = n_->NEXT;                                                                   \
        if (n_->NEXT) n_->NEXT->PREV = n_->PREV;                                                   \
    } while (0)
#define SX_QUEUE_PUSH_FRONT(first, last, node, NEXT, PREV)                                         \
    do {                                                                                           \
        __typeof__(node) q_ = (node);                                                              \
        SX_LIST_PUSH(first, q_, NEXT, PREV);                                                       \
        if (!q_->NEXT) (last) = q_;                                                                \
    } while (0)
#define SX_QUEUE_PUSH_BACK(first, last, node, NEXT, PREV)                                          \
    do {                                                                                           \
        __typeof__(node) q_ = (node);                                                              \
        q_->NEXT = NULL;                                                                           \
        q_->PREV = (last);                                                                         \
        if (q_->PREV) q_->PREV->NEXT = q_;                                                         \
        else (first) = q_;                                                                         \
        (last) = q_;                                                                               \
    } while (0)
#define SX_QUEUE_REMOVE(first, last, node, NEXT, PREV)                                             \
    do {                                                                                           \
        __typeof__(node) q_ = (node);                                                              \
        if (q_->PREV) q_->PREV->NEXT = q_->NEXT;                                                   \
        else (first) = q_->NEXT;                                                                   \
        if (q_->NEXT) q_->NEXT->PREV = q_->PREV;                                                   \
        else (last) = q_->PREV;                                                                    \
    } while (0)

#endif
