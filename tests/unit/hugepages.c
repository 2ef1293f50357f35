/*
 * hugepages.c — STRATA_OPTIONS=huge_pages=thp backs the heap with transparent huge pages (where
 * the kernel allows them) without splitting [heap] into many mappings; huge_pages=hugetlb falls
 * back when no pages are reserved.
 */
#include <malloc.h>

#include "harness.h"
#include "strata.h"

static long smaps_kb(const char *field) {
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n)) v = atol(line + n);
    fclose(f);
    return v;
}

static int heap_mappings(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n += strstr(line, "[heap]") != NULL;
    if (f) fclose(f);
    return n;
}

/* Child mode: fill 48 MiB with small blocks and a 16 MiB one, report what backs them. */
static void mode_fill(void) {
    enum { N = 48 * 1024 };
    static char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(1000);
        memset(p[i], 1, 1000);
    }
    char *big = malloc(16 << 20);
    memset(big, 2, 16 << 20);
    printf("anonhuge=%ld heapmaps=%d\n", smaps_kb("AnonHugePages:"), heap_mappings());
    free(big);
    for (int i = 0; i < N; i++) free(p[i]);
}

static long field(const char *out, const char *name) {
    const char *s = strstr(out, name);
    return s ? atol(s + strlen(name)) : -1;
}

static int thp_available(void) {
    char buf[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return 0;
    if (!fgets(buf, sizeof buf, f)) buf[0] = '\0';
    fclose(f);
    return strstr(buf, "[never]") == NULL && buf[0];
}

static void thp_backs_the_heap(void) {
    SKIP_IF_EMULATED(TH_EMU_BRK);
    if (!thp_available()) SKIP("transparent huge pages are off on this kernel");
    th_result off = th_self("fill", "huge_pages=off");
    th_result thp = th_self("fill", "huge_pages=thp");
    CHECKF(thp.exited && thp.code == 0 && thp.err[0] == '\0', "exit %d: %s", thp.code, thp.err);
    CHECKF(field(thp.out, "anonhuge=") >= 32 * 1024, "with thp: %s (without: %s)", thp.out, off.out);
    CHECKF(field(thp.out, "heapmaps=") <= 3, "[heap] split into many mappings: %s", thp.out);
}

static void hugetlb_falls_back(void) {
    th_result r = th_self("fill", "huge_pages=hugetlb");
    CHECKF(r.exited && r.code == 0 && r.err[0] == '\0', "exit %d signal %d: %s", r.code, r.sig,
           r.err);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "fill")) {
        mode_fill();
        return 0;
    }
    RUN(thp_backs_the_heap);
    RUN(hugetlb_falls_back);
    return 0;
}
