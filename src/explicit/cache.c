/*
 * cache.c — object caches: creating and destroying them, their slabs and their depot.
 *
 * A slab is a block of 2^order pages from sx_slab_pages (pages.c), aligned to its size: the slab
 * of an object is its address with the low bits cleared, as a kernel slab is found from its page.
 * The slab header comes first, then the objects at a fixed stride. Objects are carved from the
 * front only when needed — the constructor runs then, once per object for the slab's lifetime —
 * and freed objects go on the slab's free list, still constructed. The bookkeeping of a free
 * object (list link and free key) lies in its first 16 bytes, or, when the cache has a
 * constructor, in 16 bytes after it, so that free never touches what the constructor made.
 *
 * Slabs are kept on three lists: partial (take objects from these first), empty and full. Empty
 * slabs stay until strata_cache_shrink or strata_cache_destroy runs the destructor on their
 * objects and gives their pages back (sx_slab_pages decommits them; a wholly free 4 MiB block is
 * unmapped).
 *
 * The depot holds magazines (magazine.c): full ones for threads whose magazines ran empty, empty
 * ones for threads whose magazines ran full. Everything here runs under the cache's lock.
 *
 * Under memcheck (support/vgrind.h) a slab's memory past its header is inaccessible but for the
 * objects handed out, each described as a block of exactly the cache's object size (magazine.c):
 * the bytes between an object's end and the next slot, a free object, its bookkeeping, are
 * nobody's, and strata opens them only around its own use (sx_cobj_open, the constructor and
 * destructor).
 */
#include <string.h>

#include "explicit.h"

#define SLAB_MIN ((size_t)64 << 10)
#define SLAB_OBJECTS 8 /* at least this many objects per slab */
#define CACHE_MAX_SIZE ((size_t)512 << 10)
#define CACHE_MAX_ALIGN ((size_t)4096)

static size_t slab_bytes(const strata_cache *c) { return ~c->slab_mask + 1; }

static void slab_link(strata_cache *c, sx_slab *s, unsigned list) {
    s->list = list;
    SX_LIST_PUSH(c->slabs[list], s, next, prev);
    c->nslabs[list]++;
}

static void slab_unlink(strata_cache *c, sx_slab *s) {
    SX_LIST_REMOVE(c->slabs[s->list], s, next, prev);
    c->nslabs[s->list]--;
}

/* Move s to the list its count of objects out says. */
static void slab_relist(strata_cache *c, sx_slab *s) {
    unsigned want = s->inuse == 0 ? SX_SLABS_EMPTY
                    : s->inuse == c->capacity ? SX_SLABS_FULL : SX_SLABS_PARTIAL;
    if (want == s->list) return;
    slab_unlink(c, s);
    slab_link(c, s, want);
}

static sx_slab *slab_new(strata_cache *c) {
    sx_slab *s = sx_pages_alloc(&sx_slab_pages, c->slab_order);
    if (!s) return NULL;
    s->cache = c;
    s->free = NULL;
    s->inuse = s->carved = 0;
    sx_vg_noaccess(s + 1, slab_bytes(c) - sizeof *s); /* under memcheck: objects not yet out */
    slab_link(c, s, SX_SLABS_EMPTY);
    return s;
}

unsigned sx_cache_take(strata_cache *c, void **out, unsigned n) {
    unsigned got = 0;
    while (got < n) {
        sx_slab *s = c->slabs[SX_SLABS_PARTIAL];
        if (!s) s = c->slabs[SX_SLABS_EMPTY];
        if (!s && !(s = slab_new(c))) break;
        while (got < n && s->inuse < c->capacity) {
            void *obj;
            if (s->free) {
                sx_cobj *m = s->free;
                sx_vg_defined(m, sizeof *m);
                obj = sx_obj_of(c, m);
                s->free = m->next;
                sx_cobj_close(m);
            } else {
                obj = (uint8_t *)s + c->first + s->carved * c->stride;
                s->carved++;
                if (c->ctor) {
                    sx_vg_undefined(obj, c->size);
                    c->ctor(obj);
                    sx_vg_noaccess(obj, c->size);
                }
                c->constructed++;
                sx_cobj *m = sx_cobj_open(c, obj);
                m->key = sx_secret ^ (uintptr_t)obj; /* free, until handed out */
                sx_cobj_close(m);
            }
            s->inuse++;
            out[got++] = obj;
        }
        slab_relist(c, s);
    }
    return got;
}

void sx_cache_put(strata_cache *c, void *obj) {
    sx_slab *s = (sx_slab *)((uintptr_t)obj & c->slab_mask);
    sx_cobj *m = sx_cobj_open(c, obj);
    m->next = s->free;
    sx_cobj_close(m);
    s->free = m;
    s->inuse--;
    slab_relist(c, s);
}

