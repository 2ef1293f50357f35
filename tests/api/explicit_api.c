/*
 * explicit_api.c — the explicit allocators from libstrata-api, beside glibc's malloc: pools,
 * caches and pages work, and a glibc block given to a cache or a page allocator is named foreign.
 */
#include <stdint.h>

#include "harness.h"
#include "strata.h"

static void explicit_allocators_beside_glibc(void) {
    strata_pool *p = strata_pool_create(NULL);
    char *s = strata_pool_strdup(p, "beside glibc");
    CHECK(s && !strcmp(s, "beside glibc"));
    strata_pool_destroy(p);
    strata_cache *c = strata_cache_create("api", 40, 0, NULL, NULL);
    void *o = strata_cache_alloc(c);
    CHECK(o != NULL);
    strata_cache_free(c, o);
    strata_cache_destroy(c);
    void *pg = strata_pages_alloc(NULL, 1);
    CHECK(pg && (uintptr_t)pg % (2 * (size_t)sysconf(_SC_PAGESIZE)) == 0);
    strata_pages_free(NULL, pg, 1);
}

static void glibc_block_to_cache(void *arg) {
    strata_cache *c = strata_cache_create("api", 40, 0, NULL, NULL);
    strata_cache_free(c, malloc(40));
}

static void glibc_block_named_foreign(void) {
    th_result r = th_child(glibc_block_to_cache, NULL);
    CHECKF(th_aborted_with(&r, "was not allocated by cache 'api' (not from any cache)"),
           "exit %d signal %d: %s", r.code, r.sig, r.err);
}

int main(void) {
    RUN(explicit_allocators_beside_glibc);
    RUN(glibc_block_named_foreign);
    return 0;
}
