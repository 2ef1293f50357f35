/*
 * driver — runs the benchmark workloads under strata and its peers and reports medians.
 *
 *   driver [options]
 *     --bin DIR        where the workload programs are (build/bench)
 *     --strata LIB     strata's library (lib/libstrata.so)
 *     --out DIR        results (bench/results)
 *     --runs N         runs of each workload under each allocator (5; --quick: 3)
 *     --quick          reduced workloads, for a look in under two minutes
 *     --threads N      threads for the multi-thread workloads (2)
 *     --only A,B       only these allocators (strata, glibc, jemalloc, tcmalloc, mimalloc, and
 *                      the names given with --peer)
 *     --peer NAME=LIB  one more allocator to compare with: LIB preloaded, a column called NAME in
 *                      every mode (repeatable; make bench PEERS="NAME=LIB ...")
 *     --strata-as NAME=OPTIONS  one more column: strata's library with STRATA_OPTIONS=OPTIONS
 *                      (repeatable; make bench STRATA_AS="sampled=guard_sample=1000 ...")
 *     --scaling MAX    thread-scaling mode: multi-thread workloads at 1, 2, 4 ... MAX threads
 *     --instr          instructions per operation (callgrind) of the single-thread workloads
 *     --hugepages      strata with huge_pages=off, thp and hugetlb on a large random-access heap
 *     --harden LIB     what hardening costs: strata against LIB (the same build with its checks
 *                      compiled out) and against secure=1 (lib/libstrata-secure.so if present)
 *     --publish DOC    put the result tables into DOC (BENCHMARKS.md) between its markers
 *
 * Allocators are preloaded (glibc: nothing preloaded); every report ends with the library behind
 * each column. Runs are interleaved — every workload under every allocator, then all again — so a
 * slow minute on a shared machine hurts all columns alike. Time is what the workload reports for
 * its work; peak RSS comes from wait4. Each workload checks its own results; a failed check or
 * crash is shown as FAIL, never as a number.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "report.h"

/* ---- allocators and workloads ---- */

typedef struct {
    const char *name;
    const char *lib;     /* preloaded library (strata's is set in main); NULL: the system allocator */
    const char *package; /* Debian package that provides it; NULL: built here or given by --peer */
    bool available;
    const char *options; /* STRATA_OPTIONS for this column (strata variants only) */
    const char *color;   /* in the charts */
    const char *given;   /* the library as named on the command line, for the reports */
} allocator;

/* strata first (every ratio is strata/peer), then glibc, Debian's peers, the --peer ones in the
 * order given, and last, for --instr only, bump. Columns are indices into this table. */
enum { STRATA = 0, GLIBC = 1, NBUILTIN = 5, MAX_ALLOC = 12 };
static allocator allocs[MAX_ALLOC] = {
    {"strata", NULL, NULL, true, NULL, "#333", NULL},
    {"glibc", NULL, NULL, true, NULL, "#4e79a7", NULL},
    {"jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "libjemalloc2", false, NULL,
     "#f28e2b", NULL},
    {"tcmalloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4", false,
     NULL, "#59a14f", NULL},
    {"mimalloc", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", "libmimalloc2.0", false, NULL,
     "#e15759", NULL},
};
static int nalloc = NBUILTIN, npeers; /* entries in allocs; how many came from --peer */
static int bump = -1;                 /* its index once --instr has added it */
/* Colours of the --peer columns, in order (the Tableau 10 palette after the ones above). */
static const char *const peer_colors[MAX_ALLOC - NBUILTIN - 1] = {"#76b7b2", "#edc948", "#b07aa1",
                                                                  "#ff9da7", "#9c755f", "#bab0ac"};

typedef struct {
    const char *row;    /* name in the tables */
    const char *prog;   /* program in --bin */
    const char *mode;
    double quick;       /* --scale for --quick */
    double instr;       /* --scale for --instr; 0: not a single-thread workload */
    int threads;        /* ANY: takes --threads, and in scaling mode; else runs this many whatever
                         * --threads says (more than 1: the count is what it measures) */
    const char *mirrors;
} workload;
enum { ANY = 0 };

static const workload works[] = {
    {"cfrac", "cfrac", "", 0.1, 0.01, 1, "cfrac (mimalloc-bench)"},
    {"espresso", "espresso", "", 0.1, 0.01, 1, "espresso (mimalloc-bench)"},
    {"simple-1", "simple", "1", 0.1, 0.005, 1, "glibc bench-malloc-simple, 1 live"},
    {"simple-100", "simple", "100", 0.1, 0.005, 1, "glibc bench-malloc-simple, 100 live"},
    {"simple-10000", "simple", "10000", 0.1, 0.005, 1, "glibc bench-malloc-simple, 10000 live"},
    {"mthread", "mthread", "", 0.15, 0, ANY, "glibc bench-malloc-thread"},
    {"larson", "larson", "", 0.1, 0, ANY, "larson (Larson & Krishnan)"},
    {"xmalloc", "xmalloc", "", 0.1, 0, ANY, "xmalloc-test"},
    {"cache-thrash", "cache", "thrash", 0.1, 0, ANY, "Hoard cache-thrash"},
    {"cache-scratch", "cache", "scratch", 0.1, 0, ANY, "Hoard cache-scratch"},
    {"mstress", "mstress", "", 0.1, 0, ANY, "mstress / rptest"},
    {"malloc-large", "large", "", 0.1, 0, 1, "malloc-large (mimalloc-bench)"},
    {"realloc", "realloc", "", 0.1, 0.005, 1, "vector and string growth"},
    {"frag-drain", "frag", "drain", 0.125, 0, 1, "memory return after a burst"},
    {"frag-scatter", "frag", "scatter", 0.125, 0, 1, "memory return, scattered survivors"},
    {"churn", "churn", "", 0.1, 0, 1, "long-running churn"},
    {"exchange-32", "exchange", "", 0.2, 0, 32, "mimalloc test-stress, 32 threads"},
    {"exchange-64", "exchange", "", 0.2, 0, 64, "mimalloc test-stress, 64 threads"},
};
enum { NWORK = sizeof works / sizeof works[0] };

/* ---- one run ---- */

enum { MAXX = 8 };
typedef struct {
    bool ok;
    double time;
    long rss_kb;
    uint64_t ops;
    uint64_t instructions;
    int nx;
    char xname[MAXX][24];
    double x[MAXX];
    char err[240];
} result;

static const char *bindir = "build/bench", *strata_lib = "lib/libstrata.so", *outdir = "bench/results";
static char bump_lib[4096], bump_shown[4096]; /* its real path, and as the reports name it */
static int threads = 2;

