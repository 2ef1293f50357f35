/*
 * runner — the security corpus under every allocator: how many misuses each one catches.
 *
 *   build/security/runner [--only A,B] [--timeout S] [--out FILE] [--peer NAME=LIB]... [-v]
 *
 * Run from the repository root (make test-security). Columns: glibc (nothing preloaded), strata
 * (lib/libstrata.so), secure (lib/libstrata-secure.so if built, else lib/libstrata.so with
 * STRATA_OPTIONS=secure=1), jemalloc, tcmalloc and mimalloc (Debian's libraries, preloaded), then
 * one column per --peer (make test-security gives hardened_malloc, mimalloc 3's secure build and
 * scudo this way). A column whose library is missing (or a --peer with no LIB) is skipped with a
 * note. Every case of tests/security/corpus.h runs once per column with a time limit; a case that
 * hangs counts as not caught. Columns named mimalloc* run with MIMALLOC_SHOW_ERRORS=1, which only
 * makes mimalloc print the errors it detects (its release builds are silent by default), so that
 * a misuse it reports and goes on from shows as "reported" rather than "missed".
 *
 * Prints a table of caught/total per category and column, with totals and percentages (and, if
 * any, how many cases an allocator reported and went on from: not caught), and writes every
 * verdict to --out (default build/security/results.txt): "case column verdict how" lines
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
    const char *package; /* the Debian package that has it, for the note; NULL: a --peer */
    sec_env env;
    bool on;
    int caught[SEC_NCATEGORIES], total[SEC_NCATEGORIES], all_caught, all_total, hung, reported;
} column;

enum { NBUILTIN = 6, MAX_PEERS = 8, MAX_COLUMNS = NBUILTIN + MAX_PEERS };
static column columns[MAX_COLUMNS] = {
    {.name = "glibc"},
    {.name = "strata"},
    {.name = "secure"},
    {.name = "jemalloc", .lib = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", .package = "libjemalloc2"},
    {.name = "tcmalloc", .lib = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
     .package = "libtcmalloc-minimal4"},
    {.name = "mimalloc", .lib = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", .package = "libmimalloc2.0"},
};
static int ncolumns = NBUILTIN;

/* A column's width in the table: its name, and at least 9. */
static int width(const column *col) {
    int n = (int)strlen(col->name);
    return n > 9 ? n : 9;
}

/* --peer NAME=LIB: a column after Debian's peers; an empty LIB is a peer that was not found. */
static void add_peer(char *spec) {
    char *eq = strchr(spec, '=');
    if (!eq || eq == spec) {
        fprintf(stderr, "runner: --peer %s: expected NAME=LIB\n", spec);
        exit(2);
    }
    if (ncolumns == MAX_COLUMNS) {
        fprintf(stderr, "runner: --peer %s: at most %d peers\n", spec, MAX_PEERS);
        exit(2);
    }
    *eq = '\0';
    columns[ncolumns++] = (column){.name = spec, .lib = eq + 1};
}

/* One line of the table: category ci's caught/total, or the totals, or their percentages. */
enum { ROW_TOTAL = -1, ROW_PERCENT = -2, ROW_REPORTED = -3 };
static void print_row(const char *label, int ci) {
    printf("%-20s", label);
    for (int a = 0; a < ncolumns; a++) {
        const column *col = &columns[a];
        if (!col->on) continue;
        char cell[32];
        if (ci == ROW_PERCENT)
            snprintf(cell, sizeof cell, "%.0f%%", col->all_total ? 100.0 * col->all_caught / col->all_total : 0.0);
        else if (ci == ROW_TOTAL) snprintf(cell, sizeof cell, "%d/%d", col->all_caught, col->all_total);
        else if (ci == ROW_REPORTED) snprintf(cell, sizeof cell, "%d", col->reported);
        else snprintf(cell, sizeof cell, "%d/%d", col->caught[ci], col->total[ci]);
        printf(" %*s", width(col), cell);
    }
    printf("\n");
}

static void usage(void) {
    fprintf(stderr, "usage: runner [--only glibc,strata,secure,jemalloc,tcmalloc,mimalloc,PEER] "
                    "[--timeout SECONDS] [--out FILE] [--peer NAME=LIB]... [-v]\n");
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
        else if (!strcmp(argv[i], "--peer") && i + 1 < argc) add_peer(argv[++i]);
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
    for (int a = 0; a < ncolumns; a++) {
        column *col = &columns[a];
        col->on = !only || listed(only, col->name);
        if (!col->on || !col->lib) continue;
        col->env.preload = col->lib;
        if (!strncmp(col->name, "mimalloc", 8)) col->env.extra = "MIMALLOC_SHOW_ERRORS=1";
        if (col->package && access(col->lib, R_OK) != 0)
            printf("note: %s not installed (%s, Debian package %s; bench/install-peers.sh installs "
                   "it): column skipped\n", col->name, col->lib, col->package);
        else if (!*col->lib)
            printf("note: %s not found (no library; tests/security/security.mk says where make "
                   "test-security looks): column skipped\n", col->name);
        else if (access(col->lib, R_OK) != 0)
            printf("note: %s not found (%s is missing): column skipped\n", col->name, col->lib);
        else if (!col->package) printf("%s column: %s\n", col->name, col->lib);
        col->on = access(col->lib, R_OK) == 0;
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
                for (int a = 0; a < ncolumns; a++) {
                    column *col = &columns[a];
                    if (!col->on) continue;
                    sec_outcome o = sec_run(bindir, c, c->variants[v], c->sizes[s], col->env, timeout);
                    col->total[ci]++, col->all_total++;
                    if (o.verdict == SEC_CAUGHT) col->caught[ci]++, col->all_caught++;
                    if (o.verdict == SEC_HUNG) col->hung++;
                    if (o.verdict == SEC_BROKEN) broken++;
                    if (o.verdict == SEC_REPORTED) col->reported++;
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
    int reported = 0;
    for (int a = 0; a < ncolumns; a++)
        if (columns[a].on) printf(" %*s", width(&columns[a]), columns[a].name), reported += columns[a].reported;
    printf("\n");
    for (int ci = 0; ci < SEC_NCATEGORIES; ci++) print_row(sec_categories[ci].name, ci);
    print_row("total", ROW_TOTAL);
    print_row("caught", ROW_PERCENT);
    if (reported) print_row("reported, went on", ROW_REPORTED);
    for (int a = 0; a < ncolumns; a++)
        if (columns[a].on) fprintf(out, "total\t%s\t%d\t%d\n", columns[a].name, columns[a].all_caught,
                                   columns[a].all_total);
    if (reported)
        printf("reported, went on: cases not caught where the allocator printed an error about the "
               "misuse and the program went on to its marker (not counted as caught)\n");
    for (int a = 0; a < ncolumns; a++)
        if (columns[a].on && columns[a].hung)
            printf("%s: %d case(s) hung past %u s (counted as not caught)\n", columns[a].name,
                   columns[a].hung, timeout);
    if (broken) printf("%d case run(s) could not be set up (counted as not caught)\n", broken);
    printf("every verdict: %s\n", out_path);
    fclose(out);
    return broken ? 1 : 0;
}
