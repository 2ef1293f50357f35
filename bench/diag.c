/*
 * diag — what strata's diagnostics cost, against valgrind memcheck and heaptrack, in one run.
 *
 *   diag [options]
 *     --diag-lib LIB    the diagnostic build (lib/libstrata-diag.so)
 *     --bin DIR         the benchmark workloads, for cfrac, espresso and mixed (build/bench)
 *     --out DIR         results: diag.md (the tables), diag.csv (every run) (bench/results)
 *     --runs N          runs of each program under each tool (3)
 *     --guard-runs N    runs under strata guard (1: a run takes up to a minute)
 *     --limit S         seconds a run may take before it is stopped and counted failed (120)
 *     --guard-limit S   the same under strata guard (60)
 *     --only A,B        only these programs (perl, python, sort, cfrac, espresso, mixed)
 *     --publish DOC     put the tables into DOC (BENCHMARKS.md) between <!-- bench:diag:... -->
 *
 * Each program runs plain (glibc, nothing preloaded), under libstrata-diag.so with diag=leaks and
 * with diag=guard (what `strata leaks` and `strata guard` run, without their symbolizing at the
 * end), under `valgrind --leak-check=full` and under `heaptrack`. Runs are interleaved — every
 * program under every tool, then all of it again — and medians reported.
 *
 * Time is wall-clock, from starting the command to its exit, as a user waits for it: valgrind's
 * start-up, heaptrack's shell script, interpreter and compressor and strata's leak scan at exit
 * are all in it. Peak RSS is the whole process tree's: a measuring process, made the subreaper
 * of everything the command starts, takes the larger of its RUSAGE_CHILDREN ru_maxrss once all
 * of it has been reaped (the exact peak of the largest single process) and of the largest sum of
 * the tree's resident sets seen in samples every 20 ms (processes that run side by side, such
 * as heaptrack's program and its interpreter).
 *
 * A run counts only if it did what it should: exit status 0, the program's own result line (or,
 * for sort, every line of its output in order), a dump from libstrata-diag.so that says the
 * process exited, holds no error and ends with "end", a heaptrack data file that heaptrack_print
 * reads. Anything else is a failure, shown as FAIL with the reason below the tables, never as a
 * time.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

/* ---- the programs: real, allocation-heavy, sized so that valgrind takes at most ~15 s ---- */

#define PERL_N 300000
#define PYTHON_N 100000
#define SORT_N 300000
#define STR(x) #x
#define XSTR(x) STR(x)

typedef struct {
    const char *name;    /* row */
    const char *about;   /* what it does */
    const char *argv[8]; /* the command; NULL entries filled in at start */
    const char *env;     /* NAME=VALUE set for every tool, or NULL */
    const char *expect;  /* its stdout contains this, or NULL */
    bool sorted_output;  /* sort: its output file is checked line by line */
    bool selected;
} program;

static char python_exe[4096], cfrac_exe[4096], espresso_exe[4096], mixed_exe[4096];
static char sort_in[4096], sort_out[4096];

static program progs[] = {
    {"perl", "perl: a hash of " XSTR(PERL_N) " array refs `$h{\"k$i\"} = [$i, \"v$i\"]`, then summed",
     {"perl", "-e",
      "my %h; for my $i (1.." XSTR(PERL_N) ") { $h{\"k$i\"} = [$i, \"v$i\"]; } my $n = 0; "
      "$n += $h{\"k$_\"}[0] for 1.." XSTR(PERL_N) "; print \"perl ok $n\\n\";",
      NULL},
     NULL, "perl ok 45000150000", false, true},
    {"python", "python3: a dict of " XSTR(PYTHON_N) " lists `d[\"k%d\" % i] = [i, \"v%d\" % i, (i, i + 1)]`, "
               "PYTHONMALLOC=malloc (for every tool: else pymalloc serves small objects from its own arenas)",
     {python_exe, "-c",
      "d = {}\nfor i in range(" XSTR(PYTHON_N) "):\n    d['k%d' % i] = [i, 'v%d' % i, (i, i + 1)]\n"
      "print('python ok', len(d), sum(v[0] for v in d.values()))\n",
      NULL},
     "PYTHONMALLOC=malloc", "python ok 100000 4999950000", false, true},
    {"sort", "sort: " XSTR(SORT_N) " shuffled lines (7 MiB) into a file, LC_ALL=C; a dozen allocations, "
             "the input going into one big buffer sized from the machine's memory and mostly untouched", {"sort", "-o", sort_out, sort_in, NULL},
     NULL, NULL, true, true},
    {"cfrac", "cfrac --scale 0.05 (bench/workloads): bignum arithmetic, millions of small short-lived blocks",
     {cfrac_exe, "--scale", "0.05", NULL}, NULL, "check=ok", false, true},
    {"espresso", "espresso --scale 0.2 (bench/workloads): linked lists of bit-vector cubes",
     {espresso_exe, "--scale", "0.2", NULL}, NULL, "check=ok", false, true},
    {"mixed", "mixed (bench/workloads): nothing but malloc, calloc and free, 3 M calls of 16 to 512 bytes "
              "from three call sites, up to 1000 live",
     {mixed_exe, NULL}, NULL, "check=ok", false, true},
};
enum { NPROG = sizeof progs / sizeof progs[0] };

