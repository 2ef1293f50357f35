/*
 * brkheap.c — the brk heap: segments carved from the program break, which is why strata's memory
 * shows as [heap] in /proc/self/maps just as glibc's main arena does.
 *
 * The first segment starts at the break rounded up to 4 MiB. The segment that contains the break
 * (the "top", ptmalloc's top chunk) is only committed as far as it is used: its commit_end is the
 * break, moved up by at least top_pad when a span past it is needed, and moved down again when the
 * free memory at its end exceeds the trim threshold. When the top segment empties the break drops
 * to where it was before the segment was made, and on through empty segments below it.
 *
 * Any library may move the break too. Before each move strata checks that the break is where it
 * left it. If not, someone else uses brk in this process (glibc's malloc beside libstrata-api, a
 * program of its own): the old top keeps what it has, and strata stops moving the break for good,
 * taking new segments from mmap, since brk/sbrk are not thread-safe and two users moving the break
 * at once could unmap each other's memory. When brk fails (RLIMIT_DATA, a mapping in the way,
 * brk=0) segments come from mmap too. Everything here runs with the region lock held, except
 * sx_brk_trim which takes it.
 *
 * The break only moves at its end: an empty segment below one in use holds its address space
 * (RLIMIT_AS counts it) even decommitted. When strata gives back everything it can (core/reclaim.c)
 * such a segment is punched: its memory past the header's first page, up to its committed end, is
 * unmapped (what lies above a segment the break left is not strata's), so that the header
 * still says where it belongs in the break's chain. Before it is used again, or before the break
 * is lowered through it, its memory is mapped back in place, which fails if another mapping has
 * taken the hole meanwhile: then the segment is never used again and the break stays above it
 * (lowering it would unmap someone else's memory).
 */
#include "region.h"

static uintptr_t brk_end;             /* where strata last left the break; 0 before first use */
static bool brk_shared;               /* someone else moved the break: leave it to them */
static _Atomic(sx_segment *) brk_top; /* the segment containing brk_end, if it may still grow */

/* Written under the region lock; owners read it without, to decide whether to take the lock. */
static sx_segment *load_top(void) { return atomic_load_explicit(&brk_top, memory_order_relaxed); }
static void store_top(sx_segment *seg) { atomic_store_explicit(&brk_top, seg, memory_order_relaxed); }

bool sx_brk_is_top(const sx_segment *seg) { return seg == load_top(); }

static void set_commit(sx_segment *seg, uintptr_t end) {
    atomic_store_explicit(&seg->commit_end, end, memory_order_release);
}

/* Is the break still where strata left it? If not, never move it again. */
static bool brk_unmoved(uintptr_t cur) {
    if (brk_shared) return false;
    if (brk_end != 0 && cur != brk_end) {
        if (sx_opt.verbose >= 2)
            sx_message("program break moved by someone else (%p): using mmap from now on",
                       (void *)cur);
        store_top(NULL);
        brk_shared = true;
        return false;
    }
    return true;
}

/* Move the break up to `end`; with huge pages, advise the new range [from, end) too: the advice is
 * per mapping, and ranges with and without it would split [heap] into many mappings. */
static bool raise_to(uintptr_t from, uintptr_t end) {
    if (!sx_os_brk_set(end)) return false;
    if (sx_opt.huge_pages != SX_HUGE_OFF && end > from) sx_os_advise_huge((void *)from, end - from);
    return true;
}

/* How far to commit past `end`: the top pad, in whole 2 MiB pages when they are wanted. */
static uintptr_t commit_goal(uintptr_t end, uintptr_t limit) {
    size_t step = sx_opt.huge_pages != SX_HUGE_OFF ? (size_t)2 << 20 : SX_SLICE_SIZE;
    uintptr_t want = sx_align_up(end + atomic_load(&sx_top_pad), step);
    return want > limit || want < end ? limit : want;
}

sx_segment *sx_brk_segment_new(size_t commit) {
    uintptr_t cur = sx_os_brk_get();
    if (cur == 0 || !brk_unmoved(cur)) return NULL;
    sx_segment *below = NULL;
    sx_segment *top = load_top();
    if (top) {
        /* Segments are contiguous: fill the old top to its end before starting a new one. */
        uintptr_t end = (uintptr_t)top + SX_SEG_SIZE;
        if (brk_end < end) {
            if (!raise_to(brk_end, end)) return NULL;
            atomic_fetch_add_explicit(&sx_count->brk_bytes, end - brk_end, memory_order_relaxed);
            set_commit(top, end);
            brk_end = cur = end;
        }
        below = top;
    }
    uintptr_t base = sx_align_up(cur, SX_SEG_SIZE);
    if (base < cur || base + SX_SEG_SIZE < base || ((base + SX_SEG_SIZE) >> SX_ADDR_BITS) != 0)
        return NULL;
    uintptr_t end = sx_opt.huge_pages != SX_HUGE_OFF ? commit_goal(base + commit, base + SX_SEG_SIZE)
                                                     : base + commit;
    if (!raise_to(base, end)) return NULL;
    commit = end - base;
    sx_segment *seg = (sx_segment *)base;
    seg->source = SX_SRC_BRK;
    seg->brk_floor = cur;
    seg->brk_prev = below;
    set_commit(seg, end);
    store_top(seg);
    brk_end = end;
    atomic_fetch_add_explicit(&sx_count->brk_bytes, commit, memory_order_relaxed);
    if (sx_opt.verbose >= 2) sx_message("brk segment %p (break %p)", (void *)seg, (void *)end);
    return seg;
}

