/*
 * registry.c — the live object caches and page allocators, the ids that index every thread's
 * magazines, and what fork does to their locks.
 *
 * fork copies only the calling thread: a lock another thread held at that moment would stay held
 * in the child for good. The prepare handler takes every lock of this layer — the registry, each
 * cache's, the list of page allocators and each one's, pool_debug's, the pools' quarantine — in
 * the order they nest, and both sides release them after. It is registered after the core's
 * handlers, so it runs before them (prepare handlers run in reverse): a thread inside a cache
 * may be waiting for a core lock, which is still free then.
 */
#include "explicit.h"

sx_lock_t sx_x_registry_lock = SX_LOCK_INIT;
static strata_cache *caches;
static uint64_t ids_used[SX_CACHE_IDS / 64];

static sx_lock_t pages_list_lock = SX_LOCK_INIT;
static strata_pages *pages_list;

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void) {
    sx_lock(&sx_x_registry_lock);
    for (strata_cache *c = caches; c; c = c->reg_next) sx_lock(&c->lock);
    sx_lock(&pages_list_lock);
    for (strata_pages *pa = pages_list; pa; pa = pa->reg_next) sx_lock(&pa->lock);
    sx_lock(&sx_pool_debug_lock);
    sx_lock(&sx_pool_quarantine_lock);
}

static void fork_release(void) {
    sx_unlock(&sx_pool_quarantine_lock);
    sx_unlock(&sx_pool_debug_lock);
    for (strata_pages *pa = pages_list; pa; pa = pa->reg_next) sx_unlock(&pa->lock);
    sx_unlock(&pages_list_lock);
    for (strata_cache *c = caches; c; c = c->reg_next) sx_unlock(&c->lock);
    sx_unlock(&sx_x_registry_lock);
}

static void fork_init(void) {
    sx_process_init(); /* the core's handlers first */
    pthread_atfork(fork_prepare, fork_release, fork_release);
}

void sx_registry_cache_add(strata_cache *c) {
    pthread_once(&fork_once, fork_init);
    sx_lock(&sx_x_registry_lock);
    c->id = SX_CACHE_IDS; /* none free: the cache works without magazines */
    for (unsigned w = 0; w < SX_CACHE_IDS / 64; w++)
        if (~ids_used[w]) {
            unsigned b = (unsigned)__builtin_ctzll(~ids_used[w]);
            ids_used[w] |= (uint64_t)1 << b;
            c->id = w * 64 + b;
            break;
        }
    SX_LIST_PUSH(caches, c, reg_next, reg_prev);
    sx_unlock(&sx_x_registry_lock);
}

void sx_registry_cache_remove(strata_cache *c) {
    SX_LIST_REMOVE(caches, c, reg_next, reg_prev);
    if (c->id < SX_CACHE_IDS) ids_used[c->id / 64] &= ~((uint64_t)1 << (c->id % 64));
}

void sx_registry_pages_add(strata_pages *pa) {
    pthread_once(&fork_once, fork_init);
    sx_lock(&pages_list_lock);
    SX_LIST_PUSH(pages_list, pa, reg_next, reg_prev);
    sx_unlock(&pages_list_lock);
}

void sx_registry_pages_remove(strata_pages *pa) {
    sx_lock(&pages_list_lock);
    SX_LIST_REMOVE(pages_list, pa, reg_next, reg_prev);
    sx_unlock(&pages_list_lock);
}