/* The threads a workload runs with in the table modes. */
static int threads_of(const workload *w) { return w->threads == ANY ? threads : w->threads; }

static void drain(int fd, char *buf, size_t cap) {
    size_t len = 0;
    for (;;) {
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size_t take = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;
        memcpy(buf + len, tmp, take);
        len += take;
    }
    buf[len] = '\0';
}

static void parse_result(result *r, const char *out) {
    const char *line = strstr(out, "result ");
    if (!line || !strstr(line, "check=ok")) {
        r->ok = false;
        return;
    }
    r->ok = true;
    for (const char *p = line + 7; *p && *p != '\n';) {
        while (*p == ' ') p++;
        const char *eq = strchr(p, '=');
        const char *end = p + strcspn(p, " \n");
        if (!eq || eq > end) break;
        size_t nl = (size_t)(eq - p);
        double v = strtod(eq + 1, NULL);
        if (nl == 4 && !strncmp(p, "time", 4)) r->time = v;
        else if (nl == 3 && !strncmp(p, "ops", 3)) r->ops = strtoull(eq + 1, NULL, 10);
        else if (!(nl == 5 && !strncmp(p, "check", 5)) && !(nl == 11 && !strncmp(p, "peak_rss_kb", 11)) &&
                 r->nx < MAXX && nl < 24) { /* peak RSS comes from wait4, for every workload alike */
            memcpy(r->xname[r->nx], p, nl);
            r->xname[r->nx][nl] = '\0';
            r->x[r->nx++] = v;
        }
        p = end;
    }
}

static result run_one(const workload *w, const allocator *a, int nthreads, double scale, bool instr) {
    result r;
    memset(&r, 0, sizeof r);
    char prog[4096], sscale[32], sthreads[16];
    snprintf(prog, sizeof prog, "%s/%s", bindir, w->prog);
    snprintf(sscale, sizeof sscale, "%g", scale);
    snprintf(sthreads, sizeof sthreads, "%d", nthreads);
    const char *argv[16];
    int ac = 0;
    if (instr) {
        argv[ac++] = "valgrind";
        argv[ac++] = "--tool=callgrind";
        argv[ac++] = "--callgrind-out-file=/dev/null";
    }
    argv[ac++] = prog;
    argv[ac++] = "--scale";
    argv[ac++] = sscale;
    argv[ac++] = "--threads";
    argv[ac++] = sthreads;
    if (*w->mode) argv[ac++] = w->mode;
    argv[ac] = NULL;
    const char *lib = a->lib;
    int ofd[2], efd[2];
    if (pipe(ofd) || pipe(efd)) {
        snprintf(r.err, sizeof r.err, "pipe: %s", strerror(errno));
        return r;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ofd[1], 1);
        dup2(efd[1], 2);
        close(ofd[0]), close(efd[0]), close(ofd[1]), close(efd[1]);
        if (a->options) setenv("STRATA_OPTIONS", a->options, 1);
        else unsetenv("STRATA_OPTIONS");
        if (lib) setenv("LD_PRELOAD", lib, 1);
        else unsetenv("LD_PRELOAD");
        alarm(instr ? 1200 : 300);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(ofd[1]);
    close(efd[1]);
    static char out[65536], err[65536];
    drain(ofd[0], out, sizeof out);
    drain(efd[0], err, sizeof err);
    close(ofd[0]);
    close(efd[0]);
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
    }
    parse_result(&r, out);
    r.rss_kb = ru.ru_maxrss;
    if (instr) {
        const char *c = strstr(err, "Collected : ");
        r.instructions = c ? strtoull(c + 12, NULL, 10) : 0;
        if (!r.instructions) r.ok = false;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) r.ok = false;
    /* ld.so only warns when it cannot preload (a wrong path or architecture) and the program then
     * runs on glibc: that must not be reported as the peer's time */
    if (lib && strstr(err, "cannot be preloaded")) {
        r.ok = false;
        snprintf(r.err, sizeof r.err, "%s was not preloaded: %.180s", lib, err);
        for (char *p = r.err; *p; p++)
            if (*p == '\n') *p = ' ';
        return r;
    }
    if (!r.ok) {
        const char *why = strstr(err, "check failed") ? strstr(err, "check failed") : err;
        if (WIFSIGNALED(st))
            snprintf(r.err, sizeof r.err, "killed by signal %d%s", WTERMSIG(st),
                     WTERMSIG(st) == SIGALRM ? " (time limit)" : "");
        else snprintf(r.err, sizeof r.err, "exit %d: %.200s", WEXITSTATUS(st), why);
        for (char *p = r.err; *p; p++)
            if (*p == '\n') *p = ' ';
    }
    return r;
}

/* ---- statistics ---- */

typedef struct {
    int n;                  /* successful runs */
    int failed;
    char err[240];
    double time[32], rss[32], ops[32], instr[32];
    double x[MAXX][32];
    int nx;
    char xname[MAXX][24];
} cell;

static void cell_add(cell *c, const result *r) {
    if (!r->ok) {
        c->failed++;
        snprintf(c->err, sizeof c->err, "%s", r->err);
        return;
    }
    if (c->n >= 32) return;
    c->time[c->n] = r->time;
    c->rss[c->n] = (double)r->rss_kb;
    c->ops[c->n] = (double)r->ops;
    c->instr[c->n] = (double)r->instructions;
    c->nx = r->nx;
    for (int i = 0; i < r->nx; i++) {
        memcpy(c->xname[i], r->xname[i], sizeof c->xname[i]);
        c->x[i][c->n] = r->x[i];
    }
    c->n++;
}

static double cell_med(const cell *c, const double *v) {
    double tmp[32];
    memcpy(tmp, v, sizeof tmp);
    return c->failed ? NAN : bench_median(tmp, c->n);
}

static double cell_x(const cell *c, const char *name) {
    for (int i = 0; i < c->nx; i++)
        if (!strcmp(c->xname[i], name)) return cell_med(c, c->x[i]);
    return NAN;
}

/* ---- machine ---- */

static char machine[512];

static void describe_machine(void) { bench_machine(machine, sizeof machine); }

/* ---- output ---- */

static FILE *open_out(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    FILE *f = fopen(path, "w");
    if (!f) fprintf(stderr, "driver: cannot write %s: %s\n", path, strerror(errno));
    return f;
}


static cell cells[NWORK][MAX_ALLOC];
static int active[MAX_ALLOC], nactive; /* the columns: indices into allocs, strata first */