/* ---- the tools ---- */

enum { PLAIN, LEAKS, GUARD, VALGRIND, HEAPTRACK, NTOOL };
static const char *const tool_name[NTOOL] = {"plain", "strata leaks", "strata guard",
                                             "valgrind memcheck", "heaptrack"};
static bool tool_ok[NTOOL];

static const char *diag_lib = "lib/libstrata-diag.so", *bindir = "build/bench", *outdir = "bench/results";
static char tmpdir[256];

/* ---- running one command, measured ---- */

enum { SAMPLE_MS = 20 };

typedef struct {
    pid_t pid;      /* the command's */
    int status;     /* its wait status */
    bool timed_out; /* stopped at the limit */
    double wall;    /* seconds from start to its exit */
    long maxrss_kb; /* RUSAGE_CHILDREN of the measuring process: the largest single process */
    long tree_kb;   /* the largest sum over the tree at one sample */
    char why[160];  /* the measuring itself failed */
} measure;

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Sum of the resident sets of every process below `root` (from /proc/PID/stat). */
static long tree_rss_kb(pid_t root) {
    enum { MAXP = 4096 };
    static pid_t pid[MAXP], ppid[MAXP];
    static long rss[MAXP];
    int n = 0;
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAXP) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t k = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (k <= 0) continue;
        buf[k] = '\0';
        const char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
        if (!p || p[1] != ' ' || !p[2]) continue;
        p += 3; /* field 3, the state */
        long f[22] = {0};
        for (int i = 1; i < 22 && *p; i++) { /* fields 4 (ppid) .. 24 (rss, in pages) */
            while (*p && *p != ' ') p++;
            f[i] = strtol(p, (char **)&p, 10);
        }
        pid[n] = (pid_t)atoi(e->d_name);
        ppid[n] = (pid_t)f[1];
        rss[n++] = f[21];
    }
    closedir(d);
    long pages = 0;
    for (int i = 0; i < n; i++) {
        pid_t up = ppid[i];
        for (int depth = 0; depth < 64 && up > 1 && up != root; depth++) {
            int j = 0;
            while (j < n && pid[j] != up) j++;
            up = j < n ? ppid[j] : 0;
        }
        if (up == root) pages += rss[i];
    }
    return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

static volatile sig_atomic_t command_pid;

static void stop_command(int sig) {
    if (command_pid > 0) kill(-command_pid, SIGKILL);
    _exit(128 + sig);
}

/* The measuring process: runs argv with env (NAME=VALUE strings) added and its output to files,
 * and sends what it measured down `resfd`. It is a fresh exec of this program (`diag --measure`),
 * not a fork of the driver: a forked child is resident as big as its parent until it execs, and
 * the kernel keeps that in the ru_maxrss it reports. */
static int measure_main(int argc, char **argv) {
    if (argc < 7) return 2;
    double limit = atof(argv[2]);
    const char *out = argv[3], *err = argv[4];
    int resfd = atoi(argv[5]), first = 6;
    while (first < argc && strcmp(argv[first], "--")) first++;
    if (first + 1 >= argc) return 2;
    argv[first] = NULL; /* argv[6 ..] is now the environment to add */
    char **env = argv + 6, **cmd = argv + first + 1;

    measure x;
    memset(&x, 0, sizeof x);
    prctl(PR_SET_CHILD_SUBREAPER, 1); /* whatever the command leaves behind is reaped here */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stop_command;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0); /* its own group: stopped as a whole at the limit */
        int in = open("/dev/null", O_RDONLY), o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644),
            e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || o < 0 || e < 0) _exit(126);
        dup2(in, 0), dup2(o, 1), dup2(e, 2);
        close(in), close(o), close(e), close(resfd);
        unsetenv("LD_PRELOAD");
        unsetenv("STRATA_OPTIONS");
        unsetenv("PYTHONMALLOC");
        setenv("LC_ALL", "C", 1);
        for (int i = 0; env[i]; i++) putenv(env[i]);
        execvp(cmd[0], cmd);
        fprintf(stderr, "cannot run %s: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    int pfd = c < 0 ? -1 : (int)syscall(SYS_pidfd_open, c, 0);
    if (c < 0) snprintf(x.why, sizeof x.why, "fork: %s", strerror(errno));
    else if (pfd < 0) {
        kill(-c, SIGKILL);
        waitpid(c, NULL, 0);
        snprintf(x.why, sizeof x.why, "pidfd_open: %s (needs Linux 5.3)", strerror(errno));
    }
    if (*x.why) return write(resfd, &x, sizeof x) == (ssize_t)sizeof x ? 0 : 1;
    setpgid(c, c);
    command_pid = c;
    x.pid = c;
    for (;;) {
        struct pollfd p = {pfd, POLLIN, 0};
        if (poll(&p, 1, SAMPLE_MS) > 0) break;
        long kb = tree_rss_kb(getpid());
        if (kb > x.tree_kb) x.tree_kb = kb;
        if (!x.timed_out && since(&t0) > limit) {
            kill(-c, SIGKILL);
            x.timed_out = true;
        }
    }
    x.wall = since(&t0);
    close(pfd);
    while (waitpid(c, &x.status, 0) < 0 && errno == EINTR) {
    }
    /* What outlived it was reparented here: give it 10 s, then stop it. */
    double deadline = since(&t0) + 10;
    bool killed = false;
    for (;;) {
        pid_t w = waitpid(-1, NULL, WNOHANG);
        if (w > 0) continue;
        if (w < 0 && errno != EINTR) break; /* none left */
        if (since(&t0) > deadline) {
            if (killed) break;
            kill(-c, SIGKILL);
            killed = true;
            deadline += 1;
        }
        poll(NULL, 0, 10);
    }
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    x.maxrss_kb = ru.ru_maxrss;
    return write(resfd, &x, sizeof x) == (ssize_t)sizeof x ? 0 : 1;
}

