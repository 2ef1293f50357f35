/*
 * profile.c — `strata profile` (tools/profile.c) on tests/planted/profiled.c, whose three sites
 * hold known live bytes (8 MiB in 100-byte blocks, 16 MiB in 4 KiB blocks, 4.1 MiB in 300 KiB
 * huge blocks; a fourth allocates 32 MiB and frees it all), run on libstrata with
 * profile_rate=4096 so that the estimates are tight, and profile_cost=0 so that they stay so
 * (the time budget would make samples few and heavy here: 28 MiB at one in 4 KiB).
 *
 * Read from outside while it waits: the top table names the three sites, largest first, each
 * within 10% of its exact live bytes, with its file:line; --folded has a stack per site ending in
 * it, its bytes within 10%; the pprof file -o writes, opened by `go tool pprof` (skipped where
 * there is no go), lists them in that order with those figures; --watch prints until the program
 * exits, then exits 0. `strata profile -- CMD` prints the same at CMD's exit and exits with CMD's
 * status; a CMD killed by SIGKILL leaves no profile (one line). `strata report PID` draws the
 * page with the sites, a flame graph and the statistics. --save and --diff: what grew from
 * a command that took no sample to the planted program is the three sites, in order. A missing
 * process, one not on strata, one with profile_rate=0: one "strata:" line and exit 1; a bad
 * command line: the usage and exit 2 (--help: the usage on stdout, exit 0).
 */
#include "harness.h" /* first: it defines _GNU_SOURCE */
#include "job.h"

#include <limits.h>

#ifndef STRATA_ROOT
#error "compile with -DSTRATA_ROOT='\"/path/to/repo\"'"
#endif

#define STRATA STRATA_ROOT "/bin/strata"
#define LIBSTRATA STRATA_ROOT "/lib/libstrata.so"
#define PLANTED STRATA_ROOT "/build/tests/planted/profiled"

static char tmp[] = "/tmp/strata-profile-XXXXXX";

static const char *const sites[] = {"site_b", "site_a", "site_c"}; /* largest first */
enum { NSITES = 3 };

/* A path in the scratch directory (one of 4 buffers, used in turn). */
static const char *tmp_file(const char *name) {
    static char paths[4][PATH_MAX];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, PATH_MAX, "%s/%s", tmp, name);
    return path;
}

/* ---- the planted program, waiting ---- */

typedef struct {
    pid_t pid;
    FILE *in;           /* its stdin: closing it ends the program */
    long exact[NSITES]; /* live bytes of sites[i], as it says */
} planted;

/* Start the planted program (options NULL: not on strata) and read what it says up to its last
 * figure; pid 0 when it did not get that far. */
static planted planted_start(const char *options) {
    planted p = {0};
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) abort();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0), dup2(out[1], 1);
        if (options) setenv("LD_PRELOAD", LIBSTRATA, 1), setenv("STRATA_OPTIONS", options, 1);
        execl(PLANTED, PLANTED, (char *)NULL);
        _exit(127);
    }
    close(in[0]), close(out[1]);
    p.in = fdopen(in[1], "w");
    FILE *said = fdopen(out[0], "r");
    char line[128], name[32];
    long v;
    int figures = 0;
    while (figures < NSITES && fgets(line, sizeof line, said))
        if (sscanf(line, "%31s %ld", name, &v) == 2)
            for (int i = 0; i < NSITES; i++)
                if (!strcmp(name, sites[i])) p.exact[i] = v, figures++;
    fclose(said);
    p.pid = figures == NSITES ? pid : 0;
    if (!p.pid) kill(pid, SIGKILL), waitpid(pid, NULL, 0);
    return p;
}

