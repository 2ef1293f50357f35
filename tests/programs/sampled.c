/*
 * sampled.c — libstrata's sampled guard (guard_sample=N, GWP-ASan style): a bug repeated in a loop
 * (tests/planted/sampled.c) stops the program at a sampled block, with a report that names the
 * bug and gives the access, allocation and free stacks as module+offset, which addr2line turns
 * into the planted program's lines, and which `strata run` prints symbolized; off by default; a
 * clean program and real programs run unchanged with a high sampling rate.
 */
#include "harness.h"

#ifndef STRATA_ROOT
#error "compile with -DSTRATA_ROOT='\"/path/to/repo\"'"
#endif

#define LIB STRATA_ROOT "/lib/libstrata.so"
#define STRATA STRATA_ROOT "/bin/strata"
#define BUGS STRATA_ROOT "/build/tests/planted/sampled"

static th_result run(const char *options, char *const *argv) {
    char opt[256];
    snprintf(opt, sizeof opt, "STRATA_OPTIONS=%s", options);
    char *env[] = {"LD_PRELOAD=" LIB, opt, NULL};
    return th_exec(argv, env);
}

/* The function and line addr2line gives for the first frame under `title` in the report. */
static void frame_line(const char *report, const char *title, char *out, size_t cap) {
    out[0] = '\0';
    const char *t = strstr(report, title), *m = t ? strstr(t, "(" BUGS "+0x") : NULL;
    if (!m) return;
    unsigned long off = strtoul(m + strlen("(" BUGS "+0x"), NULL, 16);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "addr2line -f -e %s 0x%lx", BUGS, off - 1); /* the call, not the return */
    FILE *f = popen(cmd, "r");
    if (!f) return;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    pclose(f);
}

static void use_after_free(void) {
    th_result r = run("guard_sample=20", (char *[]){BUGS, "use-after-free", NULL});
    CHECKF(r.signaled && r.sig == SIGSEGV, "want death by SIGSEGV, got code %d sig %d: %.300s", r.code, r.sig, r.err);
    CHECKF(strstr(r.err, "strata: guard_sample: use after free (write) at"), "no report: %.500s", r.err);
    CHECKF(strstr(r.err, "offset 8 in the "), "the offset: %.500s", r.err);
    CHECKF(strstr(r.err, "accessed at") && strstr(r.err, "the block was allocated at") && strstr(r.err, "and freed at"),
           "three stacks: %.1500s", r.err);
    char line[512];
    frame_line(r.err, "the block was allocated at", line, sizeof line);
    CHECKF(strstr(line, "make_block"), "allocation stack's first frame: '%s' in %.1500s", line, r.err);
    frame_line(r.err, "and freed at", line, sizeof line);
    CHECKF(strstr(line, "drop_block"), "free stack's first frame: '%s'", line);
    frame_line(r.err, "accessed at", line, sizeof line);
    CHECKF(strstr(line, "main") || strstr(line, "write_at"), "access stack: '%s'", line);
}

static void read_after_free(void) {
    th_result r = run("guard_sample=20", (char *[]){BUGS, "read-after-free", NULL});
    CHECKF(r.signaled && r.sig == SIGSEGV, "want SIGSEGV, got code %d sig %d", r.code, r.sig);
    CHECKF(strstr(r.err, "use after free (read)"), "no report: %.500s", r.err);
}

/* A write out of a block's bounds faults on the guard page next to it, or, when the block sits
 * at the other end of its page, is found in the pattern at free: either report names it. */
static void out_of_bounds(const char *bug, const char *fault, const char *at_free, const char *also) {
    th_result r = run("guard_sample=20", (char *[]){BUGS, (char *)bug, NULL});
    bool faulted = r.signaled && r.sig == SIGSEGV && strstr(r.err, fault);
    bool found = r.signaled && r.sig == SIGABRT && strstr(r.err, at_free);
    CHECKF(faulted || found, "%s not reported: code %d sig %d %.600s", bug, r.code, r.sig, r.err);
    CHECKF(strstr(r.err, also), "%s: no '%s' in %.600s", bug, also, r.err);
}

static void overflow(void) {
    out_of_bounds("overflow", "heap overflow (write)", "write past the block (found at free)",
                  "the block was allocated at");
}