static measure run_measured(char *const argv[], const char *const env[], const char *out, const char *err,
                            double limit) {
    measure r;
    memset(&r, 0, sizeof r);
    int fd[2];
    if (pipe(fd)) {
        snprintf(r.why, sizeof r.why, "pipe: %s", strerror(errno));
        return r;
    }
    char slimit[32], sfd[16];
    snprintf(slimit, sizeof slimit, "%g", limit);
    snprintf(sfd, sizeof sfd, "%d", fd[1]);
    const char *args[48];
    int n = 0;
    args[n++] = "diag";
    args[n++] = "--measure";
    args[n++] = slimit;
    args[n++] = out;
    args[n++] = err;
    args[n++] = sfd;
    for (int i = 0; env[i] && n < 40; i++) args[n++] = env[i];
    args[n++] = "--";
    for (int i = 0; argv[i] && n < 47; i++) args[n++] = argv[i];
    args[n] = NULL;
    fflush(NULL);
    pid_t m = fork();
    if (m < 0) {
        snprintf(r.why, sizeof r.why, "fork: %s", strerror(errno));
        close(fd[0]), close(fd[1]);
        return r;
    }
    if (m == 0) {
        close(fd[0]);
        execv("/proc/self/exe", (char *const *)args);
        _exit(127);
    }
    close(fd[1]);
    ssize_t k;
    while ((k = read(fd[0], &r, sizeof r)) < 0 && errno == EINTR) {
    }
    close(fd[0]);
    while (waitpid(m, NULL, 0) < 0 && errno == EINTR) {
    }
    if (k != (ssize_t)sizeof r) snprintf(r.why, sizeof r.why, "the measuring process died");
    return r;
}

/* ---- one run of a program under a tool, checked ---- */

typedef struct {
    bool ok;
    bool timed_out;
    double wall;
    double rss_kb;
    double peak_heap; /* bytes: strata's dump (peak_live) or heaptrack_print; NAN: not known */
    double allocs;    /* allocation calls, from the same */
    double unguarded; /* guard: blocks served without a guard page */
    char err[300];
} result;

static __attribute__((format(printf, 2, 3))) void fail(result *r, const char *fmt, ...) {
    if (!r->ok) return; /* the first reason */
    r->ok = false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    for (char *p = r->err; *p; p++)
        if (*p == '\n' || *p == '|') *p = ' ';
}

