/*
 * maps.c — `strata maps` (tools/maps.c, tools/trace.c).
 *
 *   strata maps [-t] [-O FILE] PID
 *   strata maps [-t] [-o OPTIONS] [-O FILE] -- CMD ARGS...
 *
 * A process's regions come out labelled (text, heap, stack, thread stacks, vdso, libraries and
 * their bss, strata's regions only where libstrata is mapped) with size and RSS, then totals per
 * kind, the process's and the system's memory lines; a command run with -- is shown as it exits,
 * with its memory still there (a 40 MiB block strata holds is resident), on stderr or in -O FILE,
 * and its exit status or signal passes through; a missing process, an unreadable one and a bad
 * command line each give one "strata:" line (exit 1, or 2 with the usage).
 */
#include "harness.h" /* first: it defines _GNU_SOURCE */
#include "job.h"

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>

#ifndef STRATA_ROOT
#error "compile with -DSTRATA_ROOT='\"/path/to/repo\"'"
#endif

#define STRATA STRATA_ROOT "/bin/strata"
#define LIBSTRATA STRATA_ROOT "/lib/libstrata.so"

static char tmp[] = "/tmp/strata-maps-XXXXXX";

/* ---- reading the table ---- */

/* "4.0K", "1.2M", "0" in kB; *slack: how far from the exact value the rounding may be. */
static double kb_of_slack(const char *s, double *slack) {
    char *end;
    double v = strtod(s, &end), unit = 1;
    switch (*end) {
    case 'M': unit = 1024; break;
    case 'G': unit = 1024 * 1024; break;
    case 'T': unit = 1024.0 * 1024 * 1024; break;
    default: break;
    }
    if (slack) *slack = (strchr(s, '.') ? 0.051 : 0.51) * unit;
    return v * unit;
}

static double kb_of(const char *s) { return kb_of_slack(s, NULL); }

typedef struct {
    char kind[32];
    double size_kb, size_slack, rss_kb, range_kb;
    char name[PATH_MAX];
} row;

/* Parse a region line: "start-end  kind  size rss pss swap  [name]". */
static bool parse_row(const char *line, row *w) {
    char range[64], size[16], rss[16], pss[16], swap[16];
    int at = 0;
    unsigned long a, b;
    if (sscanf(line, "%63s %31s %15s %15s %15s %15s%n", range, w->kind, size, rss, pss, swap, &at) != 6) return false;
    if (sscanf(range, "%lx-%lx", &a, &b) != 2 || b <= a) return false;
    w->size_kb = kb_of_slack(size, &w->size_slack), w->rss_kb = kb_of(rss), w->range_kb = (double)(b - a) / 1024;
    const char *name = line + at;
    name += strspn(name, " ");
    size_t n = strcspn(name, "\n");
    if (n >= sizeof w->name) n = sizeof w->name - 1;
    memcpy(w->name, name, n);
    w->name[n] = '\0';
    return true;
}

/* The first region line of kind `kind` (NULL: any) whose name contains `name` (NULL: any) and
 * whose RSS is at least min_rss_kb. */
static bool find_row(const char *text, const char *kind, const char *name, double min_rss_kb, row *found) {
    row w;
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!parse_row(p, &w)) continue;
        if (kind && strcmp(w.kind, kind) != 0) continue;
        if (name && !strstr(w.name, name)) continue;
        if (w.rss_kb < min_rss_kb) continue;
        if (found) *found = w;
        return true;
    }
    return false;
}

/* The number of region lines and the sum of their address ranges in kB; -1 if a region's size is
 * not its range's. */
static int count_rows_sum(const char *text, double *size_kb) {
    row w;
    int n = 0;
    double sum = 0;
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!parse_row(p, &w)) continue;
        if (w.size_kb < w.range_kb - w.size_slack || w.size_kb > w.range_kb + w.size_slack) return -1;
        n++, sum += w.range_kb;
    }
    if (size_kb) *size_kb = sum;
    return n;
}

static int count_rows(const char *text) { return count_rows_sum(text, NULL); }

