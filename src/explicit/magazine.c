/*
 * magazine.c — strata_cache_alloc and strata_cache_free: per-thread magazines, the depot exchange
 * and what happens to a thread's magazines when it exits.
 *
 * Every thread has an array of slots, one per cache id (registry.c), each holding two magazines
 * (stacks of free objects), as in Bonwick's magazine layer: alloc pops from the loaded one; when
 * it is empty and the previous one is full the two swap, so a thread that alternates alloc and
 * free around a magazine boundary never touches the depot. Only when both are empty (alloc) or
 * full (free) does the thread take the cache's lock, to trade a magazine with the depot or, when
 * the depot has no full one, to fill half a magazine from the slabs at once. So the common alloc
 * and free are a few loads and stores on memory only this thread writes; the per-thread counts
 * are stored (not atomically incremented) and read by strata_cache_get_stats.
 *
 * free checks its pointer first: the 4 MiB block it lies in must be one of the slab allocator's
 * (sx_slabmap, pagemap.c), its slab must belong to this cache, its offset must be an object's, and its free
 * key must not be set (a double free). Objects of any thread may be freed by any other: they go
 * into the freeing thread's magazines, as the cache's objects belong to no thread.
 *
 * The slot array lives in the thread's sx_tcache, registered in a list that the registry lock
 * guards: destroying a cache takes back the magazines every thread holds for it, and a thread's
 * exit (a pthread key destructor) gives its objects back to their slabs. After that, the thread
 * works without magazines, through the cache's lock.
 *
 * Under memcheck (support/vgrind.h) tls_nslots stays 0, so that every alloc and free takes the
 * slow path, which does what the fast path would with the same magazines, and describes the
 * object to memcheck: a block of the cache's object size at alloc (defined when the cache has a
 * constructor: the object keeps its constructed state), freed at free. The fast paths carry no
 * test for it.
 */
#include <string.h>

#include "explicit.h"

typedef struct {
    strata_cache *cache; /* the cache whose magazines these are; NULL: unused */
    sx_mag *loaded, *prev;
    /* calls served by the magazines, and through the lock; written by the owner only */
    _Atomic unsigned long long alloc_hits, free_hits, alloc_slow, free_slow;
} sx_tslot;

typedef struct sx_tcache {
    struct sx_tcache *next, *prev;
    unsigned nslots;
    sx_tslot *slots;
} sx_tcache;

static __thread sx_tcache *tls_tc __attribute__((tls_model("initial-exec")));
/* tls_tc's slots, copied here so that the fast paths reach a slot in one load less */
static __thread sx_tslot *tls_slots __attribute__((tls_model("initial-exec")));
static __thread unsigned tls_nslots __attribute__((tls_model("initial-exec")));
static __thread bool tls_tc_gone __attribute__((tls_model("initial-exec")));
static sx_tcache *all_tc; /* registry lock */
static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static bool tc_key_ok;

#define BUMP(x) atomic_store_explicit(&(x), atomic_load_explicit(&(x), memory_order_relaxed) + 1, \
                                      memory_order_relaxed)

static void slot_return(strata_cache *c, sx_tslot *s, unsigned long long counts[4]);

/* ---- a thread's slots ---- */

static void tc_exit(void *arg) {
    sx_tcache *t = arg;
    tls_tc = NULL;
    tls_slots = NULL;
    tls_nslots = 0;
    tls_tc_gone = true;
    sx_lock(&sx_x_registry_lock);
    for (unsigned i = 0; i < t->nslots; i++) {
        strata_cache *c = t->slots[i].cache;
        if (!c) continue;
        unsigned long long counts[4] = {0, 0, 0, 0};
        slot_return(c, &t->slots[i], counts);
        sx_lock(&c->lock);
        c->allocs += counts[0];
        c->frees += counts[1];
        c->alloc_hits += counts[2];
        c->free_hits += counts[3];
        sx_unlock(&c->lock);
    }
    SX_LIST_REMOVE(all_tc, t, next, prev);
    sx_unlock(&sx_x_registry_lock);
    sx_explicit_free(t->slots);
    sx_explicit_free(t);
}