/* The whole of a (small) file, NUL-terminated; NULL if it cannot be read. Caller frees. */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t k; buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += k;
        if (n + 1 == cap) {
            char *more = realloc(buf, cap *= 2);
            if (!more) free(buf);
            buf = more;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

static void sort_line(char *buf, size_t cap, unsigned i) {
    snprintf(buf, cap, "%06u %08x line of the input\n", i, (unsigned)((i * 2654435761u) ^ 0x5bd1e995u));
}

/* A shuffled input for sort: line i is sort_line(i), in a random order (fixed seed). */
static bool write_sort_input(void) {
    static unsigned order[SORT_N];
    for (unsigned i = 0; i < SORT_N; i++) order[i] = i;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (unsigned i = SORT_N - 1; i > 0; i--) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        unsigned j = (unsigned)(s % (i + 1)), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    FILE *f = fopen(sort_in, "w");
    if (!f) return false;
    char line[64];
    for (unsigned i = 0; i < SORT_N; i++) {
        sort_line(line, sizeof line, order[i]);
        fputs(line, f);
    }
    return fclose(f) == 0;
}

static void check_sorted(result *r) {
    size_t n;
    char *text = slurp(sort_out, &n);
    if (!text) {
        fail(r, "sort wrote no output file");
        return;
    }
    const char *p = text;
    char line[64];
    for (unsigned i = 0; i < SORT_N; i++) {
        sort_line(line, sizeof line, i);
        size_t len = strlen(line);
        if (strncmp(p, line, len)) {
            fail(r, "sort's output is wrong at line %u", i + 1);
            break;
        }
        p += len;
    }
    if (r->ok && *p) fail(r, "sort's output has more than %d lines", SORT_N);
    free(text);
}

/* The file libstrata-diag.so wrote for process `pid` (format in src/diag/dump.h). */
static void check_dump(result *r, pid_t pid, const char *mode) {
    char path[512], want[64];
    snprintf(path, sizeof path, "%s/dump.%d", tmpdir, (int)pid);
    snprintf(want, sizeof want, "process %d %s exit\n", (int)pid, mode);
    char *text = slurp(path, NULL);
    if (!text) {
        fail(r, "libstrata-diag.so wrote no %s", path);
        return;
    }
    if (strncmp(text, "strata-diag 1\n", 14)) fail(r, "%s is not a strata-diag 1 dump", path);
    if (!strstr(text, want)) fail(r, "the dump does not say \"%.*s\"", (int)strlen(want) - 1, want);
    const char *e = strstr(text, "\nerror ");
    if (e) fail(r, "strata reported: %.*s", (int)strcspn(e + 1, "\n"), e + 1);
    size_t n = strlen(text);
    if (n < 5 || strcmp(text + n - 5, "\nend\n")) fail(r, "the dump was cut short (no \"end\")");
    const char *t;
    if ((t = strstr(text, "\ntotal peak_live "))) r->peak_heap = strtod(t + 17, NULL);
    if ((t = strstr(text, "\ntotal allocs "))) r->allocs = strtod(t + 14, NULL);
    if ((t = strstr(text, "\ntotal unguarded "))) r->unguarded = strtod(t + 17, NULL);
    free(text);
}

/* heaptrack's data file must be there, and heaptrack_print read it. */
static void check_heaptrack(result *r, const char *base) {
    char path[512];
    snprintf(path, sizeof path, "%s.zst", base);
    if (access(path, R_OK)) snprintf(path, sizeof path, "%s.gz", base);
    if (access(path, R_OK)) {
        fail(r, "heaptrack wrote no %s.zst or .gz", base);
        return;
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "heaptrack_print -f '%s' -p 0 -a 0 -T 0 -l 0 2>&1", path);
    FILE *f = popen(cmd, "r");
    double calls = NAN, peak = NAN;
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        const char *v;
        if ((v = strstr(line, "calls to allocation functions: "))) calls = strtod(v + 31, NULL);
        if ((v = strstr(line, "peak heap memory consumption: "))) {
            char *end;
            peak = strtod(v + 30, &end);
            const char *units = "BKMGT"; /* heaptrack_print counts in thousands */
            const char *u = *end ? strchr(units, *end) : NULL;
            if (u) peak *= pow(1000, (double)(u - units));
        }
    }
    if (f) pclose(f);
    unlink(path);
    if (isnan(calls) || isnan(peak) || calls < 1) fail(r, "heaptrack_print could not read %s", path);
    r->allocs = calls;
    r->peak_heap = peak;
}

static void clear_tmp(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    char path[600];
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "dump.", 5) || !strncmp(e->d_name, "ht.", 3)) {
            snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
            unlink(path);
        }
    closedir(d);
}