static void underflow(void) {
    out_of_bounds("underflow", "heap underflow (write)", "write before the block (found at free)",
                  "offset -1 in the ");
}

static void off_by_default(void) {
    th_result r = run("", (char *[]){BUGS, "use-after-free", NULL});
    CHECKF(r.exited && r.code == 0 && strstr(r.out, "not caught"), "sampling is on without guard_sample: %.300s",
           r.err);
    CHECKF(!strstr(r.err, "guard_sample"), "a report without sampling: %.300s", r.err);
}

static void clean_program(void) {
    th_result r = run("guard_sample=2", (char *[]){BUGS, "clean", NULL});
    CHECKF(r.exited && r.code == 0 && strstr(r.out, "ok"), "clean program: code %d sig %d %.300s %.300s", r.code,
           r.sig, r.out, r.err);
    CHECKF(!strstr(r.err, "strata:"), "a message: %.300s", r.err);
}

/* Under `strata run` the command prints the stacks with functions and lines, and ends as the
 * program did. */
/* A program's own SIGSEGV handler, set before the sampled guard's, still gets its faults. */
static void own_handler_kept(void) {
    th_result r = run("guard_sample=10", (char *[]){BUGS, "own-handler", NULL});
    CHECKF(r.exited && r.code == 0 && strstr(r.out, "ok"), "code %d sig %d: %.300s %.300s", r.code, r.sig, r.out,
           r.err);
    r = run("guard_sample=10", (char *[]){BUGS, "own-handler-uaf", NULL});
    CHECKF(r.signaled && r.sig == SIGSEGV && strstr(r.err, "use after free (write)"),
           "a use after free after the program's own faults: code %d sig %d: %.300s %.300s", r.code, r.sig, r.out,
           r.err);
}

static void run_symbolizes(void) {
    th_result r = th_exec((char *[]){STRATA, "run", "-o", "guard_sample=20", "--", BUGS, "use-after-free", NULL}, NULL);
    CHECKF(r.signaled && r.sig == SIGSEGV, "want SIGSEGV, got code %d sig %d: %.300s", r.code, r.sig, r.err);
    const char *want[] = {"strata: guard_sample: use-after-free at 0x", "(write, offset 8 in the ", "accessed at",
                          "in write_at (tests/planted/sampled.c:", "the block was allocated at",
                          "in make_block (tests/planted/sampled.c:", "and freed at",
                          "in drop_block (tests/planted/sampled.c:", NULL};
    for (const char *const *w = want; *w; w++) CHECKF(strstr(r.err, *w), "no '%s' in:\n%.2500s", *w, r.err);
    /* a child of the command: its stacks too */
    r = th_exec((char *[]){STRATA, "run", "-o", "guard_sample=20", "--", "sh", "-c", BUGS " use-after-free; exit 3",
                           NULL},
                NULL);
    CHECKF(r.exited && r.code == 3 && strstr(r.err, "in make_block (tests/planted/sampled.c:"),
           "a child's report: code %d %.1500s", r.code, r.err);
    r = th_exec((char *[]){STRATA, "run", "-o", "guard_sample=20", "--", "sh", "-c", "echo hi; exit 3", NULL}, NULL);
    CHECKF(r.exited && r.code == 3 && strstr(r.out, "hi") && !r.err[0], "exit status: code %d, '%s' '%s'", r.code,
           r.out, r.err);
}

static void real_programs(void) {
    th_result r = run("guard_sample=50",
                      (char *[]){"python3", "-c", "d = {str(i): [i] * (i % 7) for i in range(200000)}; print(len(d))", NULL});
    CHECKF(r.exited && r.code == 0 && strstr(r.out, "200000"), "python3: code %d %.300s", r.code, r.err);
    r = run("guard_sample=50", (char *[]){"sh", "-c", "seq 1 100000 | sort -r | head -1", NULL});
    CHECKF(r.exited && r.code == 0 && strstr(r.out, "99999"), "sort: code %d %.300s", r.code, r.err);
}

int main(void) {
    RUN(use_after_free);
    RUN(read_after_free);
    RUN(overflow);
    RUN(underflow);
    RUN(off_by_default);
    RUN(clean_program);
    RUN(own_handler_kept);
    RUN(run_symbolizes);
    RUN(real_programs);
    return 0;
}