/* The table of one metric: value per allocator and, for peers, strata/peer. */
static void table(const char *title, const char *unit, double (*get)(const cell *), double div) {
    say("\n%s\n\n| workload |", title);
    for (int i = 0; i < nactive; i++) say(" %s |", allocs[active[i]].name);
    say("\n|---|");
    for (int i = 0; i < nactive; i++) say("---:|");
    say("\n");
    double logsum[MAX_ALLOC] = {0};
    int logn[MAX_ALLOC] = {0};
    for (int w = 0; w < NWORK; w++) {
        say("| %s |", works[w].row);
        double s = get(&cells[w][STRATA]);
        for (int i = 0; i < nactive; i++) {
            const cell *c = &cells[w][active[i]];
            double v = get(c);
            if (c->failed || isnan(v)) {
                say(" FAIL |");
                continue;
            }
            if (active[i] == STRATA || isnan(s)) {
                say(" %.3f |", v / div);
            } else {
                say(" %.3f (%.2f) |", v / div, s / v);
                logsum[active[i]] += log(s / v);
                logn[active[i]]++;
            }
        }
        say("\n");
    }
    say("| geometric mean of strata/peer |");
    for (int i = 0; i < nactive; i++) {
        if (active[i] == STRATA) say(" |");
        else if (logn[active[i]]) say(" (%.2f) |", exp(logsum[active[i]] / logn[active[i]]));
        else say(" – |");
    }
    say("\n\n%s; in parentheses strata/peer: below 1 means strata is better.\n", unit);
}

static double get_time(const cell *c) { return cell_med(c, c->time); }
static double get_rss(const cell *c) { return cell_med(c, c->rss); }

/* A chart's legend: a swatch and a label per allocator in `which`, `step` pixels apart from x, in
 * as many rows 16 pixels apart (from y) as it takes to stay within `width`. legend_rows says how
 * many, so that the chart below can start lower. */
static int legend_rows(int x, int width, int step, int n) {
    int per = (width - x) / step > 0 ? (width - x) / step : 1;
    return n ? (n + per - 1) / per : 1;
}
static void legend(FILE *f, int x, int y, int width, int step, const int *which, int n,
                   const char *prefix) {
    int per = (width - x) / step > 0 ? (width - x) / step : 1;
    for (int i = 0; i < n; i++) {
        int lx = x + i % per * step, ly = y + i / per * 16;
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" "
                   "y=\"%d\">%s%s</text>\n",
                lx, ly, allocs[which[i]].color, lx + 14, ly + 9, prefix, allocs[which[i]].name);
    }
}

/* A bar chart of strata/peer ratios, one panel per metric. */
static void chart(const char *name, const char *title) {
    FILE *f = open_out(name);
    if (!f) return;
    int peers[MAX_ALLOC], np = 0;
    for (int i = 0; i < nactive; i++)
        if (active[i] != STRATA) peers[np++] = active[i];
    int groupw = np * 9 + 10, left = 60, panelh = 260;
    int width = left + NWORK * groupw + 20;
    int top = 70 + 16 * (legend_rows(left, width, 120, np) - 1);
    int height = top + 2 * (panelh + 110) + 20;
    double ymax = 3.0;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n", width, height);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"16\" font-weight=\"bold\">%s</text>\n", left, title);
    fprintf(f, "<text x=\"%d\" y=\"40\" fill=\"#555\">%s</text>\n", left, machine);
    legend(f, left, 50, width, 120, peers, np, "strata/");
    for (int panel = 0; panel < 2; panel++) {
        int y0 = top + panel * (panelh + 110) + 20;
        double (*get)(const cell *) = panel ? get_rss : get_time;
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s: strata / peer (below 1: "
                   "strata better)</text>\n",
                left, y0 - 6, panel ? "peak RSS" : "time");
        for (double t = 0; t <= ymax + 1e-9; t += 0.5) {
            int y = y0 + panelh - (int)(t / ymax * panelh);
            fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"%s\"/>\n", left,
                    width - 20, y, y, t == 1.0 ? "#000" : "#ddd");
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.1f</text>\n", left - 4, y + 4, t);
        }
        for (int w = 0; w < NWORK; w++) {
            int gx = left + w * groupw + 5;
            double s = get(&cells[w][STRATA]);
            for (int i = 0; i < np; i++) {
                double v = get(&cells[w][peers[i]]), ratio = s / v;
                if (isnan(ratio) || isinf(ratio)) continue;
                double shown = ratio > ymax ? ymax : ratio;
                int h = (int)(shown / ymax * panelh);
                fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"8\" height=\"%d\" fill=\"%s\">"
                           "<title>%s: strata/%s = %.2f</title></rect>\n",
                        gx + i * 9, y0 + panelh - h, h, allocs[peers[i]].color, works[w].row,
                        allocs[peers[i]].name, ratio);
                if (ratio > ymax) /* cut off: say how far it goes */
                    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"9\" text-anchor=\"middle\" "
                               "fill=\"%s\">%.1f</text>\n",
                            gx + i * 9 + 4, y0 - 2 - i * 9, allocs[peers[i]].color, ratio);
            }
            fprintf(f, "<text transform=\"translate(%d,%d) rotate(45)\">%s</text>\n",
                    gx + 2, y0 + panelh + 12, works[w].row);
        }
    }
    fprintf(f, "</svg>\n");
    fclose(f);
}

static void write_csv(const char *name, int runs) {
    FILE *f = open_out(name);
    if (!f) return;
    fprintf(f, "workload,allocator,runs,failed,time_s,peak_rss_kb,ops,time_ratio_strata,"
               "rss_ratio_strata,extras\n");
    for (int w = 0; w < NWORK; w++)
        for (int i = 0; i < nactive; i++) {
            const cell *c = &cells[w][active[i]];
            double t = get_time(c), r = get_rss(c), st = get_time(&cells[w][STRATA]),
                   sr = get_rss(&cells[w][STRATA]);
            fprintf(f, "%s,%s,%d,%d,%.6f,%.0f,%.0f,%.4f,%.4f,", works[w].row, allocs[active[i]].name,
                    runs, c->failed, t, r, cell_med(c, c->ops), st / t, sr / r);
            for (int x = 0; x < c->nx; x++)
                fprintf(f, "%s%s=%g", x ? ";" : "", c->xname[x], cell_med(c, c->x[x]));
            fprintf(f, "\n");
        }
    fclose(f);
}

/* ---- modes ---- */

/* The library behind each column, at the end of every report: which build of which version was
 * measured, so that a table can be read without knowing how it was made. */