static result run_one(const program *p, int tool, double limit) {
    result r = {.ok = true, .peak_heap = NAN, .allocs = NAN, .unguarded = NAN};
    char *argv[24], preload[4200], options[600], htbase[300], out[300], err[300];
    const char *env[4] = {NULL};
    int ac = 0, ne = 0;
    snprintf(out, sizeof out, "%s/stdout", tmpdir);
    snprintf(err, sizeof err, "%s/stderr", tmpdir);
    snprintf(htbase, sizeof htbase, "%s/ht", tmpdir);
    if (tool == VALGRIND) {
        static char *vg[] = {"valgrind", "--leak-check=full", "--error-exitcode=0", "-q"};
        for (int i = 0; i < 4; i++) argv[ac++] = vg[i];
    } else if (tool == HEAPTRACK) {
        argv[ac++] = "heaptrack";
        argv[ac++] = "-o";
        argv[ac++] = htbase;
    } else if (tool == LEAKS || tool == GUARD) {
        snprintf(preload, sizeof preload, "LD_PRELOAD=%s", diag_lib);
        snprintf(options, sizeof options, "STRATA_OPTIONS=diag=%s,diag_file=%s/dump",
                 tool == LEAKS ? "leaks" : "guard", tmpdir);
        env[ne++] = preload;
        env[ne++] = options;
    }
    if (p->env) env[ne++] = p->env;
    for (int i = 0; p->argv[i]; i++) argv[ac++] = (char *)p->argv[i];
    argv[ac] = NULL;
    clear_tmp();
    if (p->sorted_output) unlink(sort_out);

    measure m = run_measured(argv, env, out, err, limit);
    r.wall = m.wall;
    r.rss_kb = (double)(m.tree_kb > m.maxrss_kb ? m.tree_kb : m.maxrss_kb);
    char *o = slurp(out, NULL), *e = slurp(err, NULL);
    /* what it said last: the error is at the end (a traceback, a message after the tool's noise) */
    const char *said = e ? e : "";
    size_t len = strlen(said);
    while (len && (said[len - 1] == '\n' || said[len - 1] == ' ')) len--;
    if (len > 200) {
        const char *nl = memchr(said + len - 200, '\n', 200);
        said = nl ? nl + 1 : said + len - 200;
        len = (size_t)(e + len - said);
    }
    if (*m.why) fail(&r, "%s", m.why);
    else if (m.timed_out) {
        r.timed_out = true;
        fail(&r, "stopped at the time limit (%.0f s)", limit);
    } else if (WIFSIGNALED(m.status))
        fail(&r, "killed by signal %d (%s): %.*s", WTERMSIG(m.status), strsignal(WTERMSIG(m.status)), (int)len,
             said);
    else if (WEXITSTATUS(m.status) != 0)
        fail(&r, "exit status %d: %.*s", WEXITSTATUS(m.status), (int)len, said);
    else if (p->expect && (!o || !strstr(o, p->expect)))
        fail(&r, "no \"%s\" in its output: %.*s", p->expect, (int)len, said);
    if (r.ok && p->sorted_output) check_sorted(&r);
    if (r.ok && (tool == LEAKS || tool == GUARD)) check_dump(&r, m.pid, tool == LEAKS ? "leaks" : "guard");
    if (r.ok && tool == HEAPTRACK) check_heaptrack(&r, htbase);
    free(o);
    free(e);
    clear_tmp();
    return r;
}

/* ---- results ---- */

enum { MAXRUNS = 32 };
typedef struct {
    int n, failed, timed_out;
    char err[300];
    double wall[MAXRUNS], rss[MAXRUNS], heap[MAXRUNS], allocs[MAXRUNS], unguarded[MAXRUNS];
} cell;

static cell cells[NPROG][NTOOL];
static FILE *csv; /* every run, for a look at the spread behind the medians */

static void cell_add(cell *c, const result *r) {
    if (!r->ok) {
        c->failed++;
        c->timed_out += r->timed_out;
        snprintf(c->err, sizeof c->err, "%s", r->err);
        return;
    }
    if (c->n == MAXRUNS) return;
    c->wall[c->n] = r->wall;
    c->rss[c->n] = r->rss_kb;
    c->heap[c->n] = r->peak_heap;
    c->allocs[c->n] = r->allocs;
    c->unguarded[c->n] = r->unguarded;
    c->n++;
}

/* Median of a column; NAN when any run failed (a failure is never a number) or none is known. */
static double med(const cell *c, const double *v) {
    double tmp[MAXRUNS];
    int k = 0;
    for (int i = 0; i < c->n; i++)
        if (!isnan(v[i])) tmp[k++] = v[i];
    return c->failed ? NAN : bench_median(tmp, k);
}

/* ---- output ---- */

/* A buffer for one formatted figure: a ring of them, so that one say() can take several. */
static char *figure_buf(void) {
    static char buf[16][32];
    static int k;
    return buf[k++ % 16];
}

static const char *ratio(double r) {
    char *b = figure_buf();
    snprintf(b, 32, r >= 10 ? "%.0f×" : "%.1f×", r);
    return b;
}

static const char *mib(double kb) {
    char *b = figure_buf();
    double m = kb / 1024;
    snprintf(b, 32, m >= 100 ? "%.0f" : m >= 10 ? "%.1f" : "%.2f", m);
    return b;
}

/* n in units of `unit` squared, of `unit`, or as it is (a dash for no figure). */
static const char *scaled(double n, double unit, const char *big, const char *mid, const char *one) {
    char *b = figure_buf();
    if (isnan(n)) snprintf(b, 32, "–");
    else if (n >= unit * unit) snprintf(b, 32, big, n / (unit * unit));
    else if (n >= unit) snprintf(b, 32, mid, n / unit);
    else snprintf(b, 32, one, n);
    return b;
}
static const char *count(double n) { return scaled(n, 1e3, "%.1f M", "%.0f k", "%.0f"); }
static const char *bytes(double n) { return scaled(n, 1024, "%.1f MiB", "%.1f KiB", "%.0f B"); }

/* A cell of the time or the memory table. */
static void show(const cell *c, int tool, double v, double plain, bool time, double limit) {
    if (!tool_ok[tool]) say(" not installed |");
    else if (!c->n && !c->failed) say(" not run |");
    else if (c->failed && c->timed_out == c->failed && !c->n) say(" > %.0f s (stopped) |", limit);
    else if (c->failed || isnan(v)) say(" FAIL |");
    else if (time) say(tool == PLAIN ? " %.2f |" : " %.2f (%s) |", v, ratio(v / plain));
    else if (tool == PLAIN) say(" %s |", mib(v));
    else say(" %s (%s) |", mib(v), ratio(v / plain));
}

