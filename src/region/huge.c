/*
 * huge.c — blocks with a mapping of their own, and the mmap threshold that decides which blocks
 * get one.
 *
 * As in glibc, a request at or above the mmap threshold (default 128 KiB) is mmap'd on its own and
 * munmap'd when freed, so its memory returns to the kernel at once. The threshold adapts upward:
 * freeing such a block raises it to the block's size (up to 32 MiB), and the trim threshold to
 * twice that, so a program that keeps allocating blocks of that size gets them from its heap
 * instead of paying for mmap, munmap and page faults every time. Setting either threshold (mallopt
 * or STRATA_OPTIONS) fixes both. Blocks bigger than a segment's spans always get their own mapping.
 *
 * A huge mapping starts with a segment header so that free() finds it like any other block; its
 * size changes with mremap, in place when the address space after it is free, otherwise by moving
 * its page tables (no copy) to a new aligned place. Freed huge blocks below the threshold are kept
 * for reuse for a while (hugecache.c).
 *
 * Once unmapped, a huge block's address is no longer strata's, and a second free of it would look
 * like a pointer from another allocator: the addresses of the last SX_HUGE_FREED blocks freed are
 * remembered, so that such a free is named a double free (sx_huge_freed).
 */
#include <string.h>

#include "region.h"

_Atomic size_t sx_mmap_threshold = SX_MMAP_THRESHOLD_DEFAULT;
_Atomic size_t sx_trim_threshold = SX_TRIM_THRESHOLD_DEFAULT;
_Atomic size_t sx_top_pad = SX_TOP_PAD_DEFAULT;
_Atomic bool sx_threshold_fixed;
_Atomic size_t sx_direct_slots = SX_DIRECT_SLOTS;
_Atomic unsigned sx_direct_epoch;

/* The malloc fast path serves sizes up to 1 KiB from the direct page table, whose slots point at
 * pages only for sizes it may serve: below the mmap threshold, and none at all with statistics or
 * when a layer above needs every request (sx_huge_hook.slow_path). A threshold lowered below 1 KiB at run time reaches
 * other threads' tables at their next slow path (sx_direct_epoch). */
static void update_fast_limit(size_t threshold) {
    size_t slots = 0; /* none: statistics, a layer above that asks for it (sx_huge_hook) and a threshold of 0 need the slow path */
    if (threshold && !sx_opt.stats && !sx_huge_hook.slow_path) {
        size_t lim = threshold - 1 < SX_DIRECT_MAX ? threshold - 1 : SX_DIRECT_MAX;
        slots = lim / 16 + 1; /* slot d serves sizes up to 16d */
    }
    if (atomic_exchange_explicit(&sx_direct_slots, slots, memory_order_relaxed) != slots)
        atomic_fetch_add_explicit(&sx_direct_epoch, 1, memory_order_release);
}

_Atomic size_t sx_mmap_threshold_low = SX_MMAP_THRESHOLD_DEFAULT;

void sx_threshold_set_mmap(size_t v) {
    size_t low = atomic_load(&sx_mmap_threshold_low);
    while (v < low && !atomic_compare_exchange_weak(&sx_mmap_threshold_low, &low, v)) {}
    atomic_store(&sx_mmap_threshold, v);
    update_fast_limit(v);
}

/* Copy the thresholds into sx_count, where the statistics (and `strata stats PID`) read them;
 * called after every change. */
void sx_thresholds_share(void) {
    sx_store_relaxed(&sx_count->mmap_threshold, atomic_load(&sx_mmap_threshold));
    sx_store_relaxed(&sx_count->trim_threshold, atomic_load(&sx_trim_threshold));
    sx_store_relaxed(&sx_count->top_pad, atomic_load(&sx_top_pad));
    sx_store_relaxed(&sx_count->threshold_fixed, (size_t)atomic_load(&sx_threshold_fixed));
}

void sx_thresholds_init(void) {
    sx_threshold_set_mmap(sx_opt.mmap_threshold);
    atomic_store(&sx_trim_threshold, sx_opt.trim_threshold);
    atomic_store(&sx_top_pad, sx_opt.top_pad);
    atomic_store(&sx_threshold_fixed, sx_opt.mmap_threshold_set || sx_opt.trim_threshold_set ||
                                          sx_opt.top_pad_set || sx_huge_hook.fixed_threshold);
    sx_thresholds_share();
}

/* Secure mode ends each huge block's mapping with an inaccessible page. */
sx_huge_hooks sx_huge_hook;

static size_t guard_bytes(void) { return sx_huge_hook.guard; }

/* Offset of the block from the mapping's start: after the header, or exactly one segment in for
 * alignments of a segment or more (sx_segment_of maps that address back to the header). */
static size_t block_offset(size_t align) {
    if (align >= SX_SEG_SIZE) return SX_SEG_SIZE;
    size_t a = align < 64 ? 64 : align;
    return sx_align_up(sizeof(sx_segment), a);
}

