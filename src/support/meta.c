/*
 * meta.c — memory for strata's own bookkeeping (thread heap structures), which cannot come from
 * malloc. A bump allocator over 64 KiB mappings; nothing is ever freed, because heaps are reused
 * by new threads rather than destroyed (other threads may still send them blocks).
 */
#include "../internal.h"

sx_lock_t sx_meta_lock = SX_LOCK_INIT;
static uint8_t *meta_cur, *meta_end;

void *sx_meta_alloc(size_t size) {
    size = sx_align_up(size, 64);
    sx_lock(&sx_meta_lock);
    if ((size_t)(meta_end - meta_cur) < size) {
        size_t chunk = sx_align_up(size, (size_t)64 << 10);
        uint8_t *p = sx_os_map(chunk);
        if (!p) {
            sx_unlock(&sx_meta_lock);
            return NULL;
        }
        meta_cur = p;
        meta_end = p + chunk;
    }
    void *r = meta_cur;
    meta_cur += size;
    sx_unlock(&sx_meta_lock);
    return r;
}
