/*
 * compat.c — glibc's other allocation entry points: mallopt, mallinfo/mallinfo2, malloc_trim,
 * malloc_stats, malloc_info, cfree and the __libc_ names, all served by strata.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>

#include "harness.h"
#include "strata.h"

static void mallopt_return_values(void) {
    CHECK(mallopt(M_MMAP_THRESHOLD, 256 * 1024) == 1);
    CHECK(mallopt(M_MMAP_THRESHOLD, -1) == 0);
    CHECK(mallopt(M_MMAP_THRESHOLD, 64 << 20) == 0);
    CHECK(mallopt(M_TRIM_THRESHOLD, 256 * 1024) == 1);
    CHECK(mallopt(M_TOP_PAD, 64 * 1024) == 1);
    CHECK(mallopt(M_MMAP_MAX, 100) == 1);
    CHECK(mallopt(M_ARENA_MAX, 2) == 1);
    CHECK(mallopt(M_ARENA_TEST, 2) == 1);
    CHECK(mallopt(M_MXFAST, 64) == 1);
    CHECK(mallopt(M_MXFAST, 10000) == 0);
    CHECK(mallopt(M_ARENA_MAX, 0) == 1 && mallopt(M_MMAP_MAX, -1) == 1); /* as glibc */
    CHECK(mallopt(M_PERTURB, 0) == 1);
    CHECK(mallopt(12345, 1) == 1); /* glibc: an unknown parameter is not an error */
    struct strata_stats s;
    strata_get_stats(&s);
    CHECK(s.mmap_threshold == 256 * 1024 && s.trim_threshold == 256 * 1024);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    mallopt(M_TOP_PAD, 128 * 1024);
}

static void mallinfo2_tracks_use(void) {
    struct mallinfo2 a = mallinfo2();
    enum { N = 2000 };
    static void *p[N];
    for (int i = 0; i < N; i++) p[i] = malloc(1000);
    void *huge = malloc(8 << 20);
    struct mallinfo2 b = mallinfo2();
    CHECKF(b.uordblks >= a.uordblks + N * 1000, "uordblks %zu -> %zu", a.uordblks, b.uordblks);
    CHECK(b.arena >= b.uordblks);
    CHECK(b.hblks == a.hblks + 1);
    CHECK(b.hblkhd >= a.hblkhd + (8 << 20));
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo old = mallinfo(); /* deprecated, but programs still call it */
#pragma GCC diagnostic pop
    CHECK(old.uordblks > 0 && (size_t)old.uordblks <= b.uordblks + (1 << 20));
    for (int i = 0; i < N; i++) free(p[i]);
    free(huge);
    struct mallinfo2 c = mallinfo2();
    CHECK(c.uordblks < b.uordblks && c.hblks == a.hblks);
}

static void malloc_trim_releases_memory(void) {
    enum { N = 60000 };
    static void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(900);
        memset(p[i], 1, 900);
    }
    long high = th_rss_kb();
    for (int i = 0; i < N; i++)
        if (i % 1000) free(p[i]); /* leave a few scattered: nothing to release by itself */
    int r = malloc_trim(0);
    long low = th_rss_kb();
    CHECK(r == 1);
    CHECKF(high - low > 30 * 1024, "RSS %ld KiB -> %ld KiB after malloc_trim", high, low);
    for (int i = 0; i < N; i += 1000) free(p[i]);
}

static void stats_report(void *arg) { malloc_stats(); }
static void malloc_stats_prints_a_report(void) {
    th_result r = th_child(stats_report, NULL);
    CHECK(r.exited && r.code == 0);
    CHECKF(strstr(r.err, "heap statistics") && strstr(r.err, "in use") &&
               strstr(r.err, "system calls"),
           "%s", r.err);
}

static void malloc_info_writes_xml(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL);
    void *keep = malloc(300);
    CHECK(malloc_info(0, f) == 0);
    fclose(f);
    CHECKF(!strncmp(buf, "<malloc version=", 16), "%.80s", buf);
    CHECK(strstr(buf, "<size from=") != NULL);
    CHECK(strstr(buf, "</malloc>") != NULL);
    free(buf);
    free(keep);
    errno = 0;
    CHECK(malloc_info(1, stdout) == -1 && errno == EINVAL);
}

/* Every allocation symbol glibc exports must resolve to strata. */
static void glibc_names_are_strata(void) {
    static const char *names[] = {"malloc", "free", "calloc", "realloc", "reallocarray",
                                  "posix_memalign", "aligned_alloc", "memalign", "valloc",
                                  "pvalloc", "malloc_usable_size", "cfree", "free_sized",
                                  "free_aligned_sized", "mallopt",
                                  "mallinfo", "mallinfo2", "malloc_trim", "malloc_stats",
                                  "malloc_info", "__libc_malloc", "__libc_free", "__libc_calloc",
                                  "__libc_realloc", "__libc_memalign", "__libc_valloc",
                                  "__libc_pvalloc", "__libc_mallopt", "__libc_mallinfo"};
    Dl_info self;
    CHECK(dladdr((void *)strata_malloc, &self) != 0);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *sym = dlsym(RTLD_DEFAULT, names[i]);
        Dl_info where;
        CHECKF(sym && dladdr(sym, &where) && where.dli_fbase == self.dli_fbase,
               "%s does not resolve to libstrata", names[i]);
    }
}

/* jemalloc's Debian build crashes here: a pvalloc block handed to malloc_usable_size. */
static void libc_entry_points_interoperate(void) {
    void *(*libc_malloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_malloc");
    void (*libc_free)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "__libc_free");
    void (*cfree_fn)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
    CHECK(libc_malloc && libc_free && cfree_fn);
    void *a = libc_malloc(100);
    CHECK(malloc_usable_size(a) >= 100);
    free(a);
    void *b = malloc(100);
    libc_free(b);
    void *c = pvalloc(10);
    CHECK(malloc_usable_size(c) >= 4096);
    cfree_fn(c);
}

static void version_is_reported(void) {
    CHECK(!strcmp(strata_version(), STRATA_VERSION_STRING));
}

int main(void) {
    RUN(mallopt_return_values);
    RUN(mallinfo2_tracks_use);
    RUN(malloc_trim_releases_memory);
    RUN(malloc_stats_prints_a_report);
    RUN(malloc_info_writes_xml);
    RUN(glibc_names_are_strata);
    RUN(libc_entry_points_interoperate);
    RUN(version_is_reported);
    return 0;
}