bool sx_brk_commit(sx_segment *seg, uintptr_t end) {
    if (atomic_load_explicit(&seg->commit_end, memory_order_relaxed) >= end) return true;
    if (seg != load_top() || !brk_unmoved(sx_os_brk_get())) return false;
    uintptr_t want = commit_goal(end, (uintptr_t)seg + SX_SEG_SIZE);
    if (!raise_to(brk_end, want)) {
        want = end; /* without the pad, in case only that much is left */
        if (!raise_to(brk_end, want)) return false;
    }
    atomic_fetch_add_explicit(&sx_count->brk_bytes, want - brk_end, memory_order_relaxed);
    brk_end = want;
    set_commit(seg, want);
    return true;
}

bool sx_brk_trim(sx_segment *seg, uintptr_t free_from, size_t pad) {
    bool done = false;
    uintptr_t seg_end = (uintptr_t)seg + SX_SEG_SIZE;
    if (free_from <= (uintptr_t)seg || free_from >= seg_end || pad >= seg_end - free_from)
        return false;
    uintptr_t keep_end = sx_align_up(free_from + pad, SX_SLICE_SIZE);
    sx_lock(&sx_region_lock);
    uintptr_t end = brk_end;
    if (seg == load_top() && keep_end < end && brk_unmoved(sx_os_brk_get()) &&
        sx_os_brk_set(keep_end)) {
        atomic_fetch_sub_explicit(&sx_count->brk_bytes, end - keep_end, memory_order_relaxed);
        if (sx_opt.verbose >= 2)
            sx_message("break lowered by %zu KiB to %p", (end - keep_end) >> 10, (void *)keep_end);
        brk_end = keep_end;
        set_commit(seg, keep_end);
        done = true;
    }
    sx_unlock(&sx_region_lock);
    return done;
}

/* What stays of a punched segment: the page with the fields of its header (brkheap.c's among them). */
static size_t header_page(void) { return sx_os_page; }
_Static_assert(offsetof(sx_segment, slices) <= 4096, "a header's fields fit the first page");

/* The bytes a punch unmaps: from past the header page to the segment's committed end. A segment
 * that was the top when someone else moved the break ends there: what lies above is theirs. */
static size_t punch_size(const sx_segment *seg) {
    uintptr_t from = (uintptr_t)seg + header_page();
    uintptr_t end = atomic_load_explicit(&seg->commit_end, memory_order_acquire);
    return end > from ? end - from : 0;
}

bool sx_brk_punch(sx_segment *seg) {
    SX_ASSERT(seg->source == SX_SRC_BRK && seg->cached);
    size_t n = punch_size(seg);
    /* not the top: the break may still grow inside it */
    if (seg->punched || seg == load_top() || !n || !sx_os_unmap((uint8_t *)seg + header_page(), n))
        return false;
    seg->punched = 1;
    atomic_fetch_sub_explicit(&sx_count->brk_bytes, n, memory_order_relaxed);
    return true;
}

bool sx_brk_unpunch(sx_segment *seg) {
    if (!seg->punched) return true;
    size_t n = punch_size(seg);
    if (!sx_os_map_at((uint8_t *)seg + header_page(), n)) return false;
    seg->punched = 0;
    atomic_fetch_add_explicit(&sx_count->brk_bytes, n, memory_order_relaxed);
    return true;
}

/* Move the break down to the floor of `seg`, the top segment, whose memory is then gone: read
 * what is needed from its header first. A punched segment's hole must still be strata's. */
static bool lower_through(sx_segment *seg, sx_segment **below) {
    uintptr_t floor = seg->brk_floor;
    sx_segment *prev = seg->brk_prev;
    if (!sx_brk_unpunch(seg) || !sx_os_brk_set(floor)) return false;
    atomic_fetch_sub_explicit(&sx_count->brk_bytes, brk_end - (uintptr_t)seg, memory_order_relaxed);
    if (sx_opt.verbose >= 2) sx_message("break lowered to %p", (void *)floor);
    brk_end = floor;
    *below = prev;
    return true;
}

/* Lower the break on through the cached (empty) segments right below `below`; the first one in
 * use, or one the break cannot go below, becomes the top. */
static void lower_cached(sx_segment *below) {
    while (below && below->cached) {
        sx_segment *next;
        bool dirty = below->dirty;
        sx_segcache_unlink(below); /* while its header is still there */
        if (!lower_through(below, &next)) {
            sx_segcache_push(below, dirty);
            break;
        }
        below = next;
    }
    store_top(below);
}

bool sx_brk_release(sx_segment *seg) {
    if (seg != load_top() || !brk_unmoved(sx_os_brk_get())) return false;
    if (brk_end - (uintptr_t)seg < atomic_load(&sx_trim_threshold)) return false;
    sx_segment *below;
    if (!lower_through(seg, &below)) return false;
    lower_cached(below);
    return true;
}

size_t sx_brk_release_cached(void) {
    sx_segment *top = load_top();
    if (!top || !top->cached || !brk_unmoved(sx_os_brk_get())) return 0;
    uintptr_t before = brk_end;
    lower_cached(top);
    return before - brk_end;
}
