/*
 * leaks.c — `strata leaks -- CMD`: the planted leaks of tests/planted/leaky.c are found with their
 * stacks (function and file:line), lost apart from reachable, with nothing freed reported; the
 * program's exit status passes through; a crash still gives what was recorded; real programs
 * run unchanged; bad command lines are usage errors.
 */
#include "harness.h"

#include <stdbool.h>

#ifndef STRATA_ROOT
#error "compile with -DSTRATA_ROOT='\"/path/to/repo\"'"
#endif

#define STRATA STRATA_ROOT "/bin/strata"
#define LEAKY STRATA_ROOT "/build/tests/planted/leaky"

static char list[1 << 20];

/* Run `strata leaks ARGS... -O FILE -- CMD...` and read FILE into list. */
static th_result leaks(char *const *opts, char *const *cmd) {
    char *argv[64] = {STRATA, "leaks", "-O", TH_OUTFILE};
    int n = 4;
    for (; opts && *opts; opts++) argv[n++] = *opts;
    argv[n++] = "--";
    for (; *cmd; cmd++) argv[n++] = *cmd;
    argv[n] = NULL;
    return th_exec_file(argv, list, sizeof list);
}

/* The entry "KIND: ... in N block(s)" whose stack names `func`; NULL if none. */
static const char *entry(const char *kind, const char *what, const char *func) {
    char head[128];
    snprintf(head, sizeof head, "%s: %s", kind, what);
    for (const char *p = list; (p = strstr(p, head)); p++) {
        const char *end = strstr(p + 1, "\n\n");
        const char *f = strstr(p, func);
        if (f && (!end || f < end)) return p;
    }
    return NULL;
}

static void planted_leaks_found(void) {
    th_result r = leaks(NULL, (char *[]){LEAKY, NULL});
    CHECKF(r.exited && r.code == 3, "exit status %d, not leaky's own 3; %.300s", r.code, r.err);
    CHECKF(!strcmp(r.out, "leaky: done\n"), "program output: %s", r.out);
    CHECKF(entry("lost", "1000 bytes in 10 blocks", "lose_blocks (tests/planted/leaky.c:"), "%.3000s", list);
    CHECKF(entry("lost", "999 bytes in 3 blocks", "thread_body (tests/planted/leaky.c:"), "%.3000s", list);
    CHECKF(entry("lost", "64 bytes in 1 block", "lose_cycle (tests/planted/leaky.c:"), "a cycle is lost: %.3000s", list);
    CHECKF(entry("reachable", "240 bytes in 5 blocks", "keep_list (tests/planted/leaky.c:"), "%.3000s", list);
    CHECKF(entry("reachable", "256 bytes in 1 block", "keep_interior"), "interior pointer: %.3000s", list);
    /* one helper, two callers at the same depth: each stack gets exactly its own blocks */
    CHECKF(entry("lost", "7.0 KiB (7200 bytes) in 300 blocks", "lose_via_a (tests/planted/leaky.c:"), "%.3000s", list);
    CHECKF(entry("lost", "19.5 KiB (20000 bytes) in 500 blocks", "lose_via_b (tests/planted/leaky.c:"), "%.3000s", list);
    CHECKF(!strstr(list, "churn"), "freed blocks reported: %.3000s", list);
    CHECKF(strstr(list, "(29327 bytes) lost in 815 blocks"), "summary: %.3000s", list);
    CHECKF(strstr(list, "in main (tests/planted/leaky.c:"), "callers: %.3000s", list);
    /* lost first */
    CHECK(strstr(list, "lost:") && strstr(list, "reachable:") && strstr(list, "lost:") < strstr(list, "reachable:"));
}

static void lost_only_and_sampling(void) {
    th_result r = leaks((char *[]){"--lost", NULL}, (char *[]){LEAKY, NULL});
    CHECKF(r.exited && r.code == 3, "code %d %.300s", r.code, r.err);
    CHECKF(strstr(list, "lost: 1000 bytes") && !strstr(list, "\nreachable:") && strncmp(list, "reachable:", 10),
           "%.2000s", list);
    r = leaks((char *[]){"--sample", "4096", "--depth", "4", NULL}, (char *[]){LEAKY, NULL});
    CHECKF(r.exited && r.code == 3, "code %d %.300s", r.code, r.err);
    CHECKF(strstr(list, "(29327 bytes) lost in 815 blocks") && strstr(list, "sampled:"), "%.3000s", list);
}

static void crash_keeps_the_record(void) {
    th_result r = leaks(NULL, (char *[]){LEAKY, "crash", NULL});
    CHECKF(r.exited && r.code == 128 + SIGSEGV, "code %d %.300s", r.code, r.err);
    CHECKF(strstr(list, "did not exit normally") && strstr(list, "allocations"), "%.2000s", list);
}

static void real_programs_unchanged(void) {
    th_result plain = th_exec((char *[]){"sort", "-r", STRATA_ROOT "/README.md", NULL}, NULL);
    th_result r = leaks(NULL, (char *[]){"sort", "-r", STRATA_ROOT "/README.md", NULL});
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, plain.out), "sort: code %d %.300s", r.code, r.err);
    CHECKF(strstr(list, "strata: leaks: "), "sort: %.1000s", list);
    r = leaks(NULL, (char *[]){"perl", "-e", "my %h; $h{$_} = [$_] for 1..20000; print scalar(keys %h), \"\\n\"", NULL});
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "20000\n"), "perl: code %d out %s %.300s", r.code, r.out, r.err);
    long allocs = 0, frees = 0;
    const char *s = list;
    while ((s = strstr(s, "strata: leaks: ")) && sscanf(s, "strata: leaks: %ld allocations, %ld frees", &allocs, &frees) != 2)
        s++;
    CHECKF(s, "no summary: %.1000s", list);
    CHECKF(allocs > 20000, "perl made %ld allocations", allocs);
    r = leaks(NULL, (char *[]){"bash", "-c", "exit 5", NULL});
    CHECKF(r.exited && r.code == 5, "code %d", r.code);
}

static void bad_command_lines(void) {
    const char *bad[][4] = {{"leaks", NULL}, {"leaks", "--depth", "0", "true"}, {"leaks", "--bogus", "true", NULL},
                            {"leaks", "--sample", "x", "true"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        th_result r = th_exec(th_args(STRATA, bad[i], sizeof bad[i] / sizeof bad[i][0]).v, NULL);
        CHECKF(r.exited && r.code == 2 && !strncmp(r.err, "strata: ", 8), "%s %s: code %d err %s", bad[i][0],
               bad[i][1] ? bad[i][1] : "", r.code, r.err);
    }
    th_result r = th_exec((char *[]){STRATA, "leaks", "--", "/no/such/program", NULL}, NULL);
    CHECKF(r.exited && r.code == 127 && strstr(r.err, "/no/such/program"), "code %d err %s", r.code, r.err);
}

int main(void) {
    RUN(planted_leaks_found);
    RUN(lost_only_and_sampling);
    RUN(crash_keeps_the_record);
    RUN(real_programs_unchanged);
    RUN(bad_command_lines);
    return 0;
}