/* The region count on the "total" line of the totals, its size in kB and that size's rounding. */
static int total_regions_size(const char *text, double *size_kb, double *slack) {
    const char *t = strstr(text, "\ntotals per kind");
    if (!t) return -1;
    for (const char *p = t + 1; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        char kind[32], s[4][16];
        int n;
        if (sscanf(p, "%31s %15s %15s %15s %15s %d", kind, s[0], s[1], s[2], s[3], &n) == 6 &&
            !strcmp(kind, "total")) {
            if (size_kb) *size_kb = kb_of_slack(s[0], slack);
            return n;
        }
    }
    return -1;
}

static int total_regions(const char *text) { return total_regions_size(text, NULL, NULL); }

/* The whole report: title, regions, totals that add them up, the process and system lines. */
static bool complete_report(const char *text, int pid, char *why, size_t cap) {
    char title[64];
    snprintf(title, sizeof title, "strata maps: pid %d (", pid);
    double rows_kb = 0, total_kb = 0, slack = 0;
    int rows = count_rows_sum(text, &rows_kb), total = total_regions_size(text, &total_kb, &slack);
    if (!strstr(text, title)) snprintf(why, cap, "no title '%s'", title);
    else if (rows < 0) snprintf(why, cap, "a region's size is not that of its address range");
    else if (rows < 5) snprintf(why, cap, "%d region lines", rows);
    else if (total != rows) snprintf(why, cap, "totals count %d regions, the table %d", total, rows);
    else if (total_kb < rows_kb - slack || total_kb > rows_kb + slack)
        snprintf(why, cap, "total size %.0f kB, the regions add up to %.0f kB", total_kb, rows_kb);
    else if (!strstr(text, "\nprocess:") || !strstr(text, "VmRSS")) snprintf(why, cap, "no process: line");
    else if (!strstr(text, "\nsystem:") || !strstr(text, "MemTotal")) snprintf(why, cap, "no meminfo summary");
    else return true;
    return false;
}

/* ---- a process to look at: a test child with a grown heap and a thread ---- */

static void *sleeper(void *arg) {
    pause();
    return arg;
}

typedef struct {
    pid_t pid;
    int ready[2];
} target;

#define HEAP_GROWTH (8u << 20)

static target start_target(void) {
    target t;
    if (pipe(t.ready) != 0) abort();
    fflush(NULL);
    t.pid = fork();
    if (t.pid == 0) {
        char *p = sbrk(HEAP_GROWTH); /* [heap], resident */
        if (p == (void *)-1) _exit(1);
        memset(p, 1, HEAP_GROWTH);
        pthread_t th;
        if (pthread_create(&th, NULL, sleeper, NULL) != 0) _exit(1);
        if (write(t.ready[1], "x", 1) != 1) _exit(1);
        for (;;) pause();
    }
    char c;
    if (read(t.ready[0], &c, 1) != 1) abort();
    return t;
}

static void stop_target(target *t) {
    kill(t->pid, SIGKILL);
    waitpid(t->pid, NULL, 0);
    close(t->ready[0]);
    close(t->ready[1]);
}

/* ---- strata maps PID ---- */