static void say_libraries(const int *which, int n) {
    say("\nLibraries:\n");
    for (int i = 0; i < n; i++) {
        const allocator *a = &allocs[which[i]];
        if (which[i] == GLIBC) {
            say("- glibc: the system allocator, glibc %s (nothing preloaded)\n",
                gnu_get_libc_version());
        } else if (a->package) {
            char cmd[256], version[64] = "";
            snprintf(cmd, sizeof cmd, "dpkg-query -W -f '${Version}' %s 2>/dev/null", a->package);
            FILE *p = popen(cmd, "r");
            if (p) {
                if (!fgets(version, sizeof version, p)) version[0] = '\0';
                pclose(p);
            }
            say("- %s: %s (Debian package %s%s%s)\n", a->name, a->lib, a->package, *version ? " " : "",
                version);
        } else {
            say("- %s: %s%s\n", a->name, a->given ? a->given : a->lib,
                which[i] == STRATA ? "" : which[i] == bump ? " (never frees: the floor)" : " (--peer)");
        }
    }
}

static void report_failures(void) {
    for (int w = 0; w < NWORK; w++)
        for (int i = 0; i < nactive; i++) {
            const cell *c = &cells[w][active[i]];
            if (c->failed)
                say("- FAIL %s under %s (%d of the runs): %s\n", works[w].row,
                    allocs[active[i]].name, c->failed, c->err);
        }
}

/* ---- start-up cost: a short program run many times, spawned directly ---- */

