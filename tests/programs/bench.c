/*
 * bench.c — the benchmark suite works: every workload runs on strata and passes its own checks,
 * a broken allocator makes the workloads fail instead of look fast, and the driver produces its
 * tables, CSV and chart.
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
    CHECKF(rows == 1 + 16 * 2, "quick.csv has %d lines", rows);
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

int main(void) {
    RUN(every_workload_passes_on_strata);
    RUN(broken_allocator_is_caught);
    RUN(driver_writes_table_csv_and_chart);
    return 0;
}
