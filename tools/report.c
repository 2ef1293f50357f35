/*
 * report.c — `strata report [-o OPTIONS] [-O FILE] [--depth N] [--] CMD ARGS...`: run CMD under
 * libstrata-diag.so (diag=report: every allocation recorded with its call stack, samples of the
 * heap over time), read the dump it leaves at exit, and draw it as one self-contained HTML page
 * (report_page.c), strata-report.html unless -O says otherwise. The exit status is CMD's.
 *
 *   -o, --options OPTIONS   more STRATA_OPTIONS for CMD (-v: verbose=1)
 *   -O, --output FILE       the page (default strata-report.html)
 *   --depth N               frames kept per call stack (diag_depth=N)
 *
 *   strata report PID [-O FILE]   the same page for a running process on strata, from its heap
 *                                 profile (profile.h): live bytes by call stack, and its statistics
 *
 * Debugging aids, left out of the general usage (strata report --help lists them):
 *   strata report --from-dump DUMP [-O FILE]   draw an existing dump, running nothing
 *   strata report --from-dump DUMP --stacks    print its stacks, symbolized, on stdout
 *
 * The output file is checked before CMD runs (a report that cannot be written is known before
 * a long run), but written only once the dump is read: a failed run leaves an earlier report
 * there as it was, and a file it created is removed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "diagrun.h"
#include "dump.h"
#include "profile.h"
#include "report.h"
#include "stats.h"
#include "symbols.h"

#define DEFAULT_OUTPUT "strata-report.html"
#define MAX_DEPTH 64 /* the library's limit (diag_depth) */

struct report_args {
    char **cmd;
    const char *output, *from_dump;
    char *options; /* what -o and -v add, comma-separated */
    long depth;    /* 0: the library's default */
    int pid;       /* strata report PID: a running process */
    bool stacks;
    bool created; /* the output file did not exist before */
};

/* ---- the command line ---- */

static void add_option(struct report_args *a, const char *opt) {
    size_t old = a->options ? strlen(a->options) : 0, n = old + strlen(opt) + 2;
    a->options = cli_realloc(a->options, n);
    snprintf(a->options + old, n - old, "%s%s", old ? "," : "", opt);
}

static long parse_depth(const char *s) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !*s || *end || v < 1 || v > MAX_DEPTH)
        cli_usage("report: --depth takes a number of frames from 1 to 64, not '%s'", s);
    return v;
}

static void check_args(const struct report_args *a) {
    if (a->from_dump && a->cmd) cli_usage("report: --from-dump draws a dump, it runs no command ('%s')", a->cmd[0]);
    if (a->from_dump && (a->options || a->depth)) cli_usage("report: -o, -v and --depth are for a command to run", NULL);
    if (a->stacks && !a->from_dump) cli_usage("report: --stacks goes with --from-dump", NULL);
    if (a->pid && (a->from_dump || a->options || a->depth || a->stacks))
        cli_usage("report PID: only -O goes with a PID", NULL);
    if (!a->pid && !a->from_dump && (!a->cmd || !a->cmd[0])) cli_usage("report: no command given", NULL);
}

static void parse_args(int argc, char **argv, struct report_args *a) {
    const char *v;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--")) {
            a->cmd = argv + i + 1;
            break;
        } else if ((v = cli_option_value(argc, argv, &i, "-o", "--options"))) {
            add_option(a, v);
        } else if ((v = cli_option_value(argc, argv, &i, "-O", "--output"))) {
            a->output = v;
        } else if ((v = cli_option_value(argc, argv, &i, NULL, "--depth"))) {
            a->depth = parse_depth(v);
        } else if ((v = cli_option_value(argc, argv, &i, NULL, "--from-dump"))) {
            a->from_dump = v;
        } else if (!strcmp(arg, "--stacks")) {
            a->stacks = true;
        } else if (!strcmp(arg, "-v") || !strcmp(arg, "--verbose")) {
            add_option(a, "verbose=1");
        } else if (arg[0] == '-' && arg[1]) {
            cli_unknown_option(arg);
        } else if (stats_is_pid(arg) && !a->pid) {
            long pid = strtol(arg, NULL, 10);
            if (strlen(arg) > 10 || pid <= 0 || pid > INT_MAX) cli_usage("report: '%s' is not a PID", arg);
            a->pid = (int)pid;
        } else {
            a->cmd = argv + i;
            break;
        }
    }
    check_args(a);
    if (!a->output) a->output = DEFAULT_OUTPUT;
    if (!*a->output) cli_usage("report: -O needs a file name", NULL);
}

