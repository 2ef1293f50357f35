/*
 * options.c — STRATA_OPTIONS: each option takes effect, a bad option or value is reported in one
 * line and the default kept, and the program runs on.
 */
#include <malloc.h>

#include "harness.h"
#include "strata.h"

/* Child mode: report what strata is running with. */
static void mode_report(void) {
    void *p = malloc(100);
    struct strata_stats s;
    strata_get_stats(&s);
    printf("mmap_threshold=%zu trim_threshold=%zu\n", s.mmap_threshold, s.trim_threshold);
    void *big = malloc(2 << 20); /* free a big block: does the threshold adapt? */
    free(big);
    strata_get_stats(&s);
    printf("after=%zu\n", s.mmap_threshold);
    free(p);
}

static th_result run(const char *options) { return th_self("report", options); }

static size_t field(const char *out, const char *name) {
    const char *s = strstr(out, name);
    return s ? strtoull(s + strlen(name), NULL, 10) : (size_t)-1;
}

static void defaults_without_options(void) {
    th_result r = run("");
    CHECKF(r.exited && r.code == 0, "exit %d: %s", r.code, r.err);
    CHECK(r.err[0] == '\0');
    CHECK(field(r.out, "mmap_threshold=") == 131072);
    CHECK(field(r.out, "trim_threshold=") == 131072);
    CHECK(field(r.out, "after=") > (2u << 20)); /* adapted */
}

static void mmap_threshold_fixes_the_threshold(void) {
    th_result r = run("mmap_threshold=256k");
    CHECKF(r.exited && r.code == 0 && r.err[0] == '\0', "exit %d: %s", r.code, r.err);
    CHECK(field(r.out, "mmap_threshold=") == 262144);
    CHECK(field(r.out, "after=") == 262144);
    r = run("mmap_threshold=1048576");
    CHECK(field(r.out, "mmap_threshold=") == 1048576);
    r = run("trim_threshold=2m");
    CHECK(field(r.out, "trim_threshold=") == 2097152);
}

static void unknown_option_is_reported(void) {
    th_result r = run("bogus=1");
    CHECKF(r.exited && r.code == 0, "exit %d: %s", r.code, r.err);
    CHECKF(th_count_lines(r.err, "strata: unknown option 'bogus'") == 1, "%s", r.err);
    CHECK(th_count_lines(r.err, "strata:") == 1);
    CHECK(field(r.out, "mmap_threshold=") == 131072);
}

static void bad_value_keeps_default(void) {
    static const char *bad[] = {"mmap_threshold=abc", "mmap_threshold=12q", "mmap_threshold=",
                                "mmap_threshold=64m", "brk=maybe", "foreign_free=sometimes",
                                "verbose=9", "trim_threshold=-1", "huge_pages=yes"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        th_result r = run(bad[i]);
        CHECKF(r.exited && r.code == 0, "%s: exit %d: %s", bad[i], r.code, r.err);
        CHECKF(th_count_lines(r.err, "strata: bad value") == 1, "%s: %s", bad[i], r.err);
        CHECKF(th_count_lines(r.err, "strata:") == 1, "%s: %s", bad[i], r.err);
        CHECK(strstr(r.err, "keeping") != NULL);
        CHECK(field(r.out, "mmap_threshold=") == 131072);
    }
    th_result r = run("mmap_threshold=abc");
    CHECKF(strstr(r.err, "'abc' for option mmap_threshold") && strstr(r.err, "keeping 131072"),
           "%s", r.err);
}

static void list_syntax_is_forgiving(void) {
    th_result r = run(" mmap_threshold=512k , ,trim_threshold=1M,");
    CHECKF(r.exited && r.code == 0 && r.err[0] == '\0', "exit %d: %s", r.code, r.err);
    CHECK(field(r.out, "mmap_threshold=") == 524288);
    CHECK(field(r.out, "trim_threshold=") == 1048576);
}

static void verbose_reports_start_and_exit(void) {
    th_result r = run("verbose=1");
    CHECKF(r.exited && r.code == 0, "exit %d: %s", r.code, r.err);
    CHECKF(th_count_lines(r.err, "strata: version ") == 1, "%s", r.err);
    CHECKF(th_count_lines(r.err, "strata: exit of pid ") == 1, "%s", r.err);
    r = run("verbose");
    CHECK(th_count_lines(r.err, "strata: version ") == 1);
}

static void help_lists_every_option(void) {
    th_result r = run("help");
    CHECKF(r.exited && r.code == 0, "exit %d", r.code);
    static const char *names[] = {"mmap_threshold=", "trim_threshold=", "top_pad=", "brk=",
                                  "foreign_free=", "huge_pages=", "verbose="};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECKF(strstr(r.err, names[i]) != NULL, "%s missing from: %s", names[i], r.err);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "report")) {
        mode_report();
        return 0;
    }
    RUN(defaults_without_options);
    RUN(mmap_threshold_fixes_the_threshold);
    RUN(unknown_option_is_reported);
    RUN(bad_value_keeps_default);
    RUN(list_syntax_is_forgiving);
    RUN(verbose_reports_start_and_exit);
    RUN(help_lists_every_option);
    return 0;
}