static void tc_key_init(void) { tc_key_ok = pthread_key_create(&tc_key, tc_exit) == 0; }

static sx_tcache *tc_new(void) {
    pthread_once(&tc_once, tc_key_init);
    if (!tc_key_ok) return NULL;
    sx_tcache *t = sx_explicit_alloc(sizeof *t, 16);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    if (pthread_setspecific(tc_key, t) != 0) {
        sx_explicit_free(t);
        return NULL;
    }
    sx_lock(&sx_x_registry_lock);
    SX_LIST_PUSH(all_tc, t, next, prev);
    sx_unlock(&sx_x_registry_lock);
    tls_tc = t;
    return t;
}

static bool tc_grow(sx_tcache *t, unsigned need) {
    unsigned n = (need + 15) & ~15u;
    if (n > SX_CACHE_IDS) n = SX_CACHE_IDS;
    sx_tslot *slots = sx_explicit_alloc(n * sizeof(sx_tslot), 16);
    if (!slots) return false;
    memset(slots, 0, n * sizeof(sx_tslot));
    sx_lock(&sx_x_registry_lock); /* others read the slots under it */
    sx_tslot *old = t->slots;
    if (old) memcpy(slots, old, t->nslots * sizeof(sx_tslot));
    t->slots = slots;
    t->nslots = n;
    sx_unlock(&sx_x_registry_lock);
    tls_slots = slots;
    tls_nslots = sx_vg_memcheck ? 0 : n; /* under memcheck: the slow paths only */
    sx_explicit_free(old);
    return true;
}

/* This thread's slot for c, made on first use; NULL: work without magazines. */
static sx_tslot *slot_get(strata_cache *c) {
    if (c->id >= SX_CACHE_IDS) return NULL;
    sx_tcache *t = tls_tc;
    if (!t && (tls_tc_gone || !(t = tc_new()))) return NULL;
    if (c->id >= t->nslots && !tc_grow(t, c->id + 1)) return NULL;
    sx_tslot *s = &t->slots[c->id];
    if (s->cache == c) return s;
    sx_mag *a = sx_mag_new(c), *b = sx_mag_new(c);
    if (!a || !b) {
        sx_explicit_free(a);
        sx_explicit_free(b);
        return NULL;
    }
    sx_lock(&sx_x_registry_lock);
    s->loaded = a;
    s->prev = b;
    atomic_store(&s->alloc_hits, 0);
    atomic_store(&s->free_hits, 0);
    atomic_store(&s->alloc_slow, 0);
    atomic_store(&s->free_slow, 0);
    s->cache = c;
    sx_unlock(&sx_x_registry_lock);
    return s;
}

/* The slot's objects back to their slabs, its magazines freed, its counts added to counts[]
 * (allocs, frees, alloc hits, free hits); the slot is unused after. Registry lock held. */
static void slot_return(strata_cache *c, sx_tslot *s, unsigned long long counts[4]) {
    sx_lock(&c->lock);
    sx_cache_put_mag(c, s->loaded);
    sx_cache_put_mag(c, s->prev);
    sx_unlock(&c->lock);
    sx_explicit_free(s->loaded);
    sx_explicit_free(s->prev);
    unsigned long long ah = atomic_load(&s->alloc_hits), fh = atomic_load(&s->free_hits);
    counts[0] += ah + atomic_load(&s->alloc_slow);
    counts[1] += fh + atomic_load(&s->free_slow);
    counts[2] += ah;
    counts[3] += fh;
    s->loaded = s->prev = NULL;
    s->cache = NULL;
}