static int planted_end(planted *p) {
    if (p->in) fclose(p->in);
    p->in = NULL;
    int st;
    if (!p->pid || waitpid(p->pid, &st, 0) != p->pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `strata ARGS... PID` while the planted program (started with `options`, see planted_start)
 * waits; then it is ended, its exit status in *code. Nothing is run when it did not start. */
static result on_planted(planted *p, const char *options, const char *const *args, int *code) {
    *p = planted_start(options);
    result r = {.code = -1};
    if (!p->pid) return r;
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)p->pid);
    char *argv[8] = {STRATA};
    int n = 1;
    while (*args && n < 6) argv[n++] = (char *)*args++;
    argv[n] = pid;
    r = run(argv);
    *code = planted_end(p);
    return r;
}

/* ---- reading what it printed ---- */

/* "16.0 MiB" as bytes; -1 if it is not that. */
static double bytes_of(const char *s) {
    double v;
    char unit[8];
    if (sscanf(s, "%lf %7s", &v, unit) != 2) return -1;
    static const char *const units[] = {"B", "KiB", "MiB", "GiB"};
    for (int i = 0; i < 4; i++, v *= 1024)
        if (!strcmp(unit, units[i])) return v;
    return -1;
}

/* The line of `text` holding `what`, in line (empty if none); its offset in text, or -1. */
static long line_with(const char *text, const char *what, char *line, size_t cap) {
    const char *p = strstr(text, what);
    line[0] = '\0';
    if (!p) return -1;
    const char *start = p;
    while (start > text && start[-1] != '\n') start--;
    snprintf(line, cap, "%.*s", (int)strcspn(start, "\n"), start);
    return start - text;
}

static bool near(double estimate, long exact) { return estimate > 0.9 * exact && estimate < 1.1 * exact; }

/* The top table has the three sites in order, each within 10%, with its source line. */
static bool table_ok(const char *out, const planted *p, char *why, size_t cap) {
    long last = -1;
    for (int i = 0; i < NSITES; i++) {
        char what[48], line[1024];
        snprintf(what, sizeof what, " %s (tests/planted/profiled.c:", sites[i]);
        long at = line_with(out, what, line, sizeof line);
        double est = bytes_of(line);
        if (at < 0 || at < last || !near(est, p->exact[i])) {
            snprintf(why, cap, "%s: %.0f bytes estimated, %ld exact, at %ld (after %ld), in:\n%.3000s", sites[i],
                     est, p->exact[i], at, last, out);
            return false;
        }
        last = at;
    }
    return true;
}

/* ---- tests ---- */

static void top_table_of_a_running_process(void) {
    planted p;
    int code;
    result r = on_planted(&p, "profile_rate=4096,profile_cost=0", (const char *[]){"profile", NULL}, &code);
    CHECKF(p.pid, "the planted program did not start");
    char why[4096], head[64];
    CHECKF(r.exited && r.code == 0 && r.err[0] == '\0', "code %d; stderr: %s", r.code, r.err);
    CHECKF(code == 0, "the planted program exited %d", code);
    snprintf(head, sizeof head, "strata profile: pid %d (" PLANTED ")", (int)p.pid);
    CHECKF(!strncmp(r.out, head, strlen(head)) && strstr(r.out, "one sample per 4096 bytes"), "%.500s", r.out);
    CHECKF(table_ok(r.out, &p, why, sizeof why), "%s", why);
    CHECKF(!strstr(r.out, "libstrata") && !strstr(r.out, " malloc ("), "libstrata's frames: %.2000s", r.out);
    const char *row = r.out;
    for (int i = 0; i < 4 && (row = strchr(row, '\n')) && row[1]; i++) {
        row++;
        printf("# %.*s\n", (int)strcspn(row, "\n"), row);
    }
    done(&r);
}

static void folded_stacks(void) {
    planted p;
    int code;
    result r = on_planted(&p, "profile_rate=4096,profile_cost=0", (const char *[]){"profile", "--folded", NULL}, &code);
    CHECKF(p.pid, "the planted program did not start");
    CHECKF(r.exited && r.code == 0, "code %d; stderr: %s", r.code, r.err);
    for (int i = 0; i < NSITES; i++) {
        char what[32], line[1024];
        snprintf(what, sizeof what, ";main;%s ", sites[i]);
        long bytes = line_with(r.out, what, line, sizeof line) >= 0 ? atol(strstr(line, what) + strlen(what)) : -1;
        CHECKF(near((double)bytes, p.exact[i]), "%s: %ld bytes, %ld exact: %.2000s", sites[i], bytes, p.exact[i],
               r.out);
    }
    CHECKF(!strstr(r.out, ";churn "), "a site whose blocks were all freed holds nothing: %.2000s", r.out);
    done(&r);
}

