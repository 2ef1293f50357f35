/*
 * guard.c — `strata guard -- CMD`: each planted bug of tests/planted/heapbugs.c stops the program
 * with the right diagnosis and the stacks where it happened, where the block was allocated and
 * where it was freed; a program without bugs runs to the end with its own output and status;
 * real programs run unchanged; bad command lines are usage errors.
 */
#include "harness.h"


#ifndef STRATA_ROOT
#error "compile with -DSTRATA_ROOT='\"/path/to/repo\"'"
#endif

#define STRATA STRATA_ROOT "/bin/strata"
#define BUGS STRATA_ROOT "/build/tests/planted/heapbugs"

static char text[1 << 16];

static th_result guard(const char *opt, char *const *cmd) {
    char *argv[32] = {STRATA, "guard", "-O", TH_OUTFILE};
    int n = 4;
    if (opt) argv[n++] = (char *)opt;
    argv[n++] = "--";
    for (; *cmd; cmd++) argv[n++] = *cmd;
    argv[n] = NULL;
    return th_exec_file(argv, text, sizeof text);
}

/* heapbugs BUG under guard: exit code, the library's line, and what the stacks must show. */
static void bug(const char *name, const char *opt, int code, const char *line, const char *const *want) {
    th_result r = guard(opt, (char *[]){BUGS, (char *)name, NULL});
    CHECKF(r.exited && r.code == code, "%s: code %d, want %d; %.400s", name, r.code, code, r.err);
    CHECKF(!strstr(r.out, "not caught"), "%s was not caught", name);
    CHECKF(strstr(r.err, line), "%s: no '%s' in: %.400s", name, line, r.err);
    for (; *want; want++) CHECKF(strstr(text, *want), "%s: no '%s' in:\n%.2000s", name, *want, text);
}

#define ALLOC "the block was allocated at\n    #0 0x"
#define MADE "make_block (tests/planted/heapbugs.c:11)"

static void overflow(void) {
    bug("overflow", NULL, 128 + SIGSEGV, "strata: guard: heap overflow: write at",
        (const char *[]){"overflow at", "offset 40 in the 24-byte block", "accessed at", ALLOC, MADE,
                         "main (tests/planted/heapbugs.c:17)", NULL});
}

static void overflow_by_one(void) {
    bug("overflow1", NULL, 128 + SIGABRT, "was written past its bounds",
        (const char *[]){"corrupt-tail", "offset 24 in the 24-byte block", MADE, "drop_block", NULL});
}

static void memcpy_overflow(void) {
    bug("memcpy", NULL, 128 + SIGSEGV, "heap overflow: write at", (const char *[]){"accessed at", MADE, NULL});
}

static void use_after_free(void) {
    bug("use-after-free", NULL, 128 + SIGSEGV, "use after free: read at",
        (const char *[]){"accessed at", MADE, "and freed at", "drop_block (tests/planted/heapbugs.c:12)",
                         "main (tests/planted/heapbugs.c:22)", NULL});
}

static void double_free(void) {
    bug("double-free", NULL, 128 + SIGABRT, "double free of the 24-byte block",
        (const char *[]){"freed at", MADE, "and first freed at", "main (tests/planted/heapbugs.c:24)",
                         "main (tests/planted/heapbugs.c:25)", NULL});
}

static void invalid_free(void) {
    bug("invalid-free", NULL, 128 + SIGABRT, "invalid pointer",
        (const char *[]){"invalid-free", "main (tests/planted/heapbugs.c:", NULL});
}

static void underflow(void) {
    th_result r = guard(NULL, (char *[]){BUGS, "underflow", NULL});
    CHECKF(r.exited && r.code == 0 && strstr(r.out, "not caught"), "a read before the block needs --underflow");
    bug("underflow", "--underflow", 128 + SIGSEGV, "heap underflow: read at",
        (const char *[]){"underflow at", MADE, NULL});
}

/* A block read after the quarantine let it go (a small quarantine, other sizes freed since): its
 * slot stays inaccessible until a block of its size takes it, so the read is still caught. */
static void use_after_free_past_the_quarantine(void) {
    th_result r = guard("--quarantine=16k", (char *[]){BUGS, "late-use-after-free", NULL});
    CHECKF(r.exited && r.code == 128 + SIGSEGV, "code %d %.300s", r.code, r.err);
    CHECKF(strstr(r.err, "use after free: read at"), "%.400s", r.err);
    CHECKF(strstr(text, ALLOC) && strstr(text, MADE), "%.2000s", text);
}

