/*
 * pagemap.c — which top-level block of a buddy allocator an address lies in.
 *
 * strata_pages_free and strata_cache_free are given pointers that may come from anywhere; before
 * reading anything at or near them they ask here whether the address lies in a top-level block
 * (pages.c). Top-level blocks are mapped aligned to 4 MiB or more (sx_os_map_aligned), so one
 * entry per 4 MiB of address space suffices: a two-level table, the root in .bss (64 KiB for 47
 * address bits) and leaves of 4096 entries mapped on first use and never freed, so that readers
 * need no lock: two dependent loads.
 */
#include "explicit.h"

#define LEAF_BITS 12
#define LEAF_SIZE ((size_t)1 << LEAF_BITS)
#define ROOT_SIZE (SX_SEGMAP_BITS >> LEAF_BITS)

typedef struct {
    _Atomic(sx_ptop *) top[LEAF_SIZE];
} leaf_t;

static _Atomic(leaf_t *) root[ROOT_SIZE];
static sx_lock_t leaf_lock = SX_LOCK_INIT;

static leaf_t *leaf_for(size_t i) {
    leaf_t *l = atomic_load_explicit(&root[i], memory_order_acquire);
    if (l) return l;
    sx_lock(&leaf_lock);
    l = atomic_load_explicit(&root[i], memory_order_relaxed);
    if (!l) {
        l = sx_os_map(sizeof(leaf_t));
        if (l) atomic_store_explicit(&root[i], l, memory_order_release);
    }
    sx_unlock(&leaf_lock);
    return l;
}

bool sx_pagemap_set(uintptr_t base, size_t size, sx_ptop *top) {
    for (uintptr_t a = base; a < base + size; a += SX_SEG_SIZE) {
        size_t g = a >> SX_SEG_SHIFT;
        if (g >= SX_SEGMAP_BITS) return false;
        leaf_t *l = leaf_for(g >> LEAF_BITS);
        if (!l) return false;
        atomic_store_explicit(&l->top[g & (LEAF_SIZE - 1)], top, memory_order_release);
    }
    return true;
}

sx_ptop *sx_pagemap_get(uintptr_t addr) {
    size_t g = addr >> SX_SEG_SHIFT;
    if (sx_unlikely(g >= SX_SEGMAP_BITS)) return NULL;
    leaf_t *l = atomic_load_explicit(&root[g >> LEAF_BITS], memory_order_acquire);
    if (sx_unlikely(!l)) return NULL;
    return atomic_load_explicit(&l->top[g & (LEAF_SIZE - 1)], memory_order_acquire);
}