void sx_mags_reclaim(strata_cache *c, unsigned long long counts[4]) {
    if (c->id >= SX_CACHE_IDS) return;
    for (sx_tcache *t = all_tc; t; t = t->next)
        if (c->id < t->nslots && t->slots[c->id].cache == c) slot_return(c, &t->slots[c->id], counts);
}

void sx_mags_flush_self(strata_cache *c) {
    sx_tcache *t = tls_tc;
    if (!t || c->id >= t->nslots || t->slots[c->id].cache != c) return;
    sx_tslot *s = &t->slots[c->id];
    sx_lock(&c->lock);
    sx_cache_put_mag(c, s->loaded);
    sx_cache_put_mag(c, s->prev);
    sx_unlock(&c->lock);
}

void sx_mags_count(const strata_cache *c, unsigned long long counts[4], size_t *cached) {
    if (c->id >= SX_CACHE_IDS) return;
    for (sx_tcache *t = all_tc; t; t = t->next) {
        if (c->id >= t->nslots || t->slots[c->id].cache != c) continue;
        sx_tslot *s = &t->slots[c->id];
        unsigned long long ah = atomic_load_explicit(&s->alloc_hits, memory_order_relaxed);
        unsigned long long fh = atomic_load_explicit(&s->free_hits, memory_order_relaxed);
        counts[0] += ah + atomic_load_explicit(&s->alloc_slow, memory_order_relaxed);
        counts[1] += fh + atomic_load_explicit(&s->free_slow, memory_order_relaxed);
        counts[2] += ah;
        counts[3] += fh;
        *cached += __atomic_load_n(&s->loaded->count, __ATOMIC_RELAXED) +
                   __atomic_load_n(&s->prev->count, __ATOMIC_RELAXED);
    }
}

/* ---- alloc ---- */

static sx_noinline void *cache_alloc_slow(strata_cache *c) {
    if (c->magic != SX_CACHE_MAGIC)
        sx_fatal("strata_cache_alloc(): %p is not a cache (destroyed?)", (void *)c);
    sx_tslot *s = slot_get(c);
    void *obj = NULL;
    if (s) {
        if (s->loaded->count != 0) { /* the fast path's case: under memcheck, every alloc comes here */
            BUMP(s->alloc_hits);
        } else if (s->prev->count != 0) {
            sx_mag *m = s->loaded;
            s->loaded = s->prev;
            s->prev = m;
            BUMP(s->alloc_hits);
        } else {
            if (s->loaded->count == 0) {
                sx_lock(&c->lock);
                sx_mag *full = c->depot_full;
                if (full) { /* the empty previous one goes to the depot, the loaded one back */
                    c->depot_full = full->next;
                    c->depot_objects -= full->count;
                    s->prev->next = c->depot_empty;
                    c->depot_empty = s->prev;
                    s->prev = s->loaded;
                    s->loaded = full;
                } else {
                    s->loaded->count = sx_cache_take(c, s->loaded->objs, c->mag_size / 2);
                }
                sx_unlock(&c->lock);
            }
            if (s->loaded->count == 0) {
                errno = ENOMEM;
                return NULL;
            }
            BUMP(s->alloc_slow);
        }
        obj = s->loaded->objs[--s->loaded->count];
    } else {
        sx_lock(&c->lock);
        unsigned got = sx_cache_take(c, &obj, 1);
        if (got) c->allocs++;
        sx_unlock(&c->lock);
        if (!got) {
            errno = ENOMEM;
            return NULL;
        }
    }
    sx_cobj *m = sx_cobj_open(c, obj);
    m->key = 0;
    sx_cobj_close(m);
    sx_vg_malloclike(obj, c->size, false);
    if (c->ctor) sx_vg_defined(obj, c->size);
    return obj;
}