void sx_cache_put_mag(strata_cache *c, sx_mag *m) {
    for (unsigned i = 0; i < m->count; i++) sx_cache_put(c, m->objs[i]);
    m->count = 0;
}

sx_mag *sx_mag_new(strata_cache *c) {
    sx_mag *m = sx_explicit_alloc(sizeof(sx_mag) + c->mag_size * sizeof(void *), 16);
    if (m) {
        m->next = NULL;
        m->count = 0;
    }
    return m;
}

/* Empty the depot into the slabs; free its magazines. */
static void depot_drain(strata_cache *c) {
    for (sx_mag **list = &c->depot_full; list; list = list == &c->depot_full ? &c->depot_empty : NULL)
        while (*list) {
            sx_mag *m = *list;
            *list = m->next;
            sx_cache_put_mag(c, m);
            sx_explicit_free(m);
        }
    c->depot_objects = 0;
}

/* Run the destructor on every object of a slab nobody uses, and give its pages back. */
static void slab_release(strata_cache *c, sx_slab *s) {
    if (c->dtor)
        for (unsigned i = 0; i < s->carved; i++) {
            uint8_t *obj = (uint8_t *)s + c->first + i * c->stride;
            sx_vg_defined(obj, c->size); /* free, constructed; nobody's again with its pages */
            c->dtor(obj);
        }
    c->destroyed += s->carved;
    c->slabs_released++;
    s->cache = NULL;
    sx_pages_free(&sx_slab_pages, s, c->slab_order, "strata_cache");
}

_Noreturn void sx_cache_bad_free(strata_cache *c, void *obj) {
    if (c->magic != SX_CACHE_MAGIC)
        sx_fatal("strata_cache_free(): %p is not a cache (destroyed?)", (void *)c);
    uintptr_t slab = (uintptr_t)obj & c->slab_mask;
    if (!sx_slabmap_contains(slab))
        sx_fatal("strata_cache_free(): %p was not allocated by cache '%s' (not from any cache)", obj,
                 c->name);
    if (((sx_slab *)slab)->cache != c)
        sx_fatal("strata_cache_free(): %p was not allocated by cache '%s' (its slab is another "
                 "cache's, or free)", obj, c->name);
    sx_fatal("strata_cache_free(): invalid pointer %p (not the start of an object of cache '%s')",
             obj, c->name);
}

/* ---- the public interface ---- */

static strata_cache *checked(strata_cache *c, const char *fn) {
    if (!c || c->magic != SX_CACHE_MAGIC) sx_fatal("%s(): %p is not a cache (destroyed?)", fn, (void *)c);
    return c;
}

/* stride = odd << shift; inv: the inverse of odd modulo 2^64 (Newton's iteration). */
static void index_check_init(strata_cache *c) {
    c->shift = (unsigned)__builtin_ctzl(c->stride);
    uint64_t odd = c->stride >> c->shift, x = odd;
    for (int i = 0; i < 6; i++) x *= 2 - odd * x;
    c->inv = x;
}

sx_public strata_cache *strata_cache_create(const char *name, size_t size, size_t align,
                                            void (*ctor)(void *), void (*dtor)(void *)) {
    if (align == 0) align = 8;
    if (size == 0 || size > CACHE_MAX_SIZE || !sx_is_pow2(align) || align > CACHE_MAX_ALIGN) {
        errno = EINVAL;
        return NULL;
    }
    if (align < 8) align = 8;
    sx_pages_static_init();
    strata_cache *c = sx_explicit_alloc(sizeof *c, 64);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    size_t obj = sx_align_up(size, 8);
    c->meta = ctor ? obj : 0;
    c->stride = sx_align_up(ctor ? obj + sizeof(sx_cobj) : (obj < sizeof(sx_cobj) ? sizeof(sx_cobj) : obj), align);
    /* objects of whole cache lines start on one: none straddles two */
    c->first = sx_align_up(sizeof(sx_slab), c->stride % 64 == 0 && align < 64 ? 64 : align);
    unsigned shift = (unsigned)__builtin_ctzl(sx_os_page);
    unsigned order = 0;
    while (((sx_os_page << order) < SLAB_MIN ||
            ((sx_os_page << order) - c->first) / c->stride < SLAB_OBJECTS) &&
           order < sx_slab_pages.max_order)
        order++;
    c->slab_order = order;
    c->slab_mask = ~(((uintptr_t)1 << (shift + order)) - 1);
    c->capacity = ((sx_os_page << order) - c->first) / c->stride;
    index_check_init(c);
    c->mag_size = c->stride <= 256 ? 64 : c->stride <= 4096 ? 32 : 8;
    c->ctor = ctor;
    c->dtor = dtor;
    c->size = size;
    c->align = align;
    const char *n = name ? name : "";
    size_t len = strnlen(n, sizeof c->name - 1);
    memcpy(c->name, n, len);
    c->name[len] = '\0';
    pthread_mutex_init(&c->lock, NULL);
    c->magic = SX_CACHE_MAGIC;
    sx_registry_cache_add(c);
    return c;
}