/* The program's peak heap: heaptrack counts every allocation; strata's dump samples. */
static double peak_heap(int p) {
    double h = med(&cells[p][HEAPTRACK], cells[p][HEAPTRACK].heap);
    return isnan(h) ? med(&cells[p][LEAKS], cells[p][LEAKS].heap) : h;
}

static void first_line(const char *cmd, char *out, size_t cap) {
    FILE *f = popen(cmd, "r");
    out[0] = '\0';
    if (f) {
        if (!fgets(out, (int)cap, f)) out[0] = '\0';
        pclose(f);
    }
    out[strcspn(out, "\n")] = '\0';
}

static long max_map_count(void) {
    long n = -1;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &n) != 1) n = -1;
        fclose(f);
    }
    return n;
}

/* The 1-minute load average: other work on the machine shows in every column. */
static double load_average(void) {
    double l = NAN;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = NAN;
        fclose(f);
    }
    return l;
}

static bool in_path(const char *name) {
    const char *path = getenv("PATH");
    char buf[4096];
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, name);
        if (!access(buf, X_OK)) return true;
        p += n + (p[n] == ':');
    }
    return false;
}

static void report(int runs, int guard_runs, double limit, double guard_limit, const char *machine,
                   const char *versions, double load0, double load1) {
    say("Machine: %s; load average %.1f at the start, %.1f at the end. %s. %d runs of each (strata "
        "guard: %d), interleaved; medians.\n",
        machine, load0, load1, versions, runs, guard_runs);
    say("\n### Time (seconds of wall clock for the whole command; in parentheses × plain)\n\n"
        "| program | allocation calls |");
    for (int t = 0; t < NTOOL; t++) say(" %s |", tool_name[t]);
    say("\n|---|---:|");
    for (int t = 0; t < NTOOL; t++) say("---:|");
    say("\n");
    for (int p = 0; p < NPROG; p++) {
        if (!progs[p].selected) continue;
        double a = med(&cells[p][LEAKS], cells[p][LEAKS].allocs);
        if (isnan(a)) a = med(&cells[p][HEAPTRACK], cells[p][HEAPTRACK].allocs);
        say("| %s | %s |", progs[p].name, count(a));
        double plain = med(&cells[p][PLAIN], cells[p][PLAIN].wall);
        for (int t = 0; t < NTOOL; t++)
            show(&cells[p][t], t, med(&cells[p][t], cells[p][t].wall), plain, true,
                 t == GUARD ? guard_limit : limit);
        say("\n");
    }
    say("\n### Peak RSS (MiB, the whole process tree; in parentheses × plain)\n\n| program | peak heap |");
    for (int t = 0; t < NTOOL; t++) say(" %s |", tool_name[t]);
    say("\n|---|---:|");
    for (int t = 0; t < NTOOL; t++) say("---:|");
    say("\n");
    for (int p = 0; p < NPROG; p++) {
        if (!progs[p].selected) continue;
        say("| %s | %s |", progs[p].name, bytes(peak_heap(p)));
        double plain = med(&cells[p][PLAIN], cells[p][PLAIN].rss);
        for (int t = 0; t < NTOOL; t++)
            show(&cells[p][t], t, med(&cells[p][t], cells[p][t].rss), plain, false,
                 t == GUARD ? guard_limit : limit);
        say("\n");
    }
    say("\n### strata leaks against its targets: time ≤ 3× the program alone, memory ≤ 2× its peak heap\n\n"
        "| program | time × plain | extra RSS (leaks − plain) | peak heap (heaptrack / strata's dump) "
        "| extra / peak heap | time | memory |\n|---|---:|---:|---:|---:|---|---|\n");
    for (int p = 0; p < NPROG; p++) {
        if (!progs[p].selected) continue;
        const cell *pl = &cells[p][PLAIN], *lk = &cells[p][LEAKS];
        double tr = med(lk, lk->wall) / med(pl, pl->wall);
        double extra = (med(lk, lk->rss) - med(pl, pl->rss)) * 1024, heap = peak_heap(p);
        double hh = med(&cells[p][HEAPTRACK], cells[p][HEAPTRACK].heap), hs = med(lk, lk->heap);
        if (isnan(tr)) {
            say("| %s | FAIL | | | | | |\n", progs[p].name);
            continue;
        }
        say("| %s | %s | %s%s | %s / %s | %s | %s | %s |\n", progs[p].name, ratio(tr), extra < 0 ? "−" : "",
            bytes(fabs(extra)), bytes(hh), bytes(hs), isnan(heap) ? "–" : ratio(extra / heap),
            tr <= 3 ? "met" : "missed", isnan(heap) ? "–" : extra <= 2 * heap ? "met" : "missed");
    }
    say("\n");
    for (int p = 0; p < NPROG; p++)
        if (progs[p].selected) say("- %s\n", progs[p].about);
    say("- strata leaks, strata guard: `LD_PRELOAD=lib/libstrata-diag.so STRATA_OPTIONS=diag=leaks` (or "
        "`guard`)`,diag_file=...`, what `strata leaks` / `strata guard` run, without their symbolizing "
        "at the end; the leak scan at exit is in the time. valgrind: `valgrind --leak-check=full "
        "--error-exitcode=0 -q`. heaptrack: `heaptrack -o FILE`, its interpreter and compressor "
        "included (not `heaptrack_print`).\n");
    say("- Peak RSS: the larger of the largest single process's peak (getrusage RUSAGE_CHILDREN of a "
        "subreaper that ran the command) and the largest sum of the tree's resident sets in samples "
        "every %d ms. Peak heap: heaptrack's \"peak heap memory consumption\" (every allocation "
        "counted; requested bytes, whether touched or not); strata's `total peak_live` is the "
        "peak of the live bytes it tracked (what the program allocated through it).\n",
        SAMPLE_MS);
    for (int p = 0; p < NPROG; p++) {
        const cell *g = &cells[p][GUARD];
        double u = med(g, g->unguarded), a = med(&cells[p][LEAKS], cells[p][LEAKS].allocs);
        if (progs[p].selected && u > 0)
            say("- strata guard, %s: %.0f of %.0f allocations (%.0f%%) were served without a guard "
                "page: a limit of the guard was reached, 262144 guarded blocks at once (each holds a "
                "page) or, without guard markers, vm.max_map_count (%ld) (the dump's `total unguarded`)\n",
                progs[p].name, u, a, 100 * u / a, max_map_count());
    }
    for (int t = 0; t < NTOOL; t++)
        if (!tool_ok[t]) say("- %s: not installed, its column is empty\n", tool_name[t]);
    for (int p = 0; p < NPROG; p++)
        for (int t = 0; t < NTOOL; t++)
            if (progs[p].selected && cells[p][t].failed)
                say("- FAIL %s under %s (%d of %d runs): %s\n", progs[p].name, tool_name[t],
                    cells[p][t].failed, cells[p][t].failed + cells[p][t].n, cells[p][t].err);
}

