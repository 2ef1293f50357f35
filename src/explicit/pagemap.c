/*
 * pagemap.c — which top-level block of a buddy allocator an address lies in.
 *
 * strata_pages_free and strata_cache_free are given pointers that may come from anywhere; before
 * reading anything at or near them they ask here whether the address lies in a top-level block
 * (pages.c). Top-level blocks are mapped aligned to 4 MiB or more (sx_os_map_aligned), so one
 * entry per 4 MiB of address space suffices: a two-level table, the root in .bss (64 KiB for 47
 * address bits) and leaves of 4096 entries mapped on first use and never freed, so that readers
 * need no lock: two dependent loads.
 *
 * The slab allocator's top-level blocks are exactly 4 MiB: a bitmap marks them as well (sx_slabmap,
 * 4 MiB of .bss of which only the pages covering used addresses are ever touched), so that the
 * check on every strata_cache_free is a single load.
 */
#include "explicit.h"

#define LEAF_SIZE SX_PAGEMAP_LEAF
#define LEAF_BITS SX_PAGEMAP_LEAF_BITS
typedef sx_pagemap_leaf leaf_t;
#define root sx_pagemap_root

_Atomic(sx_pagemap_leaf *) sx_pagemap_root[SX_SEGMAP_BITS >> SX_PAGEMAP_LEAF_BITS];
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

bool sx_pagemap_set(uintptr_t base, size_t size, sx_pages_top *top) {
    for (uintptr_t a = base; a < base + size; a += SX_SEG_SIZE) {
        size_t g = a >> SX_SEG_SHIFT;
        if (g >= SX_SEGMAP_BITS) return false;
        leaf_t *l = leaf_for(g >> LEAF_BITS);
        if (!l) return false;
        atomic_store_explicit(&l->top[g & (LEAF_SIZE - 1)], top, memory_order_release);
    }
    return true;
}

_Atomic uint64_t sx_slabmap[SX_SEGMAP_BITS / 64];

void sx_slabmap_mark(uintptr_t base, bool on) {
    uintptr_t i = base >> SX_SEG_SHIFT;
    if (i < SX_SEGMAP_BITS) sx_bitmap_set(sx_slabmap, i, on);
}