/* Microseconds per run of argv, n times, under allocator a. */
static double spawn_loop(const allocator *a, char *const argv[], int n) {
    char pre[4200] = "LD_PRELOAD=";
    const char *lib = a->lib;
    if (lib) strncat(pre, lib, sizeof pre - 12);
    char opts[1024];
    snprintf(opts, sizeof opts, "STRATA_OPTIONS=%s", a->options ? a->options : "");
    char *envp[] = {pre, "PATH=/usr/bin:/bin", "LC_ALL=C", opts, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        pid_t pid;
        if (posix_spawn(&pid, argv[0], &fa, NULL, argv, lib ? envp : envp + 1) != 0) return NAN;
        int st;
        waitpid(pid, &st, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    posix_spawn_file_actions_destroy(&fa);
    return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / n;
}

/* `true` allocates nothing, `ls -l` a little: what does merely having the allocator cost? */
static void startup_table(int total) {
    static char *progs[][4] = {{"/bin/true", NULL}, {"/bin/ls", "-l", "/usr/bin", NULL}};
    const char *names[] = {"true", "ls -l /usr/bin"};
    enum { ROUND = 50 };
    say("\n### Start-up (microseconds per run of a short program, %d runs, lower is better)\n\n"
        "| program |", total);
    for (int i = 0; i < nactive; i++) say(" %s |", allocs[active[i]].name);
    say("\n|---|");
    for (int i = 0; i < nactive; i++) say("---:|");
    say("\n");
    for (int pr = 0; pr < 2; pr++) {
        double sum[MAX_ALLOC] = {0};
        for (int r = 0; r < total / ROUND; r++) /* interleaved rounds */
            for (int i = 0; i < nactive; i++) {
                progress("\r  start-up  %-16s %-9s   ", names[pr], allocs[active[i]].name);
                sum[i] += spawn_loop(&allocs[active[i]], progs[pr], ROUND) * ROUND;
            }
        say("| %s |", names[pr]);
        double glibc = NAN;
        for (int i = 0; i < nactive; i++)
            if (active[i] == GLIBC) glibc = sum[i];
        for (int i = 0; i < nactive; i++) {
            double us = sum[i] / (total / ROUND * ROUND);
            if (active[i] == GLIBC || isnan(glibc)) say(" %.0f |", us);
            else say(" %.0f (%.2f of glibc) |", us, sum[i] / glibc);
        }
        say("\n");
    }
    progress("\r%60s\r", "");
    say("\nglibc is the system allocator with nothing preloaded; every other column pays for loading "
        "one more shared library.\n");
}

/* "; exchange-32 with 32, exchange-64 with 64": the workloads whose thread count is their own. */
static const char *fixed_note(void) {
    static char note[256];
    size_t len = 0;
    for (int w = 0; w < NWORK && len < sizeof note; w++)
        if (works[w].threads > 1)
            len += (size_t)snprintf(note + len, sizeof note - len, "%s%s with %d", len ? ", " : "; ",
                                    works[w].row, works[w].threads);
    return note;
}

static int run_table(int runs, bool quick) {
    for (int r = 0; r < runs; r++)
        for (int w = 0; w < NWORK; w++)
            for (int i = 0; i < nactive; i++) {
                progress("\r  run %d/%d  %-14s %-9s   ", r + 1, runs, works[w].row,
                         allocs[active[i]].name);
                result res = run_one(&works[w], &allocs[active[i]], threads_of(&works[w]),
                                     quick ? works[w].quick : 1.0, false);
                cell_add(&cells[w][active[i]], &res);
            }
    progress("\r%60s\r", "");
    md = open_out(quick ? "quick.md" : "latest.md");
    say("Machine: %s. %d runs each, interleaved; medians. %s; %d threads for the multi-thread "
        "workloads%s.\n",
        machine, runs, quick ? "QUICK (reduced) workloads" : "Full workloads", threads,
        fixed_note());
    table("### Time (seconds, lower is better)", "Seconds of work as each workload reports it",
          get_time, 1.0);
    table("### Peak RSS (MiB, lower is better)", "Peak resident set size from wait4", get_rss,
          1024.0);
    say("\n### Memory return (resident memory over live bytes, lower is better)\n\n"
        "| workload | measure |");
    for (int i = 0; i < nactive; i++) say(" %s |", allocs[active[i]].name);
    say("\n|---|---|");
    for (int i = 0; i < nactive; i++) say("---:|");
    say("\n");
    static const struct {
        const char *row, *x, *label;
    } mem[] = {
        {"frag-drain", "after_ratio", "RSS/live 1 s after freeing 9 of 10 phases"},
        {"frag-drain", "final_ratio", "RSS/live after a new size mix"},
        {"frag-scatter", "after_ratio", "RSS/live 1 s after freeing 90% at random"},
        {"frag-scatter", "final_ratio", "RSS/live after a new size mix"},
        {"churn", "creep", "RSS at the end / RSS at 10%"},
    };
    for (size_t m = 0; m < sizeof mem / sizeof mem[0]; m++) {
        int w = 0;
        while (w < NWORK && strcmp(works[w].row, mem[m].row)) w++;
        say("| %s | %s |", mem[m].row, mem[m].label);
        for (int i = 0; i < nactive; i++) {
            double v = cell_x(&cells[w][active[i]], mem[m].x);
            if (isnan(v)) say(" FAIL |");
            else say(" %.2f |", v);
        }
        say("\n");
    }
    startup_table(quick ? 200 : 1000);
    say_libraries(active, nactive);
    say("\n");
    report_failures();
    fclose(md);
    md = NULL;
    write_csv(quick ? "quick.csv" : "latest.csv", runs);
    chart(quick ? "quick.svg" : "latest.svg", "strata against its peers (make bench)");
    int failed = 0;
    for (int w = 0; w < NWORK; w++)
        for (int i = 0; i < nactive; i++) failed += cells[w][active[i]].failed;
    return failed ? 1 : 0;
}

static int run_instr(void) {
    /* the bump allocator sets the floor (main kept a place for it after the peers) */
    bump = nalloc++;
    allocs[bump] = (allocator){"bump", bump_lib, NULL, true, NULL, "#999", bump_shown};
    active[nactive++] = bump;
    for (int w = 0; w < NWORK; w++) {
        if (works[w].instr == 0) continue;
        for (int i = 0; i < nactive; i++) {
            /* never freeing, bump cannot grow strings byte by byte: gigabytes of copies */
            if (active[i] == bump && !strcmp(works[w].prog, "realloc")) continue;
            progress("\r  callgrind  %-14s %-9s   ", works[w].row, allocs[active[i]].name);
            result res = run_one(&works[w], &allocs[active[i]], 1, works[w].instr, true);
            cell_add(&cells[w][active[i]], &res);
        }
    }
    progress("\r%60s\r", "");
    md = open_out("instr.md");
    FILE *csv = open_out("instr.csv");
    if (csv) fprintf(csv, "workload,allocator,instructions,ops,instructions_per_op\n");
    say("Machine: %s. Instructions per allocation call (callgrind: the whole program's "
        "instructions over its malloc, calloc and realloc calls), lower is better; in "
        "parentheses strata/peer. `bump` never frees: the floor.\n\n| workload |",
        machine);
    for (int i = 0; i < nactive; i++) say(" %s |", allocs[active[i]].name);
    say("\n|---|");
    for (int i = 0; i < nactive; i++) say("---:|");
    say("\n");
    for (int w = 0; w < NWORK; w++) {
        if (works[w].instr == 0) continue;
        say("| %s |", works[w].row);
        const cell *sc = &cells[w][STRATA];
        double s = sc->n ? sc->instr[0] / sc->ops[0] : NAN;
        for (int i = 0; i < nactive; i++) {
            const cell *c = &cells[w][active[i]];
            if (!c->n) {
                say(c->failed ? " FAIL |" : " – |");
                continue;
            }
            double per = c->instr[0] / c->ops[0];
            if (active[i] == STRATA || active[i] == bump) say(" %.1f |", per);
            else say(" %.1f (%.2f) |", per, s / per);
            if (csv)
                fprintf(csv, "%s,%s,%.0f,%.0f,%.2f\n", works[w].row, allocs[active[i]].name,
                        c->instr[0], c->ops[0], per);
        }
        say("\n");
    }
    say_libraries(active, nactive);
    say("\n");
    report_failures();
    if (csv) fclose(csv);
    fclose(md);
    md = NULL;
    return 0;
}

/* Throughput of a cell in millions of allocation calls per second; NAN if a run failed. */
static double cell_mops(const cell *c) {
    return c->failed ? NAN : cell_med(c, c->ops) / cell_med(c, c->time) / 1e6;
}

/* Threaded workloads at 1, 2, 4 ... max threads: a table per workload with each allocator's
 * throughput, strata/peer at every count and a row of speed-ups from 1 thread (to 2, and to max),
 * how each allocator scales being the point. Workloads with a fixed thread count are left out. */
static int run_scaling(int max, int runs, bool quick) {
    int counts[16], nc = 0;
    for (int t = 1; t <= max && nc < 15; t *= 2) counts[nc++] = t;
    if (counts[nc - 1] != max) counts[nc++] = max;
    static cell sc[NWORK][16][MAX_ALLOC];
    for (int r = 0; r < runs; r++)
        for (int w = 0; w < NWORK; w++) {
            if (works[w].threads != ANY) continue;
            for (int k = 0; k < nc; k++)
                for (int i = 0; i < nactive; i++) {
                    progress("\r  run %d/%d  %-14s %2d threads %-9s   ", r + 1, runs, works[w].row,
                             counts[k], allocs[active[i]].name);
                    result res = run_one(&works[w], &allocs[active[i]], counts[k],
                                         quick ? works[w].quick : 1.0, false);
                    cell_add(&sc[w][k][active[i]], &res);
                }
        }
    progress("\r%70s\r", "");
    md = open_out(quick ? "quick-scaling.md" : "scaling.md");
    FILE *csv = open_out(quick ? "quick-scaling.csv" : "scaling.csv");
    if (csv)
        fprintf(csv, "workload,allocator,threads,time_s,mops_per_s,peak_rss_kb,time_ratio_strata,"
                     "speedup_from_1\n");
    say("Machine: %s. Throughput in millions of allocation calls per second (median of %d%s), "
        "higher is better.\n",
        machine, runs, quick ? ", QUICK (reduced) workloads" : "");
    for (int w = 0; w < NWORK; w++) {
        if (works[w].threads != ANY) continue;
        say("\n#### %s\n\n| threads |", works[w].row);
        for (int i = 0; i < nactive; i++) say(" %s |", allocs[active[i]].name);
        say("\n|---|");
        for (int i = 0; i < nactive; i++) say("---:|");
        say("\n");
        for (int k = 0; k < nc; k++) {
            say("| %d |", counts[k]);
            double s = cell_mops(&sc[w][k][STRATA]);
            for (int i = 0; i < nactive; i++) {
                const cell *c = &sc[w][k][active[i]];
                double v = cell_mops(c), up = v / cell_mops(&sc[w][0][active[i]]);
                if (isnan(v)) say(" FAIL |");
                else if (active[i] == STRATA || isnan(s)) say(" %.2f |", v);
                else say(" %.2f (%.2f) |", v, v / s);
                if (csv && !isnan(v))
                    fprintf(csv, "%s,%s,%d,%.6f,%.3f,%.0f,%.4f,%.4f\n", works[w].row,
                            allocs[active[i]].name, counts[k], cell_med(c, c->time), v,
                            cell_med(c, c->rss), v / s, up);
            }
            say("\n");
        }
        /* speed-ups from 1 thread: to 2 (a 2-core machine's question), and to max */
        for (int k = 1; k < nc; k++) {
            if (counts[k] != 2 && k != nc - 1) continue;
            say("| 1 → %d: speed-up |", counts[k]);
            for (int i = 0; i < nactive; i++) {
                double up = cell_mops(&sc[w][k][active[i]]) / cell_mops(&sc[w][0][active[i]]);
                if (isnan(up)) say(" – |");
                else say(" ×%.2f |", up);
            }
            say("\n");
        }
    }
    say("\nIn parentheses strata/peer: strata's time over the peer's for the same work (the peer's "
        "Mops/s over strata's), below 1 means strata is better. The speed-up rows divide each "
        "allocator's throughput at that many threads by its own at 1 thread.");
    int nfixed = 0;
    for (int w = 0; w < NWORK; w++)
        if (works[w].threads > 1)
            say("%s%s (%d threads)", nfixed++ ? ", " : " Not here: ", works[w].row,
                works[w].threads);
    if (nfixed)
        say(": their thread count is not a variable but what they measure (many more threads than "
            "cores); they are in the main table.");
    say("\n");
    say_libraries(active, nactive);
    for (int w = 0, first = 1; w < NWORK; w++)
        for (int k = 0; k < nc; k++)
            for (int i = 0; i < nactive; i++) {
                const cell *c = &sc[w][k][active[i]];
                if (!c->failed) continue;
                if (first) say("\n"), first = 0;
                say("- FAIL %s at %d threads under %s (%d of the runs): %s\n", works[w].row,
                    counts[k], allocs[active[i]].name, c->failed, c->err);
            }
    if (csv) fclose(csv);
    fclose(md);
    md = NULL;
    /* line charts: one panel per workload */
    FILE *f = open_out(quick ? "quick-scaling.svg" : "scaling.svg");
    if (!f) return 0;
    int pw = 300, ph = 200, cols = 3, nthr = 0;
    for (int w = 0; w < NWORK; w++) nthr += works[w].threads == ANY;
    int rows = (nthr + cols - 1) / cols, width = cols * (pw + 70) + 40;
    int top = 80 + 16 * (legend_rows(20, width, 100, nactive) - 1);
    int height = top + rows * (ph + 70);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" "
               "fill=\"white\"/>\n",
            width, height);
    fprintf(f, "<text x=\"20\" y=\"22\" font-size=\"16\" font-weight=\"bold\">Thread scaling: "
               "Mops/s against threads</text>\n<text x=\"20\" y=\"40\" fill=\"#555\">%s</text>\n",
            machine);
    legend(f, 20, 50, width, 100, active, nactive, "");
    int panel = 0;
    for (int w = 0; w < NWORK; w++) {
        if (works[w].threads != ANY) continue;
        int x0 = 60 + (panel % cols) * (pw + 70), y0 = top + (panel / cols) * (ph + 70);
        panel++;
        double ymax = 0;
        for (int k = 0; k < nc; k++)
            for (int i = 0; i < nactive; i++) {
                double v = cell_mops(&sc[w][k][active[i]]);
                if (!isnan(v) && v > ymax) ymax = v;
            }
        if (ymax <= 0) ymax = 1;
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>\n", x0, y0 + 10,
                works[w].row);
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#ccc\"/>\n",
                x0, y0 + 20, pw, ph);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.1f</text>\n", x0 - 4, y0 + 28, ymax);
        for (int k = 0; k < nc; k++)
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d</text>\n",
                    x0 + (nc > 1 ? k * pw / (nc - 1) : 0), y0 + ph + 34, counts[k]);
        for (int i = 0; i < nactive; i++) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                    allocs[active[i]].color);
            for (int k = 0; k < nc; k++) {
                double v = cell_mops(&sc[w][k][active[i]]);
                if (isnan(v)) continue;
                fprintf(f, "%d,%d ", x0 + (nc > 1 ? k * pw / (nc - 1) : 0),
                        y0 + 20 + ph - (int)(v / ymax * ph));
            }
            fprintf(f, "\"/>\n");
        }
    }
    fprintf(f, "</svg>\n");
    fclose(f);
    return 0;
}