/* A program on PATH, or NULL. */
static bool on_path(const char *name) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

static void pprof_file_read_by_go_tool_pprof(void) {
    if (!on_path("go")) SKIP("no go on PATH (Debian: golang-go) to read the pprof file with");
    const char *file = tmp_file("heap.pb.gz");
    planted p;
    int code;
    result r = on_planted(&p, "profile_rate=4096,profile_cost=0", (const char *[]){"profile", "-o", file, NULL}, &code);
    CHECKF(p.pid, "the planted program did not start");
    CHECKF(r.exited && r.code == 0 && r.out[0] == '\0', "code %d; stderr: %s; stdout %.300s", r.code, r.err, r.out);
    result go = run((char *[]){"go", "tool", "pprof", "-top", "-sample_index=inuse_space", (char *)file, NULL});
    CHECKF(go.exited && go.code == 0, "go tool pprof: code %d: %s", go.code, go.err);
    long last = -1;
    for (int i = 0; i < NSITES; i++) { /* "   15.82MB 56.06% 56.06%    15.82MB 56.06%  site_b" */
        char what[32], line[512];
        snprintf(what, sizeof what, "  %s\n", sites[i]);
        long at = line_with(go.out, what, line, sizeof line);
        double mb = at >= 0 ? atof(line) : -1;
        if (at >= 0 && strstr(line, "kB")) mb /= 1024;
        CHECKF(at > last && near(mb * 1048576, p.exact[i]), "%s: %.2f MB, %ld bytes exact, in:\n%s", sites[i], mb,
               p.exact[i], go.out);
        last = at;
    }
    result raw = run((char *[]){"go", "tool", "pprof", "-raw", (char *)file, NULL});
    CHECKF(strstr(raw.out, "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes[dflt]") &&
               strstr(raw.out, "Period: 4096") && strstr(raw.out, "profiled.c:28") &&
               strstr(raw.out, "build/tests/planted/profiled "),
           "%.3000s", raw.out);
    done(&r), done(&go), done(&raw);
}

static void watch_until_exit(void) {
    planted p = planted_start("profile_rate=4096,profile_cost=0");
    CHECKF(p.pid, "the planted program did not start");
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)p.pid);
    job w = job_start((char *[]){STRATA, "profile", "--watch", "1", pid, NULL}, -1);
    bool twice = job_read(&w, "strata profile: pid", 2, 15000);
    int code = planted_end(&p);
    result r = job_finish(&w);
    char want[64];
    snprintf(want, sizeof want, "strata: %d: exited\n", (int)p.pid);
    CHECKF(twice && code == 0, "not two tables in 15 s (planted: %d): %.600s; stderr %s", code, r.out, r.err);
    CHECKF(r.exited && r.code == 0 && !strcmp(r.err, want), "code %d; stderr '%s'", r.code, r.err);
    done(&r);
}

static void profile_of_a_command_at_exit(void) {
    result r = run((char *[]){STRATA, "profile", "--rate", "4096", "--options", "profile_cost=0", "--top", "5", "--", PLANTED, "exit", NULL});
    CHECKF(r.exited && r.code == 0, "code %d; stderr %s", r.code, r.err);
    planted p = {.exact = {16777216, 8388600, 4300800}};
    char why[4096];
    CHECKF(strstr(r.out, ") at exit, one sample per 4096 bytes"), "%.600s", r.out);
    CHECKF(table_ok(r.out, &p, why, sizeof why), "%s", why);
    result status = run((char *[]){STRATA, "profile", "--", "sh", "-c", "exit 3", NULL});
    CHECKF(status.exited && status.code == 3, "the command's status 3: code %d; %s", status.code, status.err);
    result killed = run((char *[]){STRATA, "profile", "--", "sh", "-c", "kill -9 $$", NULL});
    CHECKF(killed.exited && killed.code == 137 && strstr(killed.err, "left no profile") &&
               th_count_lines(killed.err, "strata: ") == 2,
           "code %d; stderr '%s'", killed.code, killed.err);
    done(&r), done(&status), done(&killed);
}

