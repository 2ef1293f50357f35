/*
 * scan.c — which unfreed blocks can the program still reach at exit? (a conservative mark)
 *
 * The roots are every readable and writable mapping of the process (data and bss of the program
 * and its libraries, this one's too, thread stacks, anonymous mappings) except strata's own memory
 * (its segments, the diagnostic layer's tables, and the blocks themselves, which are scanned only
 * once reached) and the stacks of threads that have exited. Any aligned word that points into a
 * block (its start or inside it) marks the block reachable, and the block is scanned in turn.
 * What is left unmarked is lost: nothing in the process points to it any more.
 *
 * As memcheck does, the stack of the thread that exits counts only from its stack pointer up:
 * from the frame of the exit hook (sx_scan_stack_from, set by dump.c), so that neither the frames
 * of the record and of this scan nor the stale words that returned calls left below the program's
 * live frames keep a block; the hook's registers are kept in a static (a root) first. The stacks
 * of other threads still running are scanned whole (their stack pointers are not known: a block
 * only a stale word there points to counts reachable). A block's first words, where the core
 * keeps its links while the block is free, are cleared when diag.c hands it out. A block only
 * pointed into (not at its start) counts reachable, where memcheck says "possibly lost".
 *
 * Pages not resident (never touched, or swapped out) are skipped; mincore says which.
 */
#define _GNU_SOURCE
#include <string.h>

#include "diag.h"

static sx_tracked *blocks;
static uint8_t *marked;
static uint32_t *work;
static size_t nblocks, nwork;
/* Below the lowest block and past the highest: not pointers to a block themselves (this library's
 * data is a root like any other). */
static uintptr_t below_all, hi_all;
uintptr_t sx_scan_stack_from;

/* ---- sorting the blocks by address (no qsort: it may allocate) ---- */
static void sift(sx_tracked *a, size_t i, size_t n) {
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && a[c + 1].addr > a[c].addr) c++;
        if (a[i].addr >= a[c].addr) return;
        sx_tracked t = a[i];
        a[i] = a[c];
        a[c] = t;
        i = c;
    }
}

static void heapsort(sx_tracked *a, size_t n) {
    for (size_t i = n / 2; i-- > 0;) sift(a, i, n);
    for (size_t i = n; i-- > 1;) {
        sx_tracked t = a[0];
        a[0] = a[i];
        a[i] = t;
        sift(a, 0, i);
    }
}

/* The block containing a, or -1. */
static ptrdiff_t block_at(uintptr_t a) {
    size_t lo = 0, hi = nblocks;
    while (lo < hi) { /* first block starting above a */
        size_t mid = (lo + hi) / 2;
        if (blocks[mid].addr <= a) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return -1;
    const sx_tracked *b = &blocks[lo - 1];
    return a < b->addr + (b->size ? b->size : 1) ? (ptrdiff_t)(lo - 1) : -1;
}

static void scan_words(uintptr_t from, uintptr_t to) {
    from = sx_align_up(from, sizeof(uintptr_t));
    for (const uintptr_t *w = (const uintptr_t *)from; (uintptr_t)(w + 1) <= to; w++) {
        uintptr_t v = *w;
        if (v <= below_all || v >= hi_all) continue;
        ptrdiff_t i = block_at(v);
        if (i >= 0 && !marked[i]) {
            marked[i] = 1;
            work[nwork++] = (uint32_t)i;
        }
    }
}

/* Where strata's own memory that starts at or covers a ends, or 0 if a is not in it. */
static uintptr_t skip_own(uintptr_t a) {
    uintptr_t seg = sx_align_down(a, SX_SEG_SIZE), end;
    if (seg && sx_segmap_contains((void *)seg)) return seg + SX_SEG_SIZE; /* blocks are no roots */
    if (sx_diag_is_own(a, &end) || sx_diag_is_dead_stack(a, &end)) return end;
    ptrdiff_t b = block_at(a); /* a huge block's later pages */
    if (b >= 0) return blocks[b].addr + blocks[b].size + 1;
    return 0;
}

/* Scan [from, to) of a root mapping, resident pages only, leaving out strata's own memory. */
static void scan_root(uintptr_t from, uintptr_t to) {
    unsigned char vec[256];
    uintptr_t page = sx_os_page, batch = 0, batch_end = 0; /* pages vec describes */
    for (uintptr_t a = from; a < to;) {
        uintptr_t skip = skip_own(a);
        if (skip) {
            a = skip;
            continue;
        }
        uintptr_t pg = sx_align_down(a, page), e = pg + page < to ? pg + page : to;
        if (pg < batch || pg >= batch_end) {
            size_t n = (to - pg + page - 1) / page;
            if (n > sizeof vec) n = sizeof vec;
            if (!sx_os_resident((void *)pg, n * page, vec)) memset(vec, 1, n);
            batch = pg;
            batch_end = pg + n * page;
        }
        if (vec[(pg - batch) / page] & 1) scan_words(a, e);
        a = e;
    }
}

/* One line of /proc/self/maps: scan it if it is readable and writable. */
static void root_line(const sx_map_line *m, void *arg) {
    uintptr_t sp = *(const uintptr_t *)arg, lo = m->lo;
    if (m->perms[0] != 'r' || m->perms[1] != 'w') return;
    if (!strcmp(m->name, "[vvar]") || !strcmp(m->name, "[vsyscall]")) return;
    if (sp >= lo && sp < m->hi) lo = sp; /* this thread's stack: from its pointer up */
    scan_root(lo, m->hi);
}

static sx_noinline void scan_roots(void) {
    volatile uintptr_t here = 0;
    uintptr_t sp = sx_scan_stack_from ? sx_scan_stack_from : (uintptr_t)&here;
    sx_maps_each(root_line, &sp);
}

static void propagate(void) {
    while (nwork) {
        const sx_tracked *b = &blocks[work[--nwork]];
        scan_words(b->addr, b->addr + b->size);
    }
}

uint64_t sx_scan_nostack[4]; /* lost blocks, bytes, reachable blocks, bytes: blocks without a stack */

static void tally(void) {
    for (size_t i = 0; i < nblocks; i++) {
        sx_stack *st = blocks[i].st;
        if (!st) {
            sx_scan_nostack[marked[i] ? 2 : 0]++;
            sx_scan_nostack[marked[i] ? 3 : 1] += blocks[i].size;
            continue;
        }
        if (marked[i]) {
            st->reach_blocks++;
            st->reach_bytes += blocks[i].size;
            st->reach_addr = blocks[i].addr;
        } else {
            st->lost_blocks++;
            st->lost_bytes += blocks[i].size;
            st->lost_addr = blocks[i].addr;
        }
    }
}

bool sx_scan_leaks(void) {
    size_t n = sx_track_live_blocks();
    if (n == 0) return true;
    size_t bytes = n * (sizeof *blocks + sizeof *work + 1);
    uint8_t *mem = sx_diag_map(bytes);
    if (!mem) return false;
    blocks = (sx_tracked *)mem;
    work = (uint32_t *)(mem + n * sizeof *blocks);
    marked = (uint8_t *)(work + n);
    nblocks = sx_track_collect(blocks, n);
    heapsort(blocks, nblocks);
    below_all = blocks[0].addr - 1;
    hi_all = blocks[nblocks - 1].addr + blocks[nblocks - 1].size + 1;
    __builtin_unwind_init(); /* callee-saved registers onto the stack (scanned without a boundary) */
    scan_roots();
    propagate();
    tally();
    sx_diag_unmap(mem, bytes);
    return true;
}