/* ---- huge pages: strata with and without them on a large random-access heap ---- */

/* Is column i one of the --peer allocators? */
static bool is_peer(int i) { return i >= NBUILTIN && i != bump; }

static int run_hugepages(int runs) {
    static const workload ra = {"randaccess", "randaccess", "", 0.1, 0, 1, ""};
    /* strata three ways, glibc, and the --peer allocators (Debian's are in make bench already) */
    static allocator variants[4 + MAX_ALLOC] = {
        {.name = "strata", .available = true, .options = "huge_pages=off"},
        {.name = "strata huge_pages=thp", .available = true, .options = "huge_pages=thp"},
        {.name = "strata huge_pages=hugetlb", .available = true, .options = "huge_pages=hugetlb"},
        {.name = "glibc", .available = true},
    };
    int nv = 4, shown[MAX_ALLOC] = {STRATA, GLIBC}, nshown = 2;
    for (int v = 0; v < 3; v++) variants[v].lib = strata_lib;
    for (int i = 0; i < nactive; i++)
        if (is_peer(active[i])) variants[nv++] = allocs[shown[nshown++] = active[i]];
    static cell c[4 + MAX_ALLOC];
    char thp[128] = "unknown";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
        if (!fgets(thp, sizeof thp, f)) thp[0] = '\0';
        thp[strcspn(thp, "\n")] = '\0';
        fclose(f);
    }
    long reserved = 0;
    f = fopen("/proc/sys/vm/nr_hugepages", "r");
    if (f) {
        if (fscanf(f, "%ld", &reserved) != 1) reserved = 0;
        fclose(f);
    }
    for (int r = 0; r < runs; r++)
        for (int v = 0; v < nv; v++) {
            progress("\r  run %d/%d  randaccess %-26s", r + 1, runs, variants[v].name);
            result res = run_one(&ra, &variants[v], 1, 1.0, false);
            cell_add(&c[v], &res);
        }
    progress("\r%70s\r", "");
    md = open_out("hugepages.md");
    say("Machine: %s. `randaccess`: 256 MiB of 64-byte nodes in one random cycle, followed for "
        "16 million steps (%d runs, medians). Transparent huge pages: `%s`; reserved hugetlb pages "
        "(vm.nr_hugepages): %ld%s.\n\n| allocator | time s | peak RSS MiB |\n|---|---:|---:|\n",
        machine, runs, thp, reserved,
        reserved ? "" : " — so `hugetlb` falls back to transparent huge pages");
    for (int v = 0; v < nv; v++) {
        double t = cell_med(&c[v], c[v].time), m = cell_med(&c[v], c[v].rss) / 1024;
        if (c[v].failed || isnan(t)) say("| %s | FAIL | |\n", variants[v].name);
        else say("| %s | %.3f (%.2f) | %.1f |\n", variants[v].name, t,
                 t / cell_med(&c[0], c[0].time), m);
    }
    say("\nIn parentheses: time relative to strata without huge pages.\n");
    say_libraries(shown, nshown);
    fclose(md);
    md = NULL;
    return 0;
}

