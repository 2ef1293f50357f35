/*
 * hugecache.c — freed huge mappings kept for reuse.
 *
 * A program that allocates, touches and frees blocks of many megabytes in a loop pays for mmap,
 * munmap and a page fault per 4 KiB every time if each block gets a fresh mapping. So a freed
 * huge block below the mmap threshold (which has adapted to the sizes the program frees, as
 * glibc's does) is kept here, its pages still resident, and the next huge request takes the
 * smallest one that fits, trimmed to size with mremap; failing that, a smaller one grown in place.
 * Entries unused for a second are unmapped, and malloc_trim unmaps them all; the cache never
 * holds more than SX_HUGECACHE_BYTES. Blocks at or above the threshold are unmapped at once, as
 * glibc unmaps its mmap'd chunks.
 *
 * munmap itself can fail when the process has as many mappings as vm.max_map_count allows (a
 * mapping that merged with its neighbour must be split to go). Such a mapping is decommitted and
 * kept aside, to be unmapped at the next purge.
 */
#include <time.h>

#include "region.h"

static sx_segment *entries[SX_HUGECACHE_MAX];
static uint64_t freed_at[SX_HUGECACHE_MAX]; /* ms, CLOCK_MONOTONIC_COARSE */
static unsigned count;
static size_t bytes;
/* count, for sx_hugecache_take's look without the lock: an atomic (relaxed) copy, written under it */
static _Atomic unsigned count_seen;

static sx_segment *stuck[SX_HUGECACHE_MAX];
static size_t stuck_size[SX_HUGECACHE_MAX];
static unsigned nstuck;

/* Unmap a mapping, or decommit it and keep it aside if the kernel refuses (region lock held). */
static void unmap_locked(sx_segment *seg, size_t size) {
    if (sx_os_unmap(seg, size)) return;
    sx_os_decommit(seg, size);
    if (nstuck < SX_HUGECACHE_MAX) { /* beyond that, its address space is lost: its memory is not */
        stuck[nstuck] = seg;
        stuck_size[nstuck++] = size;
    }
}

void sx_huge_unmap(sx_segment *seg, size_t size) {
    if (sx_os_unmap(seg, size)) return;
    sx_lock(&sx_region_lock);
    unmap_locked(seg, size); /* once more, now that it is kept aside if it fails again */
    sx_unlock(&sx_region_lock);
}

bool sx_hugecache_holds(const sx_segment *seg) {
    bool found = false;
    sx_lock(&sx_region_lock);
    for (unsigned i = 0; i < count && !found; i++) found = entries[i] == seg;
    sx_unlock(&sx_region_lock);
    return found;
}

static uint64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static sx_segment *remove_at(unsigned i) {
    sx_segment *seg = entries[i];
    bytes -= seg->size;
    entries[i] = entries[--count];
    freed_at[i] = freed_at[count];
    atomic_store_explicit(&count_seen, count, memory_order_relaxed);
    atomic_fetch_sub_explicit(&sx_count->huge_cached_bytes, seg->size, memory_order_relaxed);
    return seg;
}

/* Unmap entries older than max_age_ms (region lock held). */
static size_t expire(uint64_t max_age_ms) {
    uint64_t now = now_ms();
    size_t released = 0;
    for (unsigned i = 0; i < count;) {
        if (now - freed_at[i] >= max_age_ms) {
            sx_segment *seg = remove_at(i);
            released += seg->size;
            unmap_locked(seg, seg->size);
        } else {
            i++;
        }
    }
    return released;
}

/* Grow a cached mapping to `total` bytes: in place if the address space after it is free,
 * otherwise by moving its pages (page tables, not bytes) to a new aligned place. Either way only
 * the new tail is fresh memory. NULL, with the mapping unmapped, if neither works. */
static sx_segment *grow(sx_segment *seg, size_t total) {
    if (sx_os_remap_inplace(seg, seg->size, total)) {
        seg->size = total;
        return seg;
    }
    sx_segment *dest = sx_os_map_aligned(total, SX_SEG_SIZE, 0);
    if (dest && sx_os_remap_to(seg, seg->size, total, dest)) {
        dest->size = total;
        return dest;
    }
    if (dest) unmap_locked(dest, total);
    unmap_locked(seg, seg->size);
    return NULL;
}

bool sx_hugecache_put(sx_segment *seg) {
    if (seg->size > SX_HUGECACHE_BYTES) return false;
    sx_lock(&sx_region_lock);
    expire(SX_HUGECACHE_AGE_MS);
    /* make room: the oldest entries go first */
    while (count && (count == SX_HUGECACHE_MAX || bytes + seg->size > SX_HUGECACHE_BYTES)) {
        unsigned oldest = 0;
        for (unsigned i = 1; i < count; i++)
            if (freed_at[i] < freed_at[oldest]) oldest = i;
        sx_segment *old = remove_at(oldest);
        unmap_locked(old, old->size);
    }
    entries[count] = seg;
    freed_at[count++] = now_ms();
    atomic_store_explicit(&count_seen, count, memory_order_relaxed);
    bytes += seg->size;
    atomic_fetch_add_explicit(&sx_count->huge_cached_bytes, seg->size, memory_order_relaxed);
    sx_unlock(&sx_region_lock);
    return true;
}

sx_segment *sx_hugecache_take(size_t total) {
    /* a look without the lock: a miss only costs a fresh mapping */
    if (!atomic_load_explicit(&count_seen, memory_order_relaxed)) return NULL;
    sx_lock(&sx_region_lock);
    expire(SX_HUGECACHE_AGE_MS);
    int fit = -1, below = -1;
    for (unsigned i = 0; i < count; i++) {
        size_t s = entries[i]->size;
        if (s >= total && (fit < 0 || s < entries[fit]->size)) fit = (int)i;
        if (s < total && (below < 0 || s > entries[below]->size)) below = (int)i;
    }
    sx_segment *seg = NULL;
    if (fit >= 0) {
        /* The block gets the whole mapping: trimming it would only cost page faults when a
         * bigger request takes it again. The cache's limits and its ageing bound the excess. */
        seg = remove_at((unsigned)fit);
    } else if (below >= 0) {
        seg = remove_at((unsigned)below);
        seg = grow(seg, total);
    }
    sx_unlock(&sx_region_lock);
    return seg;
}

size_t sx_hugecache_purge(void) {
    sx_lock(&sx_region_lock);
    size_t released = expire(0);
    for (unsigned i = nstuck, n = nstuck; i-- > 0;) { /* mappings munmap refused before */
        sx_segment *seg = stuck[i];
        size_t size = stuck_size[i];
        stuck[i] = stuck[--n];
        stuck_size[i] = stuck_size[n];
        nstuck = n;
        if (sx_os_unmap(seg, size)) released += size;
        else if (nstuck < SX_HUGECACHE_MAX) stuck[nstuck] = seg, stuck_size[nstuck++] = size;
    }
    sx_unlock(&sx_region_lock);
    return released;
}
