/*
 * runner — the security corpus under every allocator: how many misuses each one catches.
 *
 *   build/security/runner [--only A,B] [--timeout S] [--out FILE] [-v]
 *
 * Run from the repository root (make test-security). Columns: glibc (nothing preloaded), strata
 * (lib/libstrata.so), secure (lib/libstrata-secure.so if built, else lib/libstrata.so with
 * STRATA_OPTIONS=secure=1), jemalloc, tcmalloc and mimalloc (Debian's libraries, preloaded; a
 * column whose library is missing is skipped with a note). Every case of tests/security/corpus.h
 * runs once per column with a time limit; a case that hangs counts as not caught.
 *
 * Prints a table of caught/total per category and column, with totals and percentages, and writes
 * every verdict to --out (default build/security/results.txt): "case column verdict how" lines
 * separated by tabs, then "total column caught cases" lines. -v prints each case not caught.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"

typedef struct {
    const char *name;
    const char *lib;     /* preloaded library; NULL: none */
    const char *package; /* the Debian package that has it, for the note */
    sec_env env;
    bool on;
    int caught[SEC_NCATEGORIES], total[SEC_NCATEGORIES], all_caught, all_total, hung;
} column;

static column columns[] = {
    {"glibc", NULL, NULL, {NULL, NULL}, true, {0}, {0}, 0, 0, 0},
    {"strata", NULL, NULL, {NULL, NULL}, true, {0}, {0}, 0, 0, 0},
    {"secure", NULL, NULL, {NULL, NULL}, true, {0}, {0}, 0, 0, 0},
    {"jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "libjemalloc2", {NULL, NULL}, true,
     {0}, {0}, 0, 0, 0},
    {"tcmalloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4",
     {NULL, NULL}, true, {0}, {0}, 0, 0, 0},
    {"mimalloc", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", "libmimalloc2.0", {NULL, NULL}, true,
     {0}, {0}, 0, 0, 0},
};
enum { NCOLUMNS = sizeof columns / sizeof columns[0] };

/* One line of the table: category ci's caught/total, or the totals, or their percentages. */
enum { ROW_TOTAL = -1, ROW_PERCENT = -2 };
static void print_row(const char *label, int ci) {
    printf("%-20s", label);
    for (int a = 0; a < NCOLUMNS; a++) {
        const column *col = &columns[a];
        if (!col->on) continue;
        char cell[32];
        if (ci == ROW_PERCENT)
            snprintf(cell, sizeof cell, "%.0f%%", col->all_total ? 100.0 * col->all_caught / col->all_total : 0.0);
        else if (ci == ROW_TOTAL) snprintf(cell, sizeof cell, "%d/%d", col->all_caught, col->all_total);
        else snprintf(cell, sizeof cell, "%d/%d", col->caught[ci], col->total[ci]);
        printf(" %9s", cell);
    }
    printf("\n");
}

static void usage(void) {
    fprintf(stderr, "usage: runner [--only glibc,strata,secure,jemalloc,tcmalloc,mimalloc] "
                    "[--timeout SECONDS] [--out FILE] [-v]\n");
    exit(2);
}

static bool listed(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

int main(int argc, char **argv) {
    const char *only = NULL, *out_path = "build/security/results.txt";
    unsigned timeout = 5;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) timeout = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "-v")) verbose = true;
        else usage();
    }
    if (!timeout) usage();

    char root[PATH_MAX], bindir[PATH_MAX + 32], strata[PATH_MAX + 32], secure[PATH_MAX + 32];
    if (!getcwd(root, sizeof root)) {
        perror("runner: getcwd");
        return 2;
    }
    snprintf(bindir, sizeof bindir, "%s/build/security", root);
    snprintf(strata, sizeof strata, "%s/lib/libstrata.so", root);
    columns[1].env.preload = strata;
    columns[2].env = sec_secure_env(root, secure, sizeof secure);
    if (access(strata, R_OK) != 0) {
        fprintf(stderr, "runner: %s is missing: run it from the repository root after make\n", strata);
        return 2;
    }
    for (int a = 0; a < NCOLUMNS; a++) {
        column *col = &columns[a];
        if (only && !listed(only, col->name)) col->on = false;
        if (!col->on || !col->lib) continue;
        col->env.preload = col->lib;
        if (access(col->lib, R_OK) != 0) {
            col->on = false;
            printf("note: %s not installed (%s, Debian package %s; bench/install-peers.sh installs "
                   "it): column skipped\n", col->name, col->lib, col->package);
        }
    }
    printf("secure column: %s%s%s\n", columns[2].env.preload,
           columns[2].env.options ? " with STRATA_OPTIONS=" : "",
           columns[2].env.options ? columns[2].env.options : "");

    FILE *out = fopen(out_path, "w");
    if (!out) {
        fprintf(stderr, "runner: cannot write %s: %s\n", out_path, strerror(errno));
        return 2;
    }
    fprintf(out, "# security corpus verdicts: case\tcolumn\tverdict\thow (see tests/security/corpus.h)\n");
    int ncases = 0, broken = 0;
    for (int ci = 0; ci < SEC_NCATEGORIES; ci++) {
        const sec_category *c = &sec_categories[ci];
        for (int v = 0; v < sec_nvariants(c); v++)
            for (int s = 0; s < 3; s++) {
                ncases++;
                for (int a = 0; a < NCOLUMNS; a++) {
                    column *col = &columns[a];
                    if (!col->on) continue;
                    sec_outcome o = sec_run(bindir, c, c->variants[v], c->sizes[s], col->env, timeout);
                    col->total[ci]++, col->all_total++;
                    if (o.verdict == SEC_CAUGHT) col->caught[ci]++, col->all_caught++;
                    if (o.verdict == SEC_HUNG) col->hung++;
                    if (o.verdict == SEC_BROKEN) broken++;
                    fprintf(out, "%s/%s/%s\t%s\t%s\t%s\n", c->name, c->variants[v], c->sizes[s],
                            col->name, sec_verdict_names[o.verdict], o.how);
                    if (o.verdict == SEC_BROKEN || (verbose && o.verdict != SEC_CAUGHT))
                        printf("  %-9s %s %s/%s/%s: %s\n", col->name, sec_verdict_names[o.verdict],
                               c->name, c->variants[v], c->sizes[s], o.how);
                }
            }
    }

    printf("\nsecurity corpus: %d cases (tests/security), caught/total per allocator\n\n", ncases);
    printf("%-20s", "category");
    for (int a = 0; a < NCOLUMNS; a++)
        if (columns[a].on) printf(" %9s", columns[a].name);
    printf("\n");
    for (int ci = 0; ci < SEC_NCATEGORIES; ci++) print_row(sec_categories[ci].name, ci);
    print_row("total", ROW_TOTAL);
    print_row("caught", ROW_PERCENT);
    for (int a = 0; a < NCOLUMNS; a++)
        if (columns[a].on) fprintf(out, "total\t%s\t%d\t%d\n", columns[a].name, columns[a].all_caught,
                                   columns[a].all_total);
    for (int a = 0; a < NCOLUMNS; a++)
        if (columns[a].on && columns[a].hung)
            printf("%s: %d case(s) hung past %u s (counted as not caught)\n", columns[a].name,
                   columns[a].hung, timeout);
    if (broken) printf("%d case run(s) could not be set up (counted as not caught)\n", broken);
    printf("every verdict: %s\n", out_path);
    fclose(out);
    return broken ? 1 : 0;
}