static void maps_of_a_running_process(void) {
    target t = start_target();
    char pid[16], exe[PATH_MAX], why[128];
    snprintf(pid, sizeof pid, "%d", (int)t.pid);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    result r = run((char *[]){STRATA, "maps", pid, NULL});
    stop_target(&t);
    CHECKF(r.exited && r.code == 0, "exited %d code %d sig %d; stderr: %s", r.exited, r.code, r.sig, r.err);
    CHECKF(r.err[0] == '\0', "stderr: %s", r.err);
    CHECKF(complete_report(r.out, (int)t.pid, why, sizeof why), "%s: %.1500s", why, r.out);
    row w;
    CHECKF(find_row(r.out, "text", exe, 0, NULL), "no text line for %s: %.1500s", exe, r.out);
    /* the child's growth may be a region of its own: the [heap] it shares with its parent stays apart */
    CHECKF(find_row(r.out, "heap", "[heap]", 0, NULL), "no heap line: %.1500s", r.out);
    CHECKF(find_row(r.out, "heap", "[heap]", HEAP_GROWTH / 1024, NULL),
           "no heap region with the %u kB the child touched: %.1500s", HEAP_GROWTH / 1024, strstr(r.out, "[heap]"));
    CHECKF(find_row(r.out, "stack", "[stack]", 0, NULL), "no [stack] line: %.1500s", r.out);
    CHECKF(find_row(r.out, "stack", "[thread stack]", 0, NULL), "the thread's stack is not labelled: %.3000s",
           r.out);
    CHECKF(find_row(r.out, "vdso", "[vdso]", 0, NULL), "no vdso line: %.1500s", r.out);
    CHECKF(find_row(r.out, "lib-text", "libc.so", 0, NULL), "libc's text is not lib-text: %.3000s", r.out);
    CHECKF(find_row(r.out, "lib-bss", "libc.so", 0, NULL), "libc's bss is not lib-bss: %.3000s", r.out);
    /* without libstrata in the process, nothing may be called strata's */
    if (!find_row(r.out, NULL, "libstrata", 0, NULL))
        CHECKF(!find_row(r.out, "strata", NULL, 0, &w), "a region labelled strata without libstrata: %s",
               w.name);
    /* -t: the same totals, no region lines */
    t = start_target();
    snprintf(pid, sizeof pid, "%d", (int)t.pid);
    result s = run((char *[]){STRATA, "maps", "-t", pid, NULL});
    stop_target(&t);
    CHECKF(s.exited && s.code == 0, "-t: code %d; stderr: %s", s.code, s.err);
    CHECKF(count_rows(s.out) == 0 && total_regions(s.out) > 5 && strstr(s.out, "MemTotal"), "-t: %.1500s", s.out);
    done(&r);
    done(&s);
}

/* The caller itself, and strata looking at its own pid (sh execs it in place: $$ is strata). */
static void maps_of_itself(void) {
    char pid[16], why[128];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    result r = run((char *[]){STRATA, "maps", pid, NULL});
    CHECKF(r.exited && r.code == 0, "code %d; stderr: %s", r.code, r.err);
    CHECKF(complete_report(r.out, (int)getpid(), why, sizeof why), "%s: %.1500s", why, r.out);
    done(&r);
    char real[PATH_MAX];
    CHECK(realpath(STRATA, real) != NULL);
    r = run((char *[]){"sh", "-c", "exec \"$0\" maps $$", STRATA, NULL});
    CHECKF(r.exited && r.code == 0, "code %d; stderr: %s", r.code, r.err);
    CHECKF(strstr(r.out, "strata maps: pid ") && strstr(r.out, "(strata)"), "title: %.200s", r.out);
    CHECKF(find_row(r.out, "text", real, 0, NULL), "no text line for %s: %.1500s", real, r.out);
    done(&r);
}

/* ---- strata maps -- CMD ---- */

#define BIG (40u << 20)

/* Mode "alloc": 40 MiB, touched, never freed; exit 5. */
static int alloc_and_exit(void) {
    char *p = malloc(BIG);
    if (!p) return 1;
    memset(p, 1, BIG);
    th_use(p);
    printf("allocated\n");
    return 5;
}

static bool untraceable(const result *r) { return strstr(r->err, "strata: cannot trace") != NULL; }

static void snapshot_at_exit_shows_strata_memory(void) {
    char exe[PATH_MAX], why[128];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    exe[n] = '\0';
    result r = run((char *[]){STRATA, "maps", "--", exe, "alloc", NULL});
    if (untraceable(&r)) SKIP("ptrace is not allowed here: %.200s", r.err);
    CHECKF(r.exited && r.code == 5, "exited %d code %d sig %d; stderr: %.2000s", r.exited, r.code, r.sig, r.err);
    CHECKF(!strcmp(r.out, "allocated\n"), "the command's stdout: '%s'", r.out);
    CHECKF(strstr(r.err, " as it exits\n") != NULL, "no snapshot title: %.1000s", r.err);
    int pid = -1;
    CHECK(sscanf(strstr(r.err, "strata maps: pid ") + 17, "%d", &pid) == 1);
    CHECKF(complete_report(r.err, pid, why, sizeof why), "%s: %.2000s", why, r.err);
    CHECKF(find_row(r.err, "lib-text", "libstrata.so", 0, NULL), "libstrata is not mapped: %.3000s", r.err);
    row w;
    CHECKF(find_row(r.err, "strata", NULL, BIG / 1024, &w), "no strata region with %u kB resident: %.4000s",
           BIG / 1024, r.err);
    CHECKF(w.size_kb >= BIG / 1024, "size %.0f kB", w.size_kb);
    done(&r);
}