static void diff_of_saved_profiles(void) {
    char *before = (char *)tmp_file("before"), *after = (char *)tmp_file("after");
    result a = run((char *[]){STRATA, "profile", "--save", before, "--", "true", NULL});
    result b = run((char *[]){STRATA, "profile", "--rate", "4096", "--options", "profile_cost=0", "--save", after, "--", PLANTED, "exit", NULL});
    result d = run((char *[]){STRATA, "profile", "--diff", before, after, NULL});
    result from = run((char *[]){STRATA, "profile", "--from", after, "--top", "3", NULL});
    CHECKF(a.exited && a.code == 0 && b.exited && b.code == 0, "codes %d %d: %s %s", a.code, b.code, a.err, b.err);
    CHECKF(d.exited && d.code == 0 && d.err[0] == '\0', "diff: code %d: %s", d.code, d.err);
    long last = -1;
    for (int i = 0; i < NSITES; i++) {
        char what[48], line[1024];
        snprintf(what, sizeof what, " %s (tests/planted/profiled.c:", sites[i]);
        long at = line_with(d.out, what, line, sizeof line);
        CHECKF(at > last && line[strspn(line, " ")] == '+', "%s: %.2000s", sites[i], d.out);
        last = at;
    }
    planted p = {.exact = {16777216, 8388600, 4300800}};
    char why[4096];
    CHECKF(from.exited && from.code == 0 && table_ok(from.out, &p, why, sizeof why), "--from: %d %s %s", from.code,
           from.err, why);
    done(&a), done(&b), done(&d), done(&from);
}