/* ---- words for the title ---- */

/* argv as a shell would take it back: arguments with special characters in single quotes. */
static char *command_line(char **argv) {
    size_t n = 1;
    for (char **p = argv; *p; p++) n += 4 * strlen(*p) + 3;
    char *s = cli_alloc(n), *at = s;
    for (char **p = argv; *p; p++) {
        bool plain = **p && strspn(*p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                       "_-+=/.,:@%") == strlen(*p);
        if (p != argv) *at++ = ' ';
        if (!plain) *at++ = '\'';
        for (const char *c = *p; *c; c++)
            if (*c == '\'' && !plain) at = stpcpy(at, "'\\''");
            else *at++ = *c;
        if (!plain) *at++ = '\'';
    }
    *at = '\0';
    return s;
}

static void outcome_of_status(int status, char *buf, size_t cap) {
    if (WIFEXITED(status)) snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(status), cli_signal_name(WTERMSIG(status)));
    else snprintf(buf, cap, "ended");
}

static void outcome_of_dump(const struct dump *d, char *buf, size_t cap) {
    switch (d->end) {
    case DUMP_END_EXIT: snprintf(buf, cap, "exited"); break;
    case DUMP_END_SIGNAL: snprintf(buf, cap, "killed by signal %d (%s)", d->signal, cli_signal_name(d->signal)); break;
    case DUMP_END_ABORT: snprintf(buf, cap, "stopped by strata"); break;
    default: snprintf(buf, cap, "ended (the dump does not say how)");
    }
}

/* ---- the output file ---- */