sx_public size_t strata_cache_shrink(strata_cache *cache) {
    strata_cache *c = checked(cache, "strata_cache_shrink");
    sx_mags_flush_self(c);
    sx_lock(&c->lock);
    depot_drain(c);
    sx_slab *empty = c->slabs[SX_SLABS_EMPTY];
    size_t n = c->nslabs[SX_SLABS_EMPTY];
    c->slabs[SX_SLABS_EMPTY] = NULL;
    c->nslabs[SX_SLABS_EMPTY] = 0;
    while (empty) { /* the destructors run under the lock: they must not use this cache */
        sx_slab *next = empty->next;
        slab_release(c, empty);
        empty = next;
    }
    sx_unlock(&c->lock);
    return n * slab_bytes(c);
}

/* An object of slab s still allocated: carved and not marked free. */
static void *live_object(strata_cache *c, sx_slab *s) {
    for (unsigned i = 0; i < s->carved; i++) {
        uint8_t *obj = (uint8_t *)s + c->first + i * c->stride;
        sx_cobj *m = sx_cobj_open(c, obj);
        bool live = m->key != (sx_secret ^ (uintptr_t)obj);
        sx_cobj_close(m);
        if (live) return obj;
    }
    return s;
}

sx_public void strata_cache_destroy(strata_cache *cache) {
    if (!cache) return;
    strata_cache *c = checked(cache, "strata_cache_destroy");
    unsigned long long counts[4] = {0, 0, 0, 0};
    sx_lock(&sx_x_registry_lock);
    sx_mags_reclaim(c, counts);
    sx_registry_cache_remove(c);
    sx_unlock(&sx_x_registry_lock);
    sx_lock(&c->lock);
    depot_drain(c);
    size_t live = 0;
    sx_slab *some = NULL;
    for (unsigned l = 0; l < SX_SLAB_LISTS; l++)
        for (sx_slab *s = c->slabs[l]; s; s = s->next)
            if (s->inuse) {
                live += s->inuse;
                some = s;
            }
    if (live)
        sx_fatal("strata_cache_destroy(): cache '%s' (%p) still has %zu objects allocated, one at %p",
                 c->name, (void *)c, live, live_object(c, some));
    while (c->slabs[SX_SLABS_EMPTY]) {
        sx_slab *s = c->slabs[SX_SLABS_EMPTY];
        slab_unlink(c, s);
        slab_release(c, s);
    }
    c->magic = SX_CACHE_DEAD;
    sx_unlock(&c->lock);
    pthread_mutex_destroy(&c->lock);
    sx_explicit_free(c);
}

sx_public void strata_cache_get_stats(strata_cache *cache, struct strata_cache_stats *out) {
    strata_cache *c = checked(cache, "strata_cache_get_stats");
    unsigned long long counts[4] = {0, 0, 0, 0};
    size_t cached = 0;
    memset(out, 0, sizeof *out);
    sx_lock(&sx_x_registry_lock);
    sx_mags_count(c, counts, &cached);
    sx_lock(&c->lock);
    out->name = c->name;
    out->object_size = c->size;
    out->stride = c->stride;
    out->slab_bytes = slab_bytes(c);
    out->objects_per_slab = c->capacity;
    out->allocs = c->allocs + counts[0];
    out->frees = c->frees + counts[1];
    out->alloc_hits = c->alloc_hits + counts[2];
    out->free_hits = c->free_hits + counts[3];
    out->in_use = (size_t)(out->allocs - out->frees);
    out->cached = cached + c->depot_objects;
    out->empty_slabs = c->nslabs[SX_SLABS_EMPTY];
    out->full_slabs = c->nslabs[SX_SLABS_FULL];
    out->slabs = out->empty_slabs + out->full_slabs + c->nslabs[SX_SLABS_PARTIAL];
    out->constructed = c->constructed;
    out->destroyed = c->destroyed;
    out->slabs_released = c->slabs_released;
    sx_unlock(&c->lock);
    sx_unlock(&sx_x_registry_lock);
}
