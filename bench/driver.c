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
 *     --only A,B       only these allocators (strata, glibc, jemalloc, tcmalloc, mimalloc)
 *     --scaling MAX    thread-scaling mode: multi-thread workloads at 1, 2, 4 ... MAX threads
 *     --instr          instructions per operation (callgrind) of the single-thread workloads
 *     --hugepages      strata with huge_pages=off, thp and hugetlb on a large random-access heap
 *     --harden LIB     what hardening costs: strata against LIB (the same build with its checks
 *                      compiled out) and against secure=1 (lib/libstrata-secure.so if present)
 *     --publish DOC    put the result tables into DOC (BENCHMARKS.md) between its markers
 *
 * Allocators are preloaded (glibc: nothing preloaded). Runs are interleaved — every workload
 * under every allocator, then all again — so a slow minute on a shared machine hurts all columns
 * alike. Time is what the workload reports for its work; peak RSS comes from wait4. Each workload
 * checks its own results; a failed check or crash is shown as FAIL, never as a number.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
    const char *lib;     /* preloaded library; NULL: the system allocator */
    const char *package; /* Debian package that provides it */
    bool available;
    const char *options; /* STRATA_OPTIONS for this column (strata variants only) */
} allocator;

static allocator allocs[] = {
    {"strata", NULL, NULL, true, NULL},
    {"glibc", NULL, NULL, true, NULL},
    {"jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "libjemalloc2", false, NULL},
    {"tcmalloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4", false,
     NULL},
    {"mimalloc", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", "libmimalloc2.0", false, NULL},
    {"bump", NULL, NULL, false, NULL}, /* the floor, for --instr only */
};
enum { NALLOC_PEERS = 5, BUMP = 5, NALLOC = 6 };

typedef struct {
    const char *row;    /* name in the tables */
    const char *prog;   /* program in --bin */
    const char *mode;
    double quick;       /* --scale for --quick */
    double instr;       /* --scale for --instr; 0: not a single-thread workload */
    bool threaded;      /* takes --threads; in scaling mode */
    const char *mirrors;
} workload;

static const workload works[] = {
    {"cfrac", "cfrac", "", 0.1, 0.01, false, "cfrac (mimalloc-bench)"},
    {"espresso", "espresso", "", 0.1, 0.01, false, "espresso (mimalloc-bench)"},
    {"simple-1", "simple", "1", 0.1, 0.005, false, "glibc bench-malloc-simple, 1 live"},
    {"simple-100", "simple", "100", 0.1, 0.005, false, "glibc bench-malloc-simple, 100 live"},
    {"simple-10000", "simple", "10000", 0.1, 0.005, false, "glibc bench-malloc-simple, 10000 live"},
    {"mthread", "mthread", "", 0.15, 0, true, "glibc bench-malloc-thread"},
    {"larson", "larson", "", 0.1, 0, true, "larson (Larson & Krishnan)"},
    {"xmalloc", "xmalloc", "", 0.1, 0, true, "xmalloc-test"},
    {"cache-thrash", "cache", "thrash", 0.1, 0, true, "Hoard cache-thrash"},
    {"cache-scratch", "cache", "scratch", 0.1, 0, true, "Hoard cache-scratch"},
    {"mstress", "mstress", "", 0.1, 0, true, "mstress / rptest"},
    {"malloc-large", "large", "", 0.1, 0, false, "malloc-large (mimalloc-bench)"},
    {"realloc", "realloc", "", 0.1, 0.005, false, "vector and string growth"},
    {"frag-drain", "frag", "drain", 0.125, 0, false, "memory return after a burst"},
    {"frag-scatter", "frag", "scatter", 0.125, 0, false, "memory return, scattered survivors"},
    {"churn", "churn", "", 0.1, 0, false, "long-running churn"},
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
static char bump_lib[4096];
static int threads = 2;

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
    const char *lib = a->lib                       ? a->lib
                      : !strncmp(a->name, "strata", 6) ? strata_lib
                      : a == &allocs[BUMP]             ? bump_lib
                                                       : NULL;

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


static cell cells[NWORK][NALLOC];
static int active[NALLOC], nactive;

/* The table of one metric: value per allocator and, for peers, strata/peer. */
static void table(const char *title, const char *unit, double (*get)(const cell *), double div) {
    say("\n%s\n\n| workload |", title);
    for (int i = 0; i < nactive; i++) say(" %s |", allocs[active[i]].name);
    say("\n|---|");
    for (int i = 0; i < nactive; i++) say("---:|");
    say("\n");
    double logsum[NALLOC] = {0};
    int logn[NALLOC] = {0};
    for (int w = 0; w < NWORK; w++) {
        say("| %s |", works[w].row);
        double s = get(&cells[w][0]);
        for (int i = 0; i < nactive; i++) {
            const cell *c = &cells[w][active[i]];
            double v = get(c);
            if (c->failed || isnan(v)) {
                say(" FAIL |");
                continue;
            }
            if (active[i] == 0 || isnan(s)) {
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
        if (active[i] == 0) say(" |");
        else if (logn[active[i]]) say(" (%.2f) |", exp(logsum[active[i]] / logn[active[i]]));
        else say(" – |");
    }
    say("\n\n%s; in parentheses strata/peer: below 1 means strata is better.\n", unit);
}

static double get_time(const cell *c) { return cell_med(c, c->time); }
static double get_rss(const cell *c) { return cell_med(c, c->rss); }

/* A bar chart of strata/peer ratios, one panel per metric. */
static void chart(const char *name, const char *title) {
    FILE *f = open_out(name);
    if (!f) return;
    const char *colors[NALLOC] = {"#333", "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#999"};
    int peers[NALLOC], np = 0;
    for (int i = 0; i < nactive; i++)
        if (active[i] != 0) peers[np++] = active[i];
    int groupw = np * 9 + 10, left = 60, panelh = 260, top = 70;
    int width = left + NWORK * groupw + 20, height = top + 2 * (panelh + 110) + 20;
    double ymax = 3.0;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n", width, height);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"16\" font-weight=\"bold\">%s</text>\n", left, title);
    fprintf(f, "<text x=\"%d\" y=\"40\" fill=\"#555\">%s</text>\n", left, machine);
    for (int i = 0; i < np; i++)
        fprintf(f, "<rect x=\"%d\" y=\"50\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" "
                   "y=\"59\">strata/%s</text>\n",
                left + i * 120, colors[peers[i]], left + i * 120 + 14, allocs[peers[i]].name);
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
            double s = get(&cells[w][0]);
            for (int i = 0; i < np; i++) {
                double v = get(&cells[w][peers[i]]), ratio = s / v;
                if (isnan(ratio) || isinf(ratio)) continue;
                double shown = ratio > ymax ? ymax : ratio;
                int h = (int)(shown / ymax * panelh);
                fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"8\" height=\"%d\" fill=\"%s\">"
                           "<title>%s: strata/%s = %.2f</title></rect>\n",
                        gx + i * 9, y0 + panelh - h, h, colors[peers[i]], works[w].row,
                        allocs[peers[i]].name, ratio);
                if (ratio > ymax) /* cut off: say how far it goes */
                    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"9\" text-anchor=\"middle\" "
                               "fill=\"%s\">%.1f</text>\n",
                            gx + i * 9 + 4, y0 - 2 - i * 9, colors[peers[i]], ratio);
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
            double t = get_time(c), r = get_rss(c), st = get_time(&cells[w][0]),
                   sr = get_rss(&cells[w][0]);
            fprintf(f, "%s,%s,%d,%d,%.6f,%.0f,%.0f,%.4f,%.4f,", works[w].row, allocs[active[i]].name,
                    runs, c->failed, t, r, cell_med(c, c->ops), st / t, sr / r);
            for (int x = 0; x < c->nx; x++)
                fprintf(f, "%s%s=%g", x ? ";" : "", c->xname[x], cell_med(c, c->x[x]));
            fprintf(f, "\n");
        }
    fclose(f);
}

/* ---- modes ---- */


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
    const char *lib = !strcmp(a->name, "strata") ? strata_lib : a->lib;
    if (lib) strncat(pre, lib, sizeof pre - 12);
    char *envp[] = {pre, "PATH=/usr/bin:/bin", "LC_ALL=C", NULL};
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
        double sum[NALLOC] = {0};
        for (int r = 0; r < total / ROUND; r++) /* interleaved rounds */
            for (int i = 0; i < nactive; i++) {
                progress("\r  start-up  %-16s %-9s   ", names[pr], allocs[active[i]].name);
                sum[i] += spawn_loop(&allocs[active[i]], progs[pr], ROUND) * ROUND;
            }
        say("| %s |", names[pr]);
        double glibc = NAN;
        for (int i = 0; i < nactive; i++)
            if (active[i] == 1) glibc = sum[i];
        for (int i = 0; i < nactive; i++) {
            double us = sum[i] / (total / ROUND * ROUND);
            if (active[i] == 1 || isnan(glibc)) say(" %.0f |", us);
            else say(" %.0f (%.2f of glibc) |", us, sum[i] / glibc);
        }
        say("\n");
    }
    progress("\r%60s\r", "");
    say("\nglibc is the system allocator with nothing preloaded; every other column pays for loading "
        "one more shared library.\n");
}