/* Can FILE be written? Checked before running anything; remembers whether strata created it. */
static bool output_writable(struct report_args *a) {
    a->created = access(a->output, F_OK) != 0;
    int fd = open(a->output, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        fprintf(stderr, "strata: report: cannot write %s: %s\n", a->output, strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

static void drop_output(const struct report_args *a) {
    if (a->created) unlink(a->output);
}

static bool write_page(const struct report_args *a, const struct report *r) {
    FILE *out = fopen(a->output, "we");
    bool ok = out && report_write(out, r);
    int err = errno;
    if (out && fclose(out) != 0) ok = false, err = errno;
    if (!ok) fprintf(stderr, "strata: report: cannot write %s: %s\n", a->output, strerror(err));
    return ok;
}

/* Symbolize and draw a dump read into d (live: a running process's profile). */
static bool draw(const struct report_args *a, const struct dump *d, const char *command, const char *outcome,
                 const struct report_live *live) {
    struct symbols *sym = symbols_load(d);
    struct report r = {d, sym, command, outcome, live};
    bool ok = write_page(a, &r);
    symbols_free(sym);
    if (ok && live) fprintf(stderr, "strata: report written to %s (%zu stacks holding live memory)\n", a->output, d->n_sites);
    else if (ok) fprintf(stderr, "strata: report written to %s (%zu sites, %zu leaks)\n", a->output, d->n_sites, d->n_leaks);
    return ok;
}

/* ---- the two ways in ---- */

static void print_stacks(const struct dump *d) {
    struct symbols *sym = symbols_load(d);
    for (size_t i = 0; i < d->n_stacks; i++) {
        size_t n = d->stacks[i].depth;
        printf("stack %llu (%zu frame%s)\n", (unsigned long long)d->stacks[i].id, n, n == 1 ? "" : "s");
        symbols_print_stack(stdout, sym, &d->stacks[i], "    ", 0);
    }
    symbols_free(sym);
}

static int from_dump(struct report_args *a) {
    struct dump d;
    if (!dump_read(a->from_dump, &d)) {
        fprintf(stderr, "strata: %s\n", d.why);
        dump_free(&d);
        return 1;
    }
    int status = 0;
    if (a->stacks) {
        print_stacks(&d);
    } else {
        char outcome[128];
        outcome_of_dump(&d, outcome, sizeof outcome);
        if (!output_writable(a)) status = 1;
        else if (!draw(a, &d, *d.exe ? d.exe : a->from_dump, outcome, NULL)) status = 1, drop_output(a);
    }
    dump_free(&d);
    return status;
}

static void no_dump(const struct report_args *a, const struct dump *d, pid_t pid) {
    if (d->why_errno == ENOENT)
        fprintf(stderr, "strata: report: %s (pid %d) left no dump (killed by SIGKILL, or ended with _exit?): "
                        "no report\n", a->cmd[0], (int)pid);
    else fprintf(stderr, "strata: %s\n", d->why);
}

static int run_and_draw(struct report_args *a) {
    diag_library(); /* no library: say so before touching the output */
    if (!output_writable(a)) return 1;
    if (a->depth) {
        char opt[32];
        snprintf(opt, sizeof opt, "diag_depth=%ld", a->depth);
        add_option(a, opt);
    }
    struct diag_run run;
    int status = diag_run(a->cmd, "report", a->options, &run);
    struct dump d;
    if (!run.ran) {
        drop_output(a);
    } else if (!dump_read(run.dump, &d)) {
        no_dump(a, &d, run.pid);
        dump_free(&d);
        drop_output(a);
    } else {
        char *command = command_line(a->cmd), outcome[128];
        outcome_of_status(run.status, outcome, sizeof outcome);
        if (!draw(a, &d, command, outcome, NULL)) drop_output(a);
        free(command);
        dump_free(&d);
    }
    diag_run_cleanup(&run);
    return status;
}

/* PID's statistics as `strata stats PID` prints them (free it), or NULL. */
static char *stats_text(int pid) {
    struct stats_file f;
    char why[512];
    if (stats_open(pid, &f, why, sizeof why) != 0) return NULL;
    sx_snapshot s;
    bool ok = stats_snapshot(&f, pid, &s);
    close(f.fd);
    FILE *t = ok ? tmpfile() : NULL;
    if (!t) return NULL;
    sx_report_print(fileno(t), &s, "live");
    char *text = NULL;
    off_t n = lseek(fileno(t), 0, SEEK_END); /* the printer writes to the descriptor */
    if (n > 0 && lseek(fileno(t), 0, SEEK_SET) == 0) {
        text = cli_alloc((size_t)n + 1);
        if (read(fileno(t), text, (size_t)n) != (ssize_t)n) free(text), text = NULL;
    }
    fclose(t);
    return text;
}

static int of_pid(struct report_args *a) {
    struct profile p;
    char why[512];
    if (!profile_of_pid(a->pid, &p, why, sizeof why)) {
        fprintf(stderr, "strata: %d: %s\n", a->pid, why);
        return 1;
    }
    char *stats = stats_text(a->pid), outcome[64];
    struct report_live live = {p.hd.rate, p.hd.samples, p.hd.dropped, p.live_bytes, p.live_objects, stats};
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    snprintf(outcome, sizeof outcome, "running, read at %02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
    p.d.pid = a->pid;
    int status = 1;
    if (output_writable(a)) {
        status = draw(a, &p.d, p.program, outcome, &live) ? 0 : 1;
        if (status) drop_output(a);
    }
    free(stats);
    profile_free(&p);
    return status;
}

int cmd_report(int argc, char **argv) {
    struct report_args a = {0};
    parse_args(argc, argv, &a);
    int status = a.pid ? of_pid(&a) : a.from_dump ? from_dump(&a) : run_and_draw(&a);
    free(a.options);
    return status;
}