static void account(sx_segment *seg, bool add) {
    size_t bytes = seg->size;
    if (add) {
        size_t b = atomic_fetch_add(&sx_count->huge_bytes, bytes) + bytes;
        size_t c = atomic_fetch_add(&sx_count->huge_count, 1) + 1;
        if (b > atomic_load(&sx_count->huge_max_bytes)) atomic_store(&sx_count->huge_max_bytes, b);
        if (c > atomic_load(&sx_count->huge_max_count)) atomic_store(&sx_count->huge_max_count, c);
    } else {
        atomic_fetch_sub(&sx_count->huge_bytes, bytes);
        atomic_fetch_sub(&sx_count->huge_count, 1);
    }
}

/* ---- recently freed huge blocks ---- */

static _Atomic(const void *) freed_ring[SX_HUGE_FREED]; /* written under the region lock */
static unsigned freed_next;

static void remember_freed(const void *block) {
    sx_store_relaxed(&freed_ring[freed_next++ % SX_HUGE_FREED], block);
}

bool sx_huge_freed(const void *p) {
    bool found = false;
    for (unsigned i = 0; i < SX_HUGE_FREED && !found; i++) found = sx_load_relaxed(&freed_ring[i]) == p;
    /* the address may have been mapped since by someone else, whose block this then is; a
     * mapping strata keeps for reuse (hugecache.c) is still strata's */
    return found && (!sx_os_mapped(p) || sx_hugecache_holds(sx_segment_of(p)));
}

static void publish(sx_segment *seg) {
    sx_lock(&sx_region_lock);
    sx_segmap_set(seg);
    sx_segment_list_add(seg);
    account(seg, true);
    atomic_fetch_add_explicit(&sx_count->huge_allocs, 1, memory_order_relaxed);
    sx_unlock(&sx_region_lock);
}

static void unpublish(sx_segment *seg) {
    sx_lock(&sx_region_lock);
    remember_freed(seg->slices[0].start); /* moved by realloc or freed: a free of it is double */
    sx_segmap_clear(seg);
    sx_segment_list_remove(seg);
    account(seg, false);
    sx_unlock(&sx_region_lock);
}

/* The canary at the end of descriptor d (or a copy of it), right below the block at `at` when that
 * is at the default offset: its last byte is the one an underflow by 1 writes, and no stray NUL or
 * text byte matches it (sx_canary). */
static void set_below(sx_page *d, const void *at) {
    _Static_assert(offsetof(sx_page, prev) + sizeof d->prev + 16 <= sizeof(sx_page), "padding at the end");
    uintptr_t *w = (uintptr_t *)(d + 1) - 2;
    w[0] = w[1] = sx_canary(at, 0xbb67ae8584caa73bull);
}

/* Describe the mapping: every slice points back to slice 0, the block's page. */
static void set_block(sx_segment *seg, size_t size, size_t off, unsigned align_log) {
    seg->size = size;
    atomic_store_explicit(&seg->commit_end, (uintptr_t)seg + size, memory_order_relaxed);
    for (unsigned i = 0; i <= SX_SLICES; i++) sx_slice_set_back(&seg->slices[i], i);
    set_below(&seg->slices[SX_SLICES], &seg->slices[SX_SLICES + 1]); /* below a block at the default offset */
    sx_page *pg = &seg->slices[0];
    pg->start = (uint8_t *)seg + off;
    pg->bin = (uint8_t)align_log;
}

/* Make a mapping of `total` bytes at seg the home of one block at offset off. */
static void *adopt(sx_segment *seg, size_t total, size_t off, size_t align, bool keep) {
    atomic_store_explicit(&seg->heap, NULL, memory_order_relaxed);
    seg->kind = SX_SEG_HUGE;
    seg->source = SX_SRC_MMAP;
    seg->cached = keep; /* for huge blocks: may be kept for reuse when freed */
    seg->used_slices = 0;
    seg->reserved_slices = 0;
    seg->next = seg->prev = NULL;
    sx_page *pg = &seg->slices[0];
    memset(pg, 0, sizeof *pg);
    sx_page_init_block(pg, SX_SPAN_HUGE, (uint8_t)__builtin_ctzl(align), (uint8_t *)seg + off, 0);
    pg->slice_count = 1;
    set_block(seg, total, off, (unsigned)__builtin_ctzl(align));
    publish(seg);
    return pg->start;
}