static int run_table(int runs, bool quick) {
    for (int r = 0; r < runs; r++)
        for (int w = 0; w < NWORK; w++)
            for (int i = 0; i < nactive; i++) {
                progress("\r  run %d/%d  %-14s %-9s   ", r + 1, runs, works[w].row,
                         allocs[active[i]].name);
                result res = run_one(&works[w], &allocs[active[i]], works[w].threaded ? threads : 1,
                                     quick ? works[w].quick : 1.0, false);
                cell_add(&cells[w][active[i]], &res);
            }
    progress("\r%60s\r", "");
    md = open_out(quick ? "quick.md" : "latest.md");
    say("Machine: %s. %d runs each, interleaved; medians. %s; %d threads for the multi-thread "
        "workloads.\n",
        machine, runs, quick ? "QUICK (reduced) workloads" : "Full workloads", threads);
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
    /* the bump allocator sets the floor */
    active[nactive++] = BUMP;
    allocs[BUMP].available = true;
    for (int w = 0; w < NWORK; w++) {
        if (works[w].instr == 0) continue;
        for (int i = 0; i < nactive; i++) {
            /* never freeing, bump cannot grow strings byte by byte: gigabytes of copies */
            if (active[i] == BUMP && !strcmp(works[w].prog, "realloc")) continue;
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
        const cell *sc = &cells[w][0];
        double s = sc->n ? sc->instr[0] / sc->ops[0] : NAN;
        for (int i = 0; i < nactive; i++) {
            const cell *c = &cells[w][active[i]];
            if (!c->n) {
                say(c->failed ? " FAIL |" : " – |");
                continue;
            }
            double per = c->instr[0] / c->ops[0];
            if (active[i] == 0 || active[i] == BUMP) say(" %.1f |", per);
            else say(" %.1f (%.2f) |", per, s / per);
            if (csv)
                fprintf(csv, "%s,%s,%.0f,%.0f,%.2f\n", works[w].row, allocs[active[i]].name,
                        c->instr[0], c->ops[0], per);
        }
        say("\n");
    }
    report_failures();
    if (csv) fclose(csv);
    fclose(md);
    md = NULL;
    return 0;
}

static int run_scaling(int max, int runs) {
    int counts[16], nc = 0;
    for (int t = 1; t <= max && nc < 15; t *= 2) counts[nc++] = t;
    if (counts[nc - 1] != max) counts[nc++] = max;
    static cell sc[NWORK][16][NALLOC];
    for (int r = 0; r < runs; r++)
        for (int w = 0; w < NWORK; w++) {
            if (!works[w].threaded) continue;
            for (int k = 0; k < nc; k++)
                for (int i = 0; i < nactive; i++) {
                    progress("\r  run %d/%d  %-14s %2d threads %-9s   ", r + 1, runs, works[w].row,
                             counts[k], allocs[active[i]].name);
                    result res = run_one(&works[w], &allocs[active[i]], counts[k], 1.0, false);
                    cell_add(&sc[w][k][active[i]], &res);
                }
        }
    progress("\r%70s\r", "");
    md = open_out("scaling.md");
    FILE *csv = open_out("scaling.csv");
    if (csv) fprintf(csv, "workload,allocator,threads,time_s,mops_per_s,peak_rss_kb\n");
    say("Machine: %s. Throughput in millions of allocation calls per second (median of %d), "
        "higher is better.\n",
        machine, runs);
    for (int w = 0; w < NWORK; w++) {
        if (!works[w].threaded) continue;
        say("\n#### %s\n\n| threads |", works[w].row);
        for (int i = 0; i < nactive; i++) say(" %s |", allocs[active[i]].name);
        say("\n|---|");
        for (int i = 0; i < nactive; i++) say("---:|");
        say("\n");
        for (int k = 0; k < nc; k++) {
            say("| %d |", counts[k]);
            for (int i = 0; i < nactive; i++) {
                const cell *c = &sc[w][k][active[i]];
                double t = cell_med(c, c->time), ops = cell_med(c, c->ops);
                if (c->failed || isnan(t)) say(" FAIL |");
                else say(" %.2f |", ops / t / 1e6);
                if (csv && !isnan(t))
                    fprintf(csv, "%s,%s,%d,%.6f,%.3f,%.0f\n", works[w].row, allocs[active[i]].name,
                            counts[k], t, ops / t / 1e6, cell_med(c, c->rss));
            }
            say("\n");
        }
    }
    if (csv) fclose(csv);
    fclose(md);
    md = NULL;
    /* line charts: one panel per workload */
    FILE *f = open_out("scaling.svg");
    if (!f) return 0;
    const char *colors[NALLOC] = {"#333", "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#999"};
    int pw = 300, ph = 200, cols = 3, nthr = 0;
    for (int w = 0; w < NWORK; w++) nthr += works[w].threaded;
    int rows = (nthr + cols - 1) / cols, width = cols * (pw + 70) + 40, height = 80 + rows * (ph + 70);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" "
               "fill=\"white\"/>\n",
            width, height);
    fprintf(f, "<text x=\"20\" y=\"22\" font-size=\"16\" font-weight=\"bold\">Thread scaling: "
               "Mops/s against threads</text>\n<text x=\"20\" y=\"40\" fill=\"#555\">%s</text>\n",
            machine);
    for (int i = 0; i < nactive; i++)
        fprintf(f, "<rect x=\"%d\" y=\"50\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" "
                   "y=\"59\">%s</text>\n",
                20 + i * 100, colors[active[i]], 34 + i * 100, allocs[active[i]].name);
    int panel = 0;
    for (int w = 0; w < NWORK; w++) {
        if (!works[w].threaded) continue;
        int x0 = 60 + (panel % cols) * (pw + 70), y0 = 80 + (panel / cols) * (ph + 70);
        panel++;
        double ymax = 0;
        for (int k = 0; k < nc; k++)
            for (int i = 0; i < nactive; i++) {
                const cell *c = &sc[w][k][active[i]];
                double v = cell_med(c, c->ops) / cell_med(c, c->time) / 1e6;
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
                    colors[active[i]]);
            for (int k = 0; k < nc; k++) {
                const cell *c = &sc[w][k][active[i]];
                double v = cell_med(c, c->ops) / cell_med(c, c->time) / 1e6;
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

static int run_hugepages(int runs) {
    static const workload ra = {"randaccess", "randaccess", "", 0.1, 0, false, ""};
    static allocator variants[] = {
        {"strata", NULL, NULL, true, "huge_pages=off"},
        {"strata huge_pages=thp", NULL, NULL, true, "huge_pages=thp"},
        {"strata huge_pages=hugetlb", NULL, NULL, true, "huge_pages=hugetlb"},
        {"glibc", NULL, NULL, true, NULL},
    };
    enum { NV = sizeof variants / sizeof variants[0] };
    static cell c[NV];
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
        for (int v = 0; v < NV; v++) {
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
    for (int v = 0; v < NV; v++) {
        double t = cell_med(&c[v], c[v].time), m = cell_med(&c[v], c[v].rss) / 1024;
        if (c[v].failed || isnan(t)) say("| %s | FAIL | |\n", variants[v].name);
        else say("| %s | %.3f (%.2f) | %.1f |\n", variants[v].name, t,
                 t / cell_med(&c[0], c[0].time), m);
    }
    say("\nIn parentheses: time relative to strata without huge pages.\n");
    fclose(md);
    md = NULL;
    return 0;
}

/* ---- hardening: the default build against itself without its checks, and secure mode ---- */

enum { HARDEN_SCALE = 4 }; /* × the --quick scale: long enough to be read to a few percent */

static int run_harden(const char *unchecked, int runs) {
    static char secure_lib[4096];
    static allocator variants[] = {
        {"strata", NULL, NULL, true, NULL},
        {"strata unchecked", NULL, NULL, true, NULL},
        {"strata secure", NULL, NULL, true, "secure=1"},
    };
    enum { NV = sizeof variants / sizeof variants[0] };
    static char unchecked_real[4096];
    if (!realpath(unchecked, unchecked_real)) {
        fprintf(stderr, "driver: %s not found\n", unchecked);
        return 2;
    }
    variants[1].lib = unchecked_real;
    /* lib/libstrata-secure.so beside lib/libstrata.so, if built: secure by default */
    snprintf(secure_lib, sizeof secure_lib, "%s", strata_lib);
    char *name = strstr(secure_lib, "libstrata.so");
    if (name) {
        snprintf(name, sizeof secure_lib - (size_t)(name - secure_lib), "libstrata-secure.so");
        if (access(secure_lib, R_OK) == 0) variants[2].lib = secure_lib, variants[2].options = NULL;
    }
    static cell c[NWORK][NV];
    for (int r = 0; r < runs; r++)
        for (int w = 0; w < NWORK; w++)
            for (int v = 0; v < NV; v++) {
                progress("\r  run %d/%d  %-14s %-18s", r + 1, runs, works[w].row, variants[v].name);
                result res = run_one(&works[w], &variants[v], works[w].threaded ? threads : 1,
                                     works[w].quick * HARDEN_SCALE, false);
                cell_add(&c[w][v], &res);
            }
    progress("\r%70s\r", "");
    md = open_out("harden.md");
    say("Machine: %s. Every workload at %d× its --quick scale, %d runs interleaved, medians of the time "
        "each reports (threaded ones with %d threads). *unchecked*: the default build with its checks "
        "compiled out (`-DSTRATA_HARDEN=0`: free-list links checked when popped, the double-free key, the "
        "block-start test on free); *secure*: %s.\n\n"
        "| workload | strata s | unchecked s | strata / unchecked | secure s | secure / strata |\n"
        "|---|---:|---:|---:|---:|---:|\n",
        machine, HARDEN_SCALE, runs, threads, variants[2].lib ? "`lib/libstrata-secure.so`" : "`STRATA_OPTIONS=secure=1`");
    double lcheck = 0, lsecure = 0;
    int ncheck = 0, nsecure = 0;
    for (int w = 0; w < NWORK; w++) {
        double t[NV];
        char s[NV][32];
        for (int v = 0; v < NV; v++) {
            t[v] = cell_med(&c[w][v], c[w][v].time);
            if (isnan(t[v])) snprintf(s[v], sizeof s[v], "FAIL");
            else snprintf(s[v], sizeof s[v], "%.3f", t[v]);
        }
        double rc = t[0] / t[1], rs = t[2] / t[0];
        if (!isnan(rc) && rc > 0) lcheck += log(rc), ncheck++;
        if (!isnan(rs) && rs > 0) lsecure += log(rs), nsecure++;
        say("| %s | %s | %s | %.3f | %s | %.3f |\n", works[w].row, s[0], s[1], rc, s[2], rs);
    }
    say("| **geometric mean** | | | **%.3f** | | **%.3f** |\n", ncheck ? exp(lcheck / ncheck) : NAN,
        nsecure ? exp(lsecure / nsecure) : NAN);
    for (int w = 0; w < NWORK; w++)
        for (int v = 0; v < NV; v++)
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
                    "[--threads N] [--only A,B] [--scaling MAX | --instr | --hugepages | --harden LIB] "
                    "[--publish DOC]\n");
    exit(2);
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
        else usage();
    }
    if (runs <= 0) runs = quick ? 3 : scaling ? 3 : 5;
    if (runs > 32 || threads < 1 || scaling < 0) usage();
    char real[4096];
    if (!realpath(strata_lib, real) || access(real, R_OK)) {
        fprintf(stderr, "driver: %s not found: run make first\n", strata_lib);
        return 2;
    }
    strata_lib = strdup(real);
    snprintf(bump_lib, sizeof bump_lib, "%s/libbump.so", bindir);
    if (realpath(bump_lib, real)) snprintf(bump_lib, sizeof bump_lib, "%s", real);
    mkdir(outdir, 0755);
    describe_machine();
    printf("Machine: %s\n", machine);
    for (int i = 0; i < NALLOC_PEERS; i++) {
        allocator *al = &allocs[i];
        if (al->lib) al->available = access(al->lib, R_OK) == 0;
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
    if (!nactive || active[0] != 0) {
        fprintf(stderr, "driver: strata must be among the allocators\n");
        return 2;
    }
    fflush(stdout);
    int rc;
    if (instr) rc = run_instr();
    else if (hugepages) rc = run_hugepages(runs);
    else if (unchecked) rc = run_harden(unchecked, runs);
    else if (scaling) rc = run_scaling(scaling, runs);
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