sx_public void *strata_cache_alloc(strata_cache *c) {
    if (sx_likely(c->id < tls_nslots)) {
        sx_tslot *s = &tls_slots[c->id];
        sx_mag *m = s->loaded;
        if (sx_likely(s->cache == c && m->count != 0)) {
            void *obj = m->objs[--m->count];
            sx_cobj_of(c, obj)->key = 0;
            BUMP(s->alloc_hits);
            return obj;
        }
    }
    return cache_alloc_slow(c);
}

/* ---- free ---- */

static sx_noinline void cache_free_slow(strata_cache *c, void *obj) {
    sx_tslot *s = slot_get(c);
    if (s) {
        if (sx_vg_memcheck && s->loaded->count < c->mag_size) { /* the fast path's case */
            BUMP(s->free_hits);
        } else if (s->loaded->count == c->mag_size && s->prev->count == 0) {
            sx_mag *m = s->loaded;
            s->loaded = s->prev;
            s->prev = m;
            BUMP(s->free_hits);
        } else {
            if (s->loaded->count == c->mag_size) {
                sx_lock(&c->lock);
                sx_mag *empty = c->depot_empty;
                if (empty) c->depot_empty = empty->next;
                else empty = sx_mag_new(c);
                if (!empty) { /* no memory for a magazine: straight back to the slab */
                    sx_cache_put(c, obj);
                    sx_unlock(&c->lock);
                    BUMP(s->free_slow);
                    return;
                }
                s->prev->next = c->depot_full; /* the full previous one goes to the depot */
                c->depot_full = s->prev;
                c->depot_objects += s->prev->count;
                s->prev = s->loaded;
                s->loaded = empty;
                empty->count = 0;
                sx_unlock(&c->lock);
            }
            BUMP(s->free_slow);
        }
        s->loaded->objs[s->loaded->count++] = obj;
        return;
    }
    sx_lock(&c->lock);
    sx_cache_put(c, obj);
    c->frees++;
    sx_unlock(&c->lock);
}

/* What every free checks first: obj is the start of an object of this cache's slabs. */
static inline __attribute__((always_inline)) void free_check(strata_cache *c, void *obj) {
    uintptr_t slab = (uintptr_t)obj & c->slab_mask;
    if (sx_unlikely(!sx_slabmap_contains(slab) || ((sx_slab *)slab)->cache != c ||
                    !sx_cache_index_ok(c, slab, obj)))
        sx_cache_bad_free(c, obj);
}

/* Then its free key: not set (a double free otherwise), and set. */
static inline __attribute__((always_inline)) void free_key(strata_cache *c, void *obj, sx_cobj *m) {
    uintptr_t key = sx_secret ^ (uintptr_t)obj;
    if (sx_unlikely(m->key == key))
        sx_fatal("strata_cache_free(): double free of %p detected (cache '%s')", obj, c->name);
    m->key = key;
}

/* A free without this thread's magazines at hand: all of them under memcheck, where the free key is
 * opened around its check and the object then described as freed. */
static sx_noinline void cache_free_unslotted(strata_cache *c, void *obj) {
    free_check(c, obj);
    sx_cobj *m = sx_cobj_open(c, obj);
    free_key(c, obj, m);
    sx_cobj_close(m);
    sx_vg_freelike(obj);
    cache_free_slow(c, obj);
}

sx_public void strata_cache_free(strata_cache *c, void *obj) {
    if (sx_unlikely(obj == NULL)) return;
    unsigned id = c->id; /* read once: the key's store below might be to it, for all the compiler knows */
    if (sx_likely(id < tls_nslots)) { /* never under memcheck */
        free_check(c, obj);
        free_key(c, obj, sx_cobj_of(c, obj));
        sx_tslot *s = &tls_slots[id];
        sx_mag *mag = s->loaded;
        if (sx_likely(s->cache == c && mag->count < c->mag_size)) {
            mag->objs[mag->count++] = obj;
            BUMP(s->free_hits);
            return;
        }
        cache_free_slow(c, obj);
        return;
    }
    cache_free_unslotted(c, obj);
}