/* ---- hardening: the default build against itself without its checks, and secure mode ---- */

enum { HARDEN_SCALE = 4 }; /* × the --quick scale: long enough to be read to a few percent */

/* The default build against itself without its checks and against secure mode; each --peer
 * allocator (a hardened one, say) beside them, with strata/peer and secure/peer. */
static int run_harden(const char *unchecked, int runs) {
    static char secure_lib[4096];
    static allocator variants[3 + MAX_ALLOC] = {
        {.name = "strata", .available = true},
        {.name = "strata unchecked", .available = true},
        {.name = "strata secure", .available = true, .options = "secure=1"},
    };
    int nv = 3, shown[MAX_ALLOC] = {STRATA}, nshown = 1;
    for (int i = 0; i < nactive; i++)
        if (is_peer(active[i])) variants[nv++] = allocs[shown[nshown++] = active[i]];
    static char unchecked_real[4096];
    if (!realpath(unchecked, unchecked_real)) {
        fprintf(stderr, "driver: %s not found\n", unchecked);
        return 2;
    }
    variants[0].lib = variants[2].lib = strata_lib;
    variants[1].lib = unchecked_real;
    /* lib/libstrata-secure.so beside lib/libstrata.so, if built: secure by default */
    snprintf(secure_lib, sizeof secure_lib, "%s", strata_lib);
    char *name = strstr(secure_lib, "libstrata.so");
    if (name) {
        snprintf(name, sizeof secure_lib - (size_t)(name - secure_lib), "libstrata-secure.so");
        if (access(secure_lib, R_OK) == 0) variants[2].lib = secure_lib, variants[2].options = NULL;
    }
    static cell c[NWORK][3 + MAX_ALLOC];
    for (int r = 0; r < runs; r++)
        for (int w = 0; w < NWORK; w++)
            for (int v = 0; v < nv; v++) {
                progress("\r  run %d/%d  %-14s %-18s", r + 1, runs, works[w].row, variants[v].name);
                result res = run_one(&works[w], &variants[v], threads_of(&works[w]),
                                     works[w].quick * HARDEN_SCALE, false);
                cell_add(&c[w][v], &res);
            }
    progress("\r%70s\r", "");
    md = open_out("harden.md");
    say("Machine: %s. Every workload at %d× its --quick scale, %d runs interleaved, medians of the time "
        "each reports (threaded ones with %d threads%s). *unchecked*: the default build with its checks "
        "compiled out (`-DSTRATA_HARDEN=0`: free-list links checked when popped and the last freed one at "
        "free, the double-free key, the block-start test on free, the pad's canary past blocks above 1 KiB, "
        "the sized-free check); *secure*: %s.\n\n"
        "| workload | strata s | unchecked s | strata / unchecked | secure s | secure / strata |",
        machine, HARDEN_SCALE, runs, threads, fixed_note(),
        variants[2].options ? "`STRATA_OPTIONS=secure=1`" : "`lib/libstrata-secure.so`");
    for (int v = 3; v < nv; v++)
        say(" %s s | strata / %s | secure / %s |", variants[v].name, variants[v].name, variants[v].name);
    say("\n|---|---:|---:|---:|---:|---:|");
    for (int v = 3; v < nv; v++) say("---:|---:|---:|");
    say("\n");
    /* geometric means: strata/unchecked, secure/strata, then strata/peer and secure/peer */
    double lsum[2 + 2 * MAX_ALLOC] = {0};
    int lnum[2 + 2 * MAX_ALLOC] = {0};
    for (int w = 0; w < NWORK; w++) {
        double t[3 + MAX_ALLOC];
        char s[3 + MAX_ALLOC][32];
        for (int v = 0; v < nv; v++) {
            t[v] = cell_med(&c[w][v], c[w][v].time);
            if (isnan(t[v])) snprintf(s[v], sizeof s[v], "FAIL");
            else snprintf(s[v], sizeof s[v], "%.3f", t[v]);
        }
        double ratio[2 + 2 * MAX_ALLOC] = {t[0] / t[1], t[2] / t[0]};
        for (int v = 3; v < nv; v++) {
            ratio[2 * (v - 2)] = t[0] / t[v];
            ratio[2 * (v - 2) + 1] = t[2] / t[v];
        }
        for (int k = 0; k < 2 * (nv - 2); k++)
            if (!isnan(ratio[k]) && ratio[k] > 0) lsum[k] += log(ratio[k]), lnum[k]++;
        say("| %s | %s | %s | %.3f | %s | %.3f |", works[w].row, s[0], s[1], ratio[0], s[2], ratio[1]);
        for (int v = 3; v < nv; v++)
            say(" %s | %.3f | %.3f |", s[v], ratio[2 * (v - 2)], ratio[2 * (v - 2) + 1]);
        say("\n");
    }
    double gm[2 + 2 * MAX_ALLOC];
    for (int k = 0; k < 2 * (nv - 2); k++) gm[k] = lnum[k] ? exp(lsum[k] / lnum[k]) : NAN;
    say("| **geometric mean** | | | **%.3f** | | **%.3f** |", gm[0], gm[1]);
    for (int v = 3; v < nv; v++) say(" | **%.3f** | **%.3f** |", gm[2 * (v - 2)], gm[2 * (v - 2) + 1]);
    say("\n");
    if (nv > 3) say_libraries(shown, nshown);
    for (int w = 0; w < NWORK; w++)
        for (int v = 0; v < nv; v++)
            if (c[w][v].failed) say("\n- %s under %s failed: %s", works[w].row, variants[v].name, c[w][v].err);
    say("\n");
    fclose(md);
    md = NULL;
    return 0;
}

/* Put the markdown file `name` from --out into `doc` (BENCHMARKS.md) between its KEY markers. */
static void publish(const char *doc, const char *key, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    bench_publish(doc, key, path);
}

/* ---- main ---- */

static void usage(void) {
    fprintf(stderr, "usage: driver [--bin DIR] [--strata LIB] [--out DIR] [--runs N] [--quick] "
                    "[--threads N] [--only A,B] [--peer NAME=LIB ...] [--strata-as NAME=OPTIONS ...] "
                    "[--scaling MAX | --instr | --hugepages | --harden LIB] [--publish DOC]\n");
    exit(2);
}

