/*
 * bench.c — the benchmark suite works: every workload runs on strata and passes its own checks,
 * a broken allocator makes the workloads fail instead of look fast, and the driver produces its
 * tables, CSV and chart, with the peers given to it by --peer as columns.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "harness.h"

static const char *root = STRATA_ROOT;

static th_result run_workload(const char *prog, const char *mode, const char *preload) {
    char path[4096], env[4200];
    snprintf(path, sizeof path, "%s/build/bench/%s", root, prog);
    snprintf(env, sizeof env, "LD_PRELOAD=%s", preload ? preload : "");
    char *argv[] = {path, "--scale", "0.02", (char *)mode, NULL};
    if (!*mode) argv[3] = NULL;
    char *envv[] = {env, NULL};
    return th_exec(argv, envv);
}

static const struct {
    const char *prog, *mode;
} workloads[] = {{"cfrac", ""},      {"espresso", ""}, {"simple", "100"},  {"mthread", ""},
                 {"larson", ""},     {"xmalloc", ""},  {"cache", "thrash"}, {"cache", "scratch"},
                 {"mstress", ""},    {"large", ""},    {"realloc", ""},     {"frag", "drain"},
                 {"frag", "scatter"}, {"churn", ""}, {"exchange", ""}};
#define NW (sizeof workloads / sizeof workloads[0])

static void every_workload_passes_on_strata(void) {
    char lib[4096];
    snprintf(lib, sizeof lib, "%s/lib/libstrata.so", root);
    for (size_t i = 0; i < NW; i++) {
        th_result r = run_workload(workloads[i].prog, workloads[i].mode, lib);
        CHECKF(r.exited && r.code == 0 && strstr(r.out, "result time=") &&
                   strstr(r.out, "check=ok"),
               "%s %s: exit %d signal %d: %s %s", workloads[i].prog, workloads[i].mode, r.code,
               r.sig, r.out, r.err);
    }
}

static void broken_allocator_is_caught(void) {
    char lib[4096];
    snprintf(lib, sizeof lib, "%s/build/tests/programs/libbroken.so", root);
    static const char *progs[] = {"cfrac",   "espresso", "simple",  "larson",
                                  "mstress", "churn",    "exchange"};
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        th_result r = run_workload(progs[i], "", lib);
        CHECKF(!(r.exited && r.code == 0), "%s passed its checks on a broken allocator: %s",
               progs[i], r.out);
        CHECKF(strstr(r.out, "check=ok") == NULL, "%s reported a result: %s", progs[i], r.out);
    }
}

static int count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

static void driver_writes_table_csv_and_chart(void) {
    char out[] = "/tmp/strata-bench-XXXXXX";
    CHECK(mkdtemp(out) != NULL);
    char driver[4096], bin[4096], lib[4096];
    snprintf(driver, sizeof driver, "%s/build/bench/driver", root);
    snprintf(bin, sizeof bin, "%s/build/bench", root);
    snprintf(lib, sizeof lib, "%s/lib/libstrata.so", root);
    char *argv[] = {driver, "--quick", "--runs", "1", "--only", "strata,glibc", "--bin", bin,
                    "--strata", lib, "--out", out, NULL};
    th_result r = th_exec(argv, NULL);
    CHECKF(r.exited && r.code == 0, "driver exit %d signal %d: %s", r.code, r.sig, r.err);
    char path[4200];
    snprintf(path, sizeof path, "%s/quick.csv", out);
    int rows = count_lines(path);
    CHECKF(rows == 1 + 18 * 2, "quick.csv has %d lines", rows);
    snprintf(path, sizeof path, "%s/quick.svg", out);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    char head[64] = "";
    CHECK(fgets(head, sizeof head, f) != NULL);
    fclose(f);
    CHECK(!strncmp(head, "<svg", 4));
    snprintf(path, sizeof path, "%s/quick.md", out);
    CHECK(count_lines(path) > 20);
    CHECKF(strstr(r.out, "| cfrac |") && strstr(r.out, "geometric mean") && !strstr(r.out, "FAIL"),
           "%s", r.out);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    CHECK(system(cmd) == 0);
}

/* --peer NAME=LIB: a column of its own (here strata's library under another name), in the
 * scaling mode (the quickest) with its 1 -> 2 speed-up row and the library named at the end; a
 * library that cannot be preloaded makes its runs FAIL instead of measuring glibc under its name;
 * a malformed or unreadable --peer stops the driver before it runs anything. */
static void driver_takes_peers(void) {
    char out[] = "/tmp/strata-bench-XXXXXX";
    CHECK(mkdtemp(out) != NULL);
    char driver[4096], bin[4096], lib[4096], peer[4200];
    snprintf(driver, sizeof driver, "%s/build/bench/driver", root);
    snprintf(bin, sizeof bin, "%s/build/bench", root);
    snprintf(lib, sizeof lib, "%s/lib/libstrata.so", root);
    snprintf(peer, sizeof peer, "again=%s", lib);
    char *argv[] = {driver, "--quick", "--runs", "1", "--scaling", "2", "--only", "strata,again",
                    "--peer", peer, "--bin", bin, "--strata", lib, "--out", out, NULL};
    th_result r = th_exec(argv, NULL);
    CHECKF(r.exited && r.code == 0, "driver exit %d signal %d: %s", r.code, r.sig, r.err);
    CHECKF(strstr(r.out, "| threads | strata | again |") && strstr(r.out, "| 1 → 2: speed-up |") &&
               strstr(r.out, "(--peer)") && strstr(r.out, "Not here: exchange-32") &&
               !strstr(r.out, "FAIL"),
           "%s", r.out);
    char path[4200];
    snprintf(path, sizeof path, "%s/quick-scaling.csv", out);
    CHECKF(count_lines(path) == 1 + 6 * 2 * 2, "quick-scaling.csv has %d lines", count_lines(path));

    char *notalib[] = {driver, "--quick", "--runs", "1", "--scaling", "1", "--only",
                       "strata,notalib", "--peer", "notalib=/etc/passwd", "--bin", bin, "--strata",
                       lib, "--out", out, NULL};
    r = th_exec(notalib, NULL);
    CHECKF(r.exited && strstr(r.out, "FAIL larson at 1 threads under notalib") &&
               strstr(r.out, "was not preloaded"),
           "exit %d: %s", r.code, r.out);

    static const char *const bad[] = {"noequals", "two words=/bin/true", "glibc=/bin/true",
                                      "missing=/nonexistent/lib.so"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv2[] = {driver, "--peer", (char *)bad[i], "--out", out, NULL};
        r = th_exec(argv2, NULL);
        CHECKF(r.exited && r.code == 2 && strstr(r.err, "--peer"), "--peer %s: exit %d: %s %s",
               bad[i], r.code, r.out, r.err);
    }
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    CHECK(system(cmd) == 0);
}

int main(void) {
    RUN(every_workload_passes_on_strata);
    RUN(broken_allocator_is_caught);
    RUN(driver_writes_table_csv_and_chart);
    RUN(driver_takes_peers);
    return 0;
}