/* ---- main ---- */

static void usage(void) {
    fprintf(stderr, "usage: diag [--diag-lib LIB] [--bin DIR] [--out DIR] [--runs N] [--guard-runs N] "
                    "[--limit S] [--guard-limit S] [--only A,B] [--publish DOC]\n");
    exit(2);
}

static bool resolve(const char *path, char *out, size_t cap) {
    char real[4096];
    if (!realpath(path, real) || access(real, R_OK)) return false;
    snprintf(out, cap, "%s", real);
    return true;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--measure")) return measure_main(argc, argv);
    int runs = 3, guard_runs = 1;
    double limit = 120, guard_limit = 60;
    const char *only = NULL, *doc = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--diag-lib") && more) diag_lib = argv[++i];
        else if (!strcmp(a, "--bin") && more) bindir = argv[++i];
        else if (!strcmp(a, "--out") && more) outdir = argv[++i];
        else if (!strcmp(a, "--runs") && more) runs = atoi(argv[++i]);
        else if (!strcmp(a, "--guard-runs") && more) guard_runs = atoi(argv[++i]);
        else if (!strcmp(a, "--limit") && more) limit = atof(argv[++i]);
        else if (!strcmp(a, "--guard-limit") && more) guard_limit = atof(argv[++i]);
        else if (!strcmp(a, "--only") && more) only = argv[++i];
        else if (!strcmp(a, "--publish") && more) doc = argv[++i];
        else usage();
    }
    if (runs < 1 || runs > MAXRUNS || guard_runs < 0 || guard_runs > runs || limit <= 0 || guard_limit <= 0)
        usage();
    static char lib[4096];
    if (!resolve(diag_lib, lib, sizeof lib)) {
        fprintf(stderr, "diag: %s not found: run make first\n", diag_lib);
        return 2;
    }
    diag_lib = lib;
    char path[4200];
    snprintf(path, sizeof path, "%s/cfrac", bindir);
    bool have_cfrac = resolve(path, cfrac_exe, sizeof cfrac_exe);
    snprintf(path, sizeof path, "%s/espresso", bindir);
    bool have_espresso = resolve(path, espresso_exe, sizeof espresso_exe);
    snprintf(path, sizeof path, "%s/mixed", bindir);
    bool have_mixed = resolve(path, mixed_exe, sizeof mixed_exe);
    /* the interpreter itself: version managers put a shell script first in PATH */
    first_line("python3 -c 'import sys; print(sys.executable)' 2>/dev/null", python_exe, sizeof python_exe);
    for (int p = 0; p < NPROG; p++) {
        program *pr = &progs[p];
        if (only) {
            char list[256], key[64];
            snprintf(list, sizeof list, ",%s,", only);
            snprintf(key, sizeof key, ",%s,", pr->name);
            pr->selected = strstr(list, key) != NULL;
        }
        bool missing = (!strcmp(pr->name, "python") && !*python_exe) ||
                       (!strcmp(pr->name, "cfrac") && !have_cfrac) ||
                       (!strcmp(pr->name, "espresso") && !have_espresso) ||
                       (!strcmp(pr->name, "mixed") && !have_mixed) ||
                       (pr->argv[0] && pr->argv[0][0] != '/' && !in_path(pr->argv[0]));
        if (pr->selected && missing) {
            printf("diag: %s is missing: its row is skipped\n", pr->name);
            pr->selected = false;
        }
    }
    tool_ok[PLAIN] = tool_ok[LEAKS] = tool_ok[GUARD] = true;
    tool_ok[VALGRIND] = in_path("valgrind");
    tool_ok[HEAPTRACK] = in_path("heaptrack") && in_path("heaptrack_print");
    for (int t = VALGRIND; t < NTOOL; t++)
        if (!tool_ok[t]) printf("diag: %s is not installed: its column is skipped\n", tool_name[t]);

    snprintf(tmpdir, sizeof tmpdir, "/tmp/strata-bench-diag.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "diag: cannot make a directory in /tmp: %s\n", strerror(errno));
        return 2;
    }
    snprintf(sort_in, sizeof sort_in, "%s/sort.in", tmpdir);
    snprintf(sort_out, sizeof sort_out, "%s/sort.out", tmpdir);
    if (!write_sort_input()) {
        fprintf(stderr, "diag: cannot write %s\n", sort_in);
        return 2;
    }

    char machine[512], versions[512], v[5][96];
    bench_machine(machine, sizeof machine);
    first_line("valgrind --version 2>/dev/null", v[0], sizeof v[0]);
    first_line("heaptrack --version 2>/dev/null", v[1], sizeof v[1]);
    first_line("perl -e 'print \"perl $^V\"' 2>/dev/null", v[2], sizeof v[2]);
    snprintf(path, sizeof path, "'%s' --version 2>&1", python_exe);
    first_line(*python_exe ? path : "true", v[3], sizeof v[3]);
    first_line("sort --version 2>/dev/null", v[4], sizeof v[4]);
    snprintf(versions, sizeof versions, "%s, %s, %s, %s, %s", v[0], v[1], v[2], v[3], v[4]);
    printf("Machine: %s\n%s\n", machine, versions);
    fflush(stdout);

    mkdir(outdir, 0755);
    snprintf(path, sizeof path, "%s/diag.csv", outdir);
    csv = fopen(path, "w");
    if (csv) fprintf(csv, "program,tool,run,result,wall_s,peak_rss_kb,peak_heap_bytes,allocation_calls,why\n");
    double load0 = load_average();
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < runs; r++) {
        for (int p = 0; p < NPROG; p++)
            for (int t = 0; t < NTOOL; t++) {
                if (!progs[p].selected || !tool_ok[t] || (t == GUARD && r >= guard_runs)) continue;
                progress("\r  run %d/%d  %-9s %-18s   ", r + 1, runs, progs[p].name, tool_name[t]);
                result res = run_one(&progs[p], t, t == GUARD ? guard_limit : limit);
                cell_add(&cells[p][t], &res);
                if (csv)
                    fprintf(csv, "%s,%s,%d,%s,%.4f,%.0f,%.0f,%.0f,\"%s\"\n", progs[p].name, tool_name[t],
                            r + 1, res.ok ? "ok" : "FAIL", res.wall, res.rss_kb, res.peak_heap, res.allocs,
                            res.err);
            }
        progress("\r%60s\r", "");
        printf("run %d of %d done (%.0f s)\n", r + 1, runs, since(&t0));
        fflush(stdout);
    }
    unlink(sort_in);
    unlink(sort_out);
    snprintf(path, sizeof path, "%s/stdout", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/stderr", tmpdir);
    unlink(path);
    rmdir(tmpdir);

    if (csv) fclose(csv);
    snprintf(path, sizeof path, "%s/diag.md", outdir);
    md = fopen(path, "w");
    if (!md) fprintf(stderr, "diag: cannot write %s: %s\n", path, strerror(errno));
    printf("\n");
    report(runs, guard_runs, limit, guard_limit, machine, versions, load0, load_average());
    if (md) {
        fclose(md);
        md = NULL;
        if (doc) bench_publish(doc, "diag", path);
    }
    /* a run stopped at the time limit is a result (shown as such); any other failure is not */
    int failed = 0;
    for (int p = 0; p < NPROG; p++)
        for (int t = 0; t < NTOOL; t++)
            if (progs[p].selected) failed += cells[p][t].failed - cells[p][t].timed_out;
    return failed ? 1 : 0;
}
