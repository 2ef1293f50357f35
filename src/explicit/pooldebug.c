/*
 * pooldebug.c — pool_debug=1: memory of destroyed and reset pools made inaccessible.
 *
 * In debug mode every pool chunk and large block is a mapping of its own. When its pool is reset
 * or destroyed the mapping's pages go back to the kernel and it becomes PROT_NONE, so a pointer
 * still held into it faults at the first access instead of reading whatever the next pool wrote
 * there. The address space stays reserved for a while — the latest 4096 mappings, up to 256 MiB —
 * and the oldest is unmapped (and may be reused) beyond that, or all of them at once when the
 * kernel refuses memory (sx_explicit_reclaim).
 */
#include <sys/mman.h>

#include "explicit.h"

#define RETIRED_MAX 4096
#define RETIRED_BYTES ((size_t)256 << 20)

sx_lock_t sx_pool_debug_lock = SX_LOCK_INIT;
static struct {
    void *p;
    size_t size;
} retired[RETIRED_MAX];
static size_t oldest, count, bytes;

void *sx_pool_debug_map(size_t size) {
    sx_process_init();
    void *p = sx_os_map(sx_align_up(size, sx_os_page));
    if (!p && sx_explicit_reclaim()) p = sx_os_map(sx_align_up(size, sx_os_page));
    return p;
}

/* Unmap retired mappings while there are more than `keep` of them (lock held). */
static size_t unmap_oldest(size_t keep, size_t room) {
    size_t released = 0;
    while (count > keep || (count && bytes + room > RETIRED_BYTES)) {
        if (!sx_os_unmap(retired[oldest].p, retired[oldest].size)) break; /* map count full */
        released += retired[oldest].size;
        bytes -= retired[oldest].size;
        oldest = (oldest + 1) % RETIRED_MAX;
        count--;
    }
    return released;
}

size_t sx_explicit_reclaim(void) {
    sx_lock(&sx_pool_debug_lock);
    size_t released = unmap_oldest(0, 0);
    sx_unlock(&sx_pool_debug_lock);
    released += sx_pool_quarantine_flush(); /* under memcheck: to the core, which gives it back */
    return released + sx_reclaim(0);
}

void sx_pool_debug_retire(void *p, size_t size) {
    size = sx_align_up(size, sx_os_page);
    sx_os_decommit(p, size);
    if (!sx_os_protect(p, size, PROT_NONE)) {
        sx_os_unmap(p, size);
        return;
    }
    sx_lock(&sx_pool_debug_lock);
    unmap_oldest(RETIRED_MAX - 1, size);
    if (count == RETIRED_MAX) { /* nothing could go: this one goes instead */
        sx_unlock(&sx_pool_debug_lock);
        sx_os_unmap(p, size);
        return;
    }
    size_t at = (oldest + count) % RETIRED_MAX;
    retired[at].p = p;
    retired[at].size = size;
    bytes += size;
    count++;
    sx_unlock(&sx_pool_debug_lock);
}