void *sx_huge_alloc(size_t size, size_t align, bool zero) {
    if (align < 16) align = 16;
    if (size < sizeof(sx_block)) size = sizeof(sx_block); /* room for the free key */
    size_t off = block_offset(align);
    if (size > SIZE_MAX - off - sx_os_page) return NULL;
    size_t total = sx_align_up(off + size, sx_os_page) + guard_bytes();
    /* Only a block below the mmap threshold (too big for a segment) is heap memory that may be
     * reused; a cached mapping has the default block offset, and its memory is not zero. */
    bool keep = size < atomic_load_explicit(&sx_mmap_threshold, memory_order_relaxed) &&
                off == block_offset(16);
    sx_segment *seg = keep ? sx_hugecache_take(total) : NULL;
    if (seg) {
        void *p = adopt(seg, seg->size, off, align, true); /* the mapping may be bigger */
        ((sx_block *)p)->key = 0;
        if (zero) memset(p, 0, size);
        return p;
    }
    if (sx_huge_hook.reuse && off == block_offset(16) && (seg = sx_huge_hook.reuse(total)) != NULL)
        return adopt(seg, total, off, align, false); /* zero, its guard in place */
    if (sx_opt.huge_pages == SX_HUGE_HUGETLB && align <= SX_SEG_SIZE) {
        size_t t2 = sx_align_up(total, (size_t)2 << 20); /* reserved huge pages, if any */
        if ((seg = sx_os_map_hugetlb(t2, SX_SEG_SIZE)) != NULL) total = t2;
    }
    if (!seg) seg = sx_os_map_aligned(total, align, align > SX_SEG_SIZE ? off : 0);
    if (!seg && (sx_hugecache_purge() || sx_segcache_purge())) /* address space full: */
        seg = sx_os_map_aligned(total, align, align > SX_SEG_SIZE ? off : 0); /* make room */
    if (!seg) return NULL;
    else if (sx_opt.huge_pages != SX_HUGE_OFF || (sx_huge_hook.thp_from && total >= sx_huge_hook.thp_from))
        sx_os_advise_huge(seg, total);
    sx_limit_take(total);
    if (((uintptr_t)seg + total - 1) >> SX_ADDR_BITS) {
        sx_os_unmap(seg, total);
        return NULL;
    }
    /* secure mode: the mapping's last page is a guard; one taken from the cache has it already */
    if (guard_bytes()) sx_os_guard((uint8_t *)seg + total - guard_bytes(), guard_bytes(), true);
    return adopt(seg, total, off, align, keep); /* a fresh mapping is zero-filled */
}

size_t sx_huge_usable(sx_segment *seg, const void *p) {
    return (uintptr_t)seg + seg->size - guard_bytes() - (uintptr_t)p;
}

/* A block at the default offset lies right after its segment's last descriptor, which only ever
 * holds its slice_back and, in its last 16 bytes (padding), a canary: 128 bytes that an underflow
 * of 1 to 128 bytes rewrites. */
void sx_huge_check_below(const void *p, const char *fn) {
    const sx_page *last = &sx_segment_of(p)->slices[SX_SLICES];
    if ((const uint8_t *)(last + 1) != (const uint8_t *)p) return;
    sx_page want;
    memset(&want, 0, sizeof want);
    want.slice_back = last->slice_back;
    set_below(&want, p);
    if (memcmp(last, &want, sizeof want))
        sx_fatal("%s(): heap underflow before the block at %p: the bytes before it were overwritten",
                 fn, p);
}

void sx_huge_free(sx_segment *seg) {
    size_t size = seg->size;
    bool keep = seg->cached;
    unpublish(seg);
    atomic_fetch_add_explicit(&sx_count->huge_frees, 1, memory_order_relaxed);
    if (!atomic_load_explicit(&sx_threshold_fixed, memory_order_relaxed) &&
        size > atomic_load(&sx_mmap_threshold) && size <= SX_MMAP_THRESHOLD_MAX) {
        sx_threshold_set_mmap(size);
        atomic_store(&sx_trim_threshold, 2 * size);
        sx_thresholds_share();
        if (sx_opt.verbose >= 2) sx_message("mmap threshold raised to %zu", size);
    }
    /* A block that was below the threshold is heap memory, kept for reuse; one at or above it
     * had a mapping of its own, which goes back to the kernel now. */
    if (keep && !sx_under_pressure() && sx_hugecache_put(seg)) return;
    if (sx_huge_hook.hold) { /* held inaccessible a while: no immediate reuse of the address */
        sx_huge_hook.hold(seg, size, (size_t)(seg->slices[0].start - (uint8_t *)seg));
        return;
    }
    sx_huge_unmap(seg, size);
}

void *sx_huge_realloc(sx_segment *seg, void *p, size_t size) {
    size_t off = (uintptr_t)p - (uintptr_t)seg, old = seg->size;
    if (size > SIZE_MAX - off - sx_os_page) return NULL;
    size_t total = sx_align_up(off + size, sx_os_page);
    if (total == old) return p;
    if (sx_os_remap_inplace(seg, old, total)) {
        if (total > old) sx_limit_take(total - old);
        sx_lock(&sx_region_lock);
        account(seg, false);
        seg->size = total;
        atomic_store_explicit(&seg->commit_end, (uintptr_t)seg + total, memory_order_relaxed);
        account(seg, true);
        sx_unlock(&sx_region_lock);
        return p;
    }
    if (total < old) return p; /* could not shrink: keep the bigger block */
    size_t align = (size_t)1 << seg->slices[0].bin;
    sx_segment *dest = sx_os_map_aligned(total, align, align > SX_SEG_SIZE ? off : 0);
    if (!dest) return NULL;
    unpublish(seg);
    if (!sx_os_remap_to(seg, old, total, dest)) {
        sx_huge_unmap(dest, total);
        publish(seg);
        return NULL;
    }
    sx_limit_take(total - old);
    set_block(dest, total, off, dest->slices[0].bin);
    publish(dest);
    return (uint8_t *)dest + off;
}