/* --peer NAME=LIB: a column after Debian's peers. NAME goes into tables, CSV fields and --only
 * lists, so it is a short word of letters, digits and ._+- (no spaces, commas or |), and no other
 * column's; LIB must exist now rather than fail every run later. */
/* A column of strata run with STRATA_OPTIONS=options; its library is set once strata's is known. */
static bool add_peer_as(const char *spec, bool strata_options);
static bool add_peer(const char *spec) { return add_peer_as(spec, false); }

static bool add_peer_as(const char *spec, bool strata_options) {
    const char *eq = strchr(spec, '=');
    size_t len = eq ? (size_t)(eq - spec) : 0;
    if (!eq || !len || len > 23 || strspn(spec, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                "0123456789._+-") < len) {
        fprintf(stderr, "driver: --peer %s: expected NAME=LIB, NAME of at most 23 letters, digits "
                        "and ._+-\n", spec);
        return false;
    }
    char name[24];
    memcpy(name, spec, len);
    name[len] = '\0';
    for (int i = 0; i < nalloc; i++)
        if (!strcmp(allocs[i].name, name) || !strcmp(name, "bump")) {
            fprintf(stderr, "driver: --peer %s: there is a column called %s already\n", spec, name);
            return false;
        }
    if (nalloc >= MAX_ALLOC - 1) { /* the last place is bump's, for --instr */
        fprintf(stderr, "driver: --peer %s: at most %d peers with --peer\n", spec,
                MAX_ALLOC - NBUILTIN - 1);
        return false;
    }
    if (strata_options) {
        char *given = malloc(strlen(eq + 1) + 64);
        if (!given) return false;
        sprintf(given, "strata's library with STRATA_OPTIONS=%s", eq + 1);
        allocs[nalloc++] = (allocator){strdup(name), NULL, NULL, true, strdup(eq + 1), peer_colors[npeers++],
                                       given};
        return true;
    }
    char real[4096];
    if (!realpath(eq + 1, real) || access(real, R_OK)) {
        fprintf(stderr, "driver: --peer %s: cannot read %s\n", spec, eq + 1);
        return false;
    }
    allocs[nalloc++] = (allocator){strdup(name), strdup(real), NULL, true, NULL, peer_colors[npeers++],
                                   eq + 1};
    return true;
}

/* Every name in --only is a column's (a typo would silently drop one). */
static bool only_known(const char *only) {
    for (const char *p = only; *p;) {
        size_t len = strcspn(p, ",");
        bool found = false;
        for (int i = 0; i < nalloc && !found; i++)
            found = strlen(allocs[i].name) == len && !strncmp(allocs[i].name, p, len);
        if (!found && len) {
            fprintf(stderr, "driver: --only: no allocator called %.*s\n", (int)len, p);
            return false;
        }
        p += len + (p[len] == ',');
    }
    return true;
}

int main(int argc, char **argv) {
    int runs = 0, scaling = 0;
    bool quick = false, instr = false, hugepages = false;
    const char *only = NULL, *doc = NULL, *unchecked = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--bin") && more) bindir = argv[++i];
        else if (!strcmp(a, "--strata") && more) strata_lib = argv[++i];
        else if (!strcmp(a, "--out") && more) outdir = argv[++i];
        else if (!strcmp(a, "--runs") && more) runs = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && more) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--only") && more) only = argv[++i];
        else if (!strcmp(a, "--scaling") && more) scaling = atoi(argv[++i]);
        else if (!strcmp(a, "--publish") && more) doc = argv[++i];
        else if (!strcmp(a, "--quick")) quick = true;
        else if (!strcmp(a, "--instr")) instr = true;
        else if (!strcmp(a, "--hugepages")) hugepages = true;
        else if (!strcmp(a, "--harden") && more) unchecked = argv[++i];
        else if (!strcmp(a, "--peer") && more) {
            if (!add_peer(argv[++i])) return 2;
        } else if (!strcmp(a, "--strata-as") && more) {
            if (!add_peer_as(argv[++i], true)) return 2;
        } else usage();
    }
    if (runs <= 0) runs = quick ? 3 : scaling ? 3 : 5;
    if (runs > 32 || threads < 1 || scaling < 0) usage();
    if (only && !only_known(only)) return 2;
    char real[4096];
    if (!realpath(strata_lib, real) || access(real, R_OK)) {
        fprintf(stderr, "driver: %s not found: run make first\n", strata_lib);
        return 2;
    }
    allocs[STRATA].given = strata_lib;
    allocs[STRATA].lib = strata_lib = strdup(real);
    for (int i = NBUILTIN; i < nalloc; i++) /* --strata-as columns */
        if (!allocs[i].lib && allocs[i].options) allocs[i].lib = strata_lib;
    snprintf(bump_lib, sizeof bump_lib, "%s/libbump.so", bindir);
    snprintf(bump_shown, sizeof bump_shown, "%s", bump_lib);
    if (realpath(bump_lib, real)) snprintf(bump_lib, sizeof bump_lib, "%s", real);
    mkdir(outdir, 0755);
    describe_machine();
    printf("Machine: %s\n", machine);
    for (int i = 0; i < nalloc; i++) {
        allocator *al = &allocs[i];
        if (al->package) al->available = access(al->lib, R_OK) == 0;
        if (only) {
            char list[256];
            snprintf(list, sizeof list, ",%s,", only);
            char key[64];
            snprintf(key, sizeof key, ",%s,", al->name);
            if (!strstr(list, key)) continue;
        }
        if (!al->available) {
            printf("%s: %s is missing (Debian package %s): its column is skipped\n", al->name,
                   al->lib, al->package);
            continue;
        }
        active[nactive++] = i;
    }
    if (!nactive || active[0] != STRATA) {
        fprintf(stderr, "driver: strata must be among the allocators\n");
        return 2;
    }
    fflush(stdout);
    int rc;
    if (instr) rc = run_instr();
    else if (hugepages) rc = run_hugepages(runs);
    else if (unchecked) rc = run_harden(unchecked, runs);
    else if (scaling) rc = run_scaling(scaling, runs, quick);
    else rc = run_table(runs, quick);
    if (doc && !quick) {
        if (instr) publish(doc, "instr", "instr.md");
        else if (hugepages) publish(doc, "hugepages", "hugepages.md");
        else if (unchecked) publish(doc, "harden", "harden.md");
        else if (scaling) publish(doc, "scaling", "scaling.md");
        else publish(doc, "latest", "latest.md");
    }
    return rc;
}