static void report_page_of_a_running_process(void) {
    const char *page = tmp_file("live.html");
    planted p;
    int code;
    result r = on_planted(&p, "profile_rate=4096,profile_cost=0", (const char *[]){"report", "-O", page, NULL}, &code);
    CHECKF(p.pid, "the planted program did not start");
    CHECKF(r.exited && r.code == 0 && strstr(r.err, "report written to"), "code %d; stderr %s", r.code, r.err);
    FILE *f = fopen(page, "r");
    CHECKF(f, "no page");
    static char html[1 << 20];
    size_t n = fread(html, 1, sizeof html - 1, f);
    fclose(f);
    html[n] = '\0';
    CHECKF(strstr(html, "<h2>Live memory by allocation site</h2>") && strstr(html, "<h2>Heap statistics</h2>") &&
               strstr(html, "<th>live (estimated)</th>") && strstr(html, "<svg") && strstr(html, "heap statistics (pid ") &&
               !strstr(html, "cut short"),
           "%.2000s", html);
    for (int i = 0; i < NSITES; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s (tests/planted/profiled.c:", sites[i]);
        CHECKF(strstr(html, what), "no %s on the page", sites[i]);
    }
    done(&r);
}

/* The unwinder is linked in: taking samples loads nothing. glibc's backtrace() dlopens libgcc_s at
 * its first call, and a first sample taken by ld.so's own malloc in the middle of a dlopen crashed
 * the loader (ar loading its LLVM plugin). grep is not linked to libgcc_s. */
static void sampling_loads_no_library(void) {
    if (!on_path("grep")) SKIP("no grep");
    result r = run((char *[]){STRATA, "profile", "--rate", "64", "--options", "profile_cost=0", "--top", "3", "--",
                              "grep", "-c", "libgcc_s", "/proc/self/maps", NULL});
    CHECKF(r.exited && (r.code == 0 || r.code == 1), "code %d: %s", r.code, r.err);
    CHECKF(!strncmp(r.out, "0\n", 2), "grep found libgcc_s in its maps while sampled:\n%.600s", r.out);
    CHECKF(strstr(r.out, "one sample per 64 bytes") && !strstr(r.out, " 0 samples"), "%.600s", r.out);
    done(&r);
}

static void one_line_and_status_1(void) {
    result gone = run((char *[]){STRATA, "profile", "2147483647", NULL});
    CHECKF(gone.exited && gone.code == 1 && !strcmp(gone.err, "strata: 2147483647: no such process\n") &&
               gone.out[0] == '\0',
           "code %d; stderr '%s'", gone.code, gone.err);
    planted off, zero;
    int code;
    result r = on_planted(&off, NULL, (const char *[]){"profile", NULL}, &code);
    CHECKF(off.pid, "the planted program did not start");
    char want[128];
    snprintf(want, sizeof want, "strata: %d: not running on strata (no live statistics)\n", (int)off.pid);
    CHECKF(r.exited && r.code == 1 && !strcmp(r.err, want) && r.out[0] == '\0', "code %d; stderr '%s'", r.code,
           r.err);
    result z = on_planted(&zero, "profile_rate=0", (const char *[]){"profile", NULL}, &code);
    CHECKF(zero.pid, "the planted program did not start");
    CHECKF(z.exited && z.code == 1 && lines(z.err) == 1 && strstr(z.err, "has no heap profile") && z.out[0] == '\0',
           "code %d; stderr '%s'", z.code, z.err);
    result bad = run((char *[]){STRATA, "profile", "--from", "/nonexistent/profile", NULL});
    CHECKF(bad.exited && bad.code == 1 && lines(bad.err) == 1 && !strncmp(bad.err, "strata: ", 8), "code %d; '%s'",
           bad.code, bad.err);
    done(&gone), done(&r), done(&z), done(&bad);
}

static void bad_command_lines_print_usage_and_exit_2(void) {
    static char *const bad[][6] = {
        {"profile", NULL},
        {"profile", "--top", "0", "1", NULL},
        {"profile", "--watch", "x", "1", NULL},
        {"profile", "1", "2", NULL},
        {"profile", "1", "--bogus", NULL},
        {"profile", "99999999999", NULL},
        {"profile", "--diff", "a", NULL},
        {"profile", "--watch", "1", "--folded", "1", NULL},
        {"profile", "--rate", "4096", "1", NULL},
        {"profile", "-o", NULL},
        {"profile", "--", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        result r = run(th_args(STRATA, (const char *const *)bad[i], sizeof bad[i] / sizeof bad[i][0]).v);
        CHECKF(r.exited && r.code == 2 && !strncmp(r.err, "strata: ", 8) && strstr(r.err, "usage") &&
                   strstr(r.err, "strata profile PID") && r.out[0] == '\0',
               "case %zu: code %d; stderr '%.300s'", i, r.code, r.err);
        done(&r);
    }
    /* --help is no error: the usage and options on stdout, exit 0 (command.c checks every command) */
    result r = run((char *[]){STRATA, "profile", "1", "--help", NULL});
    CHECKF(r.exited && r.code == 0 && !strncmp(r.out, "usage: strata profile PID", 25) && strstr(r.out, "--folded") &&
               !r.err[0],
           "profile 1 --help: code %d out '%.200s' err '%.200s'", r.code, r.out, r.err);
    done(&r);
}

int main(void) {
    if (!th_command_setup(STRATA, LIBSTRATA, tmp)) return 1;
    RUN(top_table_of_a_running_process);
    RUN(folded_stacks);
    RUN(pprof_file_read_by_go_tool_pprof);
    RUN(watch_until_exit);
    RUN(profile_of_a_command_at_exit);
    RUN(diff_of_saved_profiles);
    RUN(report_page_of_a_running_process);
    RUN(sampling_loads_no_library);
    RUN(one_line_and_status_1);
    RUN(bad_command_lines_print_usage_and_exit_2);
    return 0;
}
