/*
 * page.c — a page: a span of slices cut into blocks of one size class.
 *
 * A page keeps two free lists, as mimalloc does: `free`, which malloc pops, and `local_free`,
 * which the owner's frees push. When `free` runs dry malloc takes the slow path, swaps the lists,
 * and gets a regular moment to do deferred work (collect other threads' frees). A new page's free
 * list is built lazily, SX_EXTEND_BYTES at a time, so only memory that is used becomes resident.
 *
 * To tell a block's start from an interior pointer without dividing, each page keeps the inverse of
 * the odd part of its block size: for offset o, rotr(o * inv, shift) equals o / size when size
 * divides o and is enormous otherwise, so one compare with the page's capacity checks both that o
 * is a block start and that the block exists (Granlund and Montgomery's divisibility test).
 */
#include "heap.h"

sx_page sx_page_empty; /* free == NULL: the fast path falls through to the slow path */
sx_heap_hooks sx_heap_hook;

/* A free-list link that leaves its block's segment: the end of a list, a stash of other heaps'
 * blocks (which may be anywhere strata's), or a link something overwrote. */
sx_block *sx_block_next_far(const sx_page *pg, const sx_block *b, sx_block *next) {
    /* a list of other heaps' blocks crosses segments: the link must at least lead to one */
    if (next == NULL || (pg->kind == SX_SPAN_STASH && sx_segmap_contains(sx_segment_of(next)))) return next;
    sx_fatal("malloc(): free list corrupted at the %u-byte block %p (overwritten after free, or by an "
             "overflow from the block before it)", (unsigned)pg->block_size, (const void *)b);
}

sx_noinline void sx_page_free_far(sx_heap *h, sx_page *pg, sx_block *b) {
    sx_block *last = pg->local_free;
    (void)sx_block_next_far(pg, last, sx_block_next(last)); /* aborts unless the list ends there */
    sx_page_push_block(h, pg, b);
}

void sx_page_set_block_size(sx_page *pg, size_t bsize) {
    unsigned s = (unsigned)__builtin_ctzl(bsize);
    uint32_t odd = (uint32_t)(bsize >> s), inv = odd; /* odd * odd == 1 mod 8: 3 bits right */
    for (int i = 0; i < 4; i++) inv *= 2 - odd * inv; /* each step doubles them: 48 > 32 */
    pg->block_size = (uint32_t)bsize;
    pg->inv = inv;
    pg->shift = (uint8_t)s;
}

void sx_page_init(sx_heap *h, sx_page *pg, unsigned bin, size_t slices) {
    sx_counts_of(h)->pages[bin]++; /* for `strata stats PID`, which cannot count them itself */
    sx_segment *seg = sx_segment_of_desc(pg);
    size_t bsize = sx_bin_size(bin);
    pg->free = pg->local_free = NULL;
    pg->used = 0;
    __atomic_store_n(&pg->capacity, 0, __ATOMIC_RELAXED);
    pg->start = sx_slice_addr(seg, sx_slice_index(pg));
    sx_page_set_block_size(pg, bsize);
    pg->usable = (uint32_t)(bsize - sx_bin_pad(bin));
    pg->flags = 0;
    pg->trigger = 0;
    pg->kind = SX_SPAN_PAGE;
    pg->bin = (uint8_t)bin;
    pg->slice_count = (uint8_t)slices;
    size_t bytes = slices * SX_SLICE_SIZE;
    if (sx_unlikely(sx_heap_hook.guard != NULL) && sx_heap_hook.guard(pg, true)) {
        bytes -= sx_os_page; /* a guard page between this page and the span after it */
        pg->flags = SX_PAGE_GUARDED;
    }
    pg->reserved = (uint16_t)(bytes / bsize);
    pg->next = pg->prev = NULL;
}

void sx_page_extend(sx_page *pg) {
    size_t bsize = pg->block_size;
    SX_ASSERT(pg->kind == SX_SPAN_PAGE && pg->capacity <= pg->reserved && pg->free == NULL);
    uint32_t n = (uint32_t)pg->reserved - pg->capacity;
    uint32_t step = (uint32_t)(SX_EXTEND_BYTES / bsize);
    if (step == 0) step = 1;
    if (n > step) n = step;
    if (n == 0) return;
    uint8_t *first = pg->start + (size_t)pg->capacity * bsize;
    if (sx_unlikely(sx_heap_hook.extend != NULL)) {
        sx_heap_hook.extend(pg, first, n);
        return;
    }
    uint8_t *b = first;
    for (uint32_t i = 1; i < n; i++, b += bsize) sx_block_link((sx_block *)b, (sx_block *)(b + bsize));
    sx_block_link((sx_block *)b, pg->free);
    pg->free = (sx_block *)first;
    /* Other threads read capacity when they check a pointer they free (relaxed: see types.h). */
    __atomic_store_n(&pg->capacity, (uint16_t)(pg->capacity + n), __ATOMIC_RELAXED);
}

/* The fast path's pop when the link leaves the block's segment: the list's end, or a list of
 * other heaps' blocks, checked out of line (sx_block_next_far aborts on a rewritten link). */
sx_noinline void *sx_direct_pop_far(sx_heap *h, size_t slot, sx_page *pg, sx_block *b, sx_block *next) {
    pg->free = sx_block_next_far(pg, b, next);
    pg->used++;
    sx_counts_of(h)->n_direct[slot]++;
    sx_block_unfree(b);
    return b;
}