static void exit_status_and_signals_pass_through(void) {
    result r = run((char *[]){STRATA, "maps", "--", "sh", "-c", "echo out; exit 3", NULL});
    if (untraceable(&r)) SKIP("ptrace is not allowed here: %.200s", r.err);
    CHECKF(r.exited && r.code == 3, "exited %d code %d sig %d; stderr: %.500s", r.exited, r.code, r.sig, r.err);
    CHECKF(!strcmp(r.out, "out\n"), "stdout '%s'", r.out);
    CHECKF(strstr(r.err, "(sh) as it exits") && total_regions(r.err) > 5, "no snapshot: %.1000s", r.err);
    done(&r);
    r = run((char *[]){STRATA, "maps", "-t", "--", "true", NULL});
    CHECKF(r.exited && r.code == 0, "true: code %d; stderr: %.500s", r.code, r.err);
    done(&r);
    /* killed: a line says so, the status is 128+N, and the snapshot is still taken */
    r = run((char *[]){STRATA, "maps", "-t", "--", "sh", "-c", "kill -TERM $$", NULL});
    CHECKF(r.exited && r.code == 128 + SIGTERM, "exited %d code %d sig %d; stderr: %.500s", r.exited, r.code,
           r.sig, r.err);
    CHECKF(strstr(r.err, "strata: sh killed by signal 15 (SIGTERM)\n") != NULL, "stderr: %.1000s", r.err);
    CHECKF(total_regions(r.err) > 5, "no snapshot: %.1000s", r.err);
    done(&r);
    /* a signal sent to the command reaches it (the tracer passes it on) */
    r = run((char *[]){STRATA, "maps", "-t", "--", "sh", "-c", "trap 'exit 7' USR1; kill -USR1 $$; exit 1", NULL});
    CHECKF(r.exited && r.code == 7, "SIGUSR1 lost: code %d; stderr: %.500s", r.code, r.err);
    done(&r);
    /* -o reaches the library */
    r = run((char *[]){STRATA, "maps", "-t", "-o", "verbose=1", "--", "sh", "-c", ":", NULL});
    CHECKF(r.exited && r.code == 0 && strstr(r.err, "strata: version "), "-o verbose=1: %.500s", r.err);
    done(&r);
}

static void output_file(void) {
    char path[PATH_MAX], buf[1 << 16];
    snprintf(path, sizeof path, "%s/snapshot.txt", tmp);
    result r = run((char *[]){STRATA, "maps", "-O", path, "--", "sh", "-c", "exit 4", NULL});
    if (untraceable(&r)) SKIP("ptrace is not allowed here: %.200s", r.err);
    CHECKF(r.exited && r.code == 4, "code %d; stderr: %.500s", r.code, r.err);
    CHECKF(r.err[0] == '\0' && r.out[0] == '\0', "out '%.200s' err '%.200s'", r.out, r.err);
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "%s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    CHECKF(strstr(buf, "(sh) as it exits") && total_regions(buf) == count_rows(buf) && count_rows(buf) > 5,
           "%s: %.1000s", path, buf);
    done(&r);
    /* a file that cannot be written: one line, the command not run */
    r = run((char *[]){STRATA, "maps", "--output=/nonexistent/dir/x", "--", "sh", "-c", "echo ran", NULL});
    CHECKF(r.exited && r.code == 1 && r.out[0] == '\0', "code %d out '%s'", r.code, r.out);
    CHECKF(!strncmp(r.err, "strata: ", 8) && strstr(r.err, "/nonexistent/dir/x") && lines(r.err) == 1,
           "stderr: %s", r.err);
    done(&r);
}

static void command_that_cannot_run(void) {
    result r = run((char *[]){STRATA, "maps", "--", "/nonexistent/program", NULL});
    CHECKF(r.exited && r.code == 127, "code %d; stderr: %s", r.code, r.err);
    CHECKF(!strncmp(r.err, "strata: cannot run '/nonexistent/program'", 41) && lines(r.err) == 1,
           "stderr: '%s'", r.err);
    done(&r);
}