/* A write into the slack of a block never freed: seen at exit, with the allocation's stack and the
 * first byte changed; the program's own exit status stands. */
static void slack_overflow_seen_at_exit(void) {
    th_result r = guard(NULL, (char *[]){BUGS, "slack-at-exit", NULL});
    CHECKF(r.exited && r.code == 0, "code %d %.300s", r.code, r.err);
    CHECKF(strstr(r.err, "was written past its bounds") && strstr(r.err, "found at exit"), "%.400s", r.err);
    const char *want[] = {"corrupt-tail", "found at exit", "offset 24 in the 24-byte block", ALLOC, MADE,
                          "main (tests/planted/heapbugs.c:16)", NULL};
    for (const char *const *w = want; *w; w++) CHECKF(strstr(text, *w), "no '%s' in:\n%.2000s", *w, text);
    CHECKF(!strstr(text, "no heap misuse seen"), "%.500s", text);
}

/* --align 1: the block ends at its guard page, so the write one byte past faults where it is. */
static void align_one_catches_the_write(void) {
    th_result r = guard("--align=1", (char *[]){BUGS, "overflow1", NULL});
    CHECKF(r.exited && r.code == 128 + SIGSEGV, "code %d %.300s", r.code, r.err);
    const char *want[] = {"overflow at", "offset 24 in the 24-byte block", "accessed at",
                          "main (tests/planted/heapbugs.c:18)", ALLOC, MADE, NULL};
    for (const char *const *w = want; *w; w++) CHECKF(strstr(text, *w), "no '%s' in:\n%.2000s", *w, text);
}

static void clean_program_runs_through(void) {
    th_result r = guard(NULL, (char *[]){BUGS, "none", NULL});
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "not caught: none\n"), "code %d out %s err %.300s", r.code,
           r.out, r.err);
    CHECKF(strstr(text, "no heap misuse seen"), "%.500s", text);
}

static void real_programs_unchanged(void) {
    th_result plain = th_exec((char *[]){"sort", "-r", STRATA_ROOT "/README.md", NULL}, NULL);
    th_result r = guard(NULL, (char *[]){"sort", "-r", STRATA_ROOT "/README.md", NULL});
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, plain.out), "sort: code %d %.300s", r.code, r.err);
    r = guard(NULL, (char *[]){"perl", "-e", "my %h; $h{$_} = [$_] for 1..3000; print scalar(keys %h), \"\\n\"", NULL});
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "3000\n"), "perl: code %d out %s %.300s", r.code, r.out, r.err);
    r = guard("--sample", (char *[]){"perl", "-e", "my @a = map { [$_] } 1..200000; print scalar(@a), \"\\n\"", NULL});
    CHECKF(r.code == 2, "--sample needs its value");
    r = guard(NULL, (char *[]){STRATA_ROOT "/build/tests/planted/leaky", NULL});
    CHECKF(r.exited && r.code == 3 && strstr(text, "no heap misuse seen"), "threads: code %d %.300s", r.code, r.err);
}

static void bad_command_lines(void) {
    const char *bad[][4] = {{"guard", NULL}, {"guard", "--sample", "0", "true"}, {"guard", "--bogus", "true", NULL},
                            {"guard", "--depth", "65", "true"}, {"guard", "--align", "3", "true"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        th_result r = th_exec(th_args(STRATA, bad[i], sizeof bad[i] / sizeof bad[i][0]).v, NULL);
        CHECKF(r.exited && r.code == 2 && !strncmp(r.err, "strata: ", 8), "%s %s: code %d err %s", bad[i][0],
               bad[i][1] ? bad[i][1] : "", r.code, r.err);
    }
}

int main(void) {
    RUN(overflow);
    RUN(overflow_by_one);
    RUN(memcpy_overflow);
    RUN(use_after_free);
    RUN(double_free);
    RUN(invalid_free);
    RUN(underflow);
    RUN(use_after_free_past_the_quarantine);
    RUN(slack_overflow_seen_at_exit);
    RUN(align_one_catches_the_write);
    RUN(clean_program_runs_through);
    RUN(real_programs_unchanged);
    RUN(bad_command_lines);
    return 0;
}
