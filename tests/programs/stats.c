/*
 * stats.c — `strata stats -- CMD` on real programs: the program's output and exit status are
 * its own, and at its exit strata prints its heap statistics with a line per size class, even
 * when the program closed its stderr first (sort does); a bad command line is a usage error.
 */
#include "harness.h"

#include <stdbool.h>

#ifndef STRATA_ROOT
#error "compile with -DSTRATA_ROOT='\"/path/to/repo\"'"
#endif

#define STRATA STRATA_ROOT "/bin/strata"

static bool has_report(const char *err) {
    return strstr(err, "heap statistics") && strstr(err, "at exit") && strstr(err, "mallocs") &&
           strstr(err, "requested") && strstr(err, "live bytes") && strstr(err, "resident");
}

static void sort_output_and_report(void) {
    th_result plain = th_exec((char *[]){"sort", "-r", STRATA_ROOT "/README.md", NULL}, NULL);
    CHECK(plain.exited && plain.code == 0);
    th_result r = th_exec((char *[]){STRATA, "stats", "--", "sort", "-r", STRATA_ROOT "/README.md", NULL}, NULL);
    CHECKF(r.exited && r.code == 0, "code %d; stderr: %.300s", r.code, r.err);
    CHECKF(!strcmp(r.out, plain.out), "sort's output differs on strata");
    CHECKF(has_report(r.err), "no report on stderr: %.600s", r.err);
}

static void perl_report_counts_its_calls(void) {
    th_result r = th_exec((char *[]){STRATA, "stats", "-o", "verbose=0", "--", "perl", "-e",
                                     "my %h; $h{\"k$_\"} = \"v$_\" for 1..100000; "
                                     "print scalar(keys %h), \"\\n\"", NULL},
                          NULL);
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "100000\n"), "code %d out %s err %.300s",
           r.code, r.out, r.err);
    CHECKF(has_report(r.err), "no report: %.600s", r.err);
    const char *calls = strstr(r.err, "  calls ");
    long mallocs = 0;
    CHECKF(calls && sscanf(calls, " calls %ld mallocs", &mallocs) == 1, "%.600s", r.err);
    printf("# perl made %ld allocation calls\n", mallocs);
    CHECKF(mallocs > 100000, "only %ld mallocs counted for 100000 hash entries", mallocs);
}

static void exit_status_passes_through(void) {
    th_result r = th_exec((char *[]){STRATA, "stats", "bash", "-c", "exit 7", NULL}, NULL);
    CHECKF(r.exited && r.code == 7, "code %d", r.code);
    CHECKF(has_report(r.err), "no report: %.600s", r.err);
}

static void bad_command_lines(void) {
    th_result r = th_exec((char *[]){STRATA, "stats", NULL}, NULL);
    CHECKF(r.exited && r.code == 2 && !strncmp(r.err, "strata: ", 8), "code %d err %s", r.code, r.err);
    r = th_exec((char *[]){STRATA, "stats", "--bogus", "--", "true", NULL}, NULL);
    CHECKF(r.exited && r.code == 2 && strstr(r.err, "--bogus"), "code %d err %s", r.code, r.err);
}

int main(void) {
    RUN(sort_output_and_report);
    RUN(perl_report_counts_its_calls);
    RUN(exit_status_passes_through);
    RUN(bad_command_lines);
    return 0;
}