/* ---- errors ---- */

static void missing_process(void) {
    result r = run((char *[]){STRATA, "maps", "2147483647", NULL});
    CHECKF(r.exited && r.code == 1, "code %d; stderr: %s", r.code, r.err);
    CHECKF(!strcmp(r.err, "strata: maps: no process 2147483647\n") && r.out[0] == '\0', "err '%s' out '%.200s'",
           r.err, r.out);
    done(&r);
    /* a child that has come and gone */
    pid_t gone = fork();
    if (gone == 0) _exit(0);
    waitpid(gone, NULL, 0);
    char pid[16], want[64];
    snprintf(pid, sizeof pid, "%d", (int)gone);
    snprintf(want, sizeof want, "strata: maps: no process %d\n", (int)gone);
    r = run((char *[]){STRATA, "maps", pid, NULL});
    CHECKF(r.exited && r.code == 1 && !strcmp(r.err, want), "code %d; stderr: '%s'", r.code, r.err);
    done(&r);
}

/* Another user's process: as root, look at ourselves as nobody; otherwise at pid 1 if it is not ours. */
static void unreadable_process(void) {
    char pid[16], path[64];
    int uid = -1;
    if (geteuid() == 0) {
        uid = 65534;
        snprintf(pid, sizeof pid, "%d", (int)getpid());
    } else {
        struct stat st;
        if (stat("/proc/1", &st) != 0 || st.st_uid == geteuid()) SKIP("no process of another user to look at");
        snprintf(pid, sizeof pid, "1");
    }
    snprintf(path, sizeof path, "/proc/%s/smaps", pid);
    result r = run_as((char *[]){STRATA, "maps", pid, NULL}, uid);
    if (r.exited && r.code == 120) SKIP("cannot run the command as uid %d", uid);
    CHECKF(r.exited && r.code == 1, "code %d; stdout %.300s; stderr: %s", r.code, r.out, r.err);
    CHECKF(!strncmp(r.err, "strata: maps: cannot read ", 26) && strstr(r.err, path) &&
               strstr(r.err, strerror(EACCES)) && lines(r.err) == 1,
           "stderr: '%s'", r.err);
    done(&r);
}

static void bad_command_lines_print_usage_and_exit_2(void) {
    static char *const bad[][5] = {
        {"maps", NULL},           {"maps", "abc", NULL},       {"maps", "12x", NULL},
        {"maps", "0", NULL},      {"maps", "--bogus", "1", NULL}, {"maps", "1", "2", NULL},
        {"maps", "--", NULL},     {"maps", "-o", NULL},        {"maps", "-o", "verbose=1", "1", NULL},
        {"maps", "-5", NULL},     {"maps", "1", "--", "true", NULL}, {"maps", "-O", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        result r = run(th_args(STRATA, (const char *const *)bad[i], sizeof bad[i] / sizeof bad[i][0]).v);
        CHECKF(r.exited && r.code == 2, "strata %s %s: code %d; stderr: %s", bad[i][0], bad[i][1] ? bad[i][1] : "",
               r.code, r.err);
        CHECKF(!strncmp(r.err, "strata: ", 8) && strstr(r.err, "usage") && strstr(r.err, "strata maps") &&
                   r.out[0] == '\0',
               "strata %s %s: stderr '%.300s' stdout '%.100s'", bad[i][0], bad[i][1] ? bad[i][1] : "", r.err, r.out);
        done(&r);
    }
    result r = run((char *[]){STRATA, "help", NULL});
    CHECKF(r.exited && r.code == 0 && strstr(r.out, "strata maps [-t] PID"), "help: %.500s", r.out);
    done(&r);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "alloc")) return alloc_and_exit();
    if (!th_command_setup(STRATA, LIBSTRATA, tmp)) return 1;

    RUN(maps_of_a_running_process);
    RUN(maps_of_itself);
    RUN(snapshot_at_exit_shows_strata_memory);
    RUN(exit_status_and_signals_pass_through);
    RUN(output_file);
    RUN(command_that_cannot_run);
    RUN(missing_process);
    RUN(unreadable_process);
    RUN(bad_command_lines_print_usage_and_exit_2);
    return 0;
}
