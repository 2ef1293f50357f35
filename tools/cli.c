/*
 * cli.c — shared by the subcommands: usage, finding libstrata.so, running a program on it.
 *
 * The library is found next to the command (../lib/libstrata.so), then in the installation
 * directory, or wherever STRATA_LIBRARY points; the same goes for libstrata-diag.so (leaks, guard,
 * report) and STRATA_DIAG_LIBRARY.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

#ifndef STRATA_LIBDIR
#define STRATA_LIBDIR "/usr/local/lib"
#endif

static const char usage_text[] =
    "usage: strata run [-o OPTIONS] [--] CMD [ARGS...]   run CMD on strata (LD_PRELOAD)\n"
    "       strata maps [-t] PID                         PID's memory regions, labelled, with RSS and totals\n"
    "       strata maps [-t] [-o OPTIONS] [-O FILE] -- CMD [ARGS...]\n"
    "                                                    the same for CMD on strata as it exits (on stderr)\n"
    "       strata stats [-o OPTIONS] [--] CMD [ARGS...] run CMD on strata, heap statistics at exit\n"
    "       strata stats PID [-w N]                      heap statistics of PID, running on strata, now\n"
    "       strata leaks [-o OPTIONS] [-O FILE] [--depth N] [--sample BYTES] [--lost] [--] CMD [ARGS...]\n"
    "                                                    run CMD, then list the blocks it never freed by the\n"
    "                                                    stack that allocated them: lost, then reachable\n"
    "       strata guard [-o OPTIONS] [-O FILE] [--depth N] [--sample N] [--align N] [--underflow]\n"
    "                    [--quarantine SIZE] [--] CMD [ARGS...]\n"
    "                                                    run CMD with a guard page at every block: stop it at\n"
    "                                                    the first overflow or use after free, with the stacks\n"
    "       strata report [-o OPTIONS] [-O FILE] [--depth N] [--] CMD [ARGS...]\n"
    "                                                    run CMD recording every allocation's call stack;\n"
    "                                                    an HTML report (heap over time, allocation sites,\n"
    "                                                    leaks, sizes) in FILE (strata-report.html)\n"
    "       strata report [-O FILE] PID                  the same page for PID, running on strata, from its\n"
    "                                                    heap profile: live memory by call stack, statistics\n"
    "       strata profile PID [--top N | --folded] [-o FILE.pb.gz] [--save FILE] [-w N]\n"
    "                                                    what holds PID's memory, by function or by stack,\n"
    "                                                    from its sampled heap profile; a pprof file\n"
    "       strata profile [--rate BYTES] [--options OPTIONS] [...] -- CMD [ARGS...]\n"
    "                                                    the same for CMD on strata, as it exits\n"
    "       strata profile --from FILE [...] | --diff OLD NEW [--top N]\n"
    "                                                    a profile saved with --save; what grew between two\n"
    "       strata options                               list the STRATA_OPTIONS settings\n"
    "       strata version                               print the version\n"
    "       strata help                                  print this text\n"
    "\n"
    "  -o, --options OPTIONS   add OPTIONS (name=value,...) to STRATA_OPTIONS for CMD\n"
    "  -v, --verbose           same as -o verbose=1: say that strata serves CMD, summary at exit\n"
    "  -t, --totals            maps: only the totals per kind, the process and the system summary\n"
    "  -O, --output FILE       maps: write to FILE instead of stdout (stderr with -- CMD); report: the page;\n"
    "                          leaks, guard: their list (stderr otherwise)\n"
    "      --depth N           leaks, guard, report: keep N frames of each call stack (1 to 64)\n"
    "      --sample BYTES|N    leaks: a stack once per BYTES allocated; guard: one block in N guarded\n"
    "      --lost              leaks: list only the lost blocks\n"
    "      --align N           guard: a block's end aligned to N bytes against its page (1: exactly at it)\n"
    "      --underflow         guard: the guard page before each block (catches underflows)\n"
    "      --quarantine SIZE   guard: freed blocks' address space kept inaccessible (default 256m)\n"
    "  -w, --watch N           stats PID, profile PID: again every N seconds, until PID exits\n"
    "      --top N             profile: the N functions holding the most live bytes (default 20)\n"
    "      --folded            profile: a line per stack, outermost frame first, and its live bytes\n"
    "                          (for flame graph tools)\n"
    "  -o, --output FILE       profile: a pprof profile (gzip-compressed profile.proto), for go tool pprof\n"
    "      --save FILE         profile: the profile and the process's maps as read, for --from and --diff\n"
    "      --rate BYTES        profile -- CMD: one sample per BYTES allocated (profile_rate=BYTES)\n";

_Noreturn void cli_usage(const char *fmt, const char *arg) {
    if (fmt) {
        fprintf(stderr, "strata: ");
        fprintf(stderr, fmt, arg);
        fprintf(stderr, "\n");
    }
    fputs(usage_text, stderr);
    exit(2);
}

void cli_help(FILE *out) { fputs(usage_text, out); }

static int readable(const char *path) { return access(path, R_OK) == 0; }

/* A library of strata's (file name `file`), as an absolute path; the environment variable `env`
 * overrides where it is looked for. Exits with a message if there is none. */
const char *cli_library_named(const char *file, const char *env) {
    char path[PATH_MAX + 64], real[PATH_MAX];
    const char *set = getenv(env);
    if (set && *set) {
        if (!readable(set)) {
            fprintf(stderr, "strata: %s=%s: %s\n", env, set, strerror(errno));
            exit(1);
        }
        return set;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(path, sizeof path, "%s/../lib/%s", exe, file);
            if (readable(path)) return cli_strdup(realpath(path, real) ? real : path);
        }
    }
    snprintf(path, sizeof path, "%s/%s", STRATA_LIBDIR, file);
    if (readable(path)) return cli_strdup(path);
    fprintf(stderr, "strata: cannot find %s (looked beside the command and in %s); set %s to its path\n", file,
            STRATA_LIBDIR, env);
    exit(1);
}

/* libstrata.so, found once. */
const char *cli_library(void) {
    static const char *found;
    if (!found) found = cli_library_named("libstrata.so", "STRATA_LIBRARY");
    return found;
}

void *cli_alloc(size_t n) {
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "strata: out of memory\n");
        exit(1);
    }
    return p;
}

void *cli_realloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "strata: out of memory\n");
        exit(1);
    }
    return p;
}

char *cli_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(cli_alloc(n), s, n);
}

/* Prepend `value` to a colon- or comma-separated environment list. */
static void env_prepend(const char *name, const char *value, char sep) {
    const char *old = getenv(name);
    if (!old || !*old) {
        setenv(name, value, 1);
        return;
    }
    size_t n = strlen(value) + strlen(old) + 2;
    char *s = malloc(n);
    if (!s) {
        fprintf(stderr, "strata: out of memory\n");
        exit(1);
    }
    snprintf(s, n, "%s%c%s", value, sep, old);
    setenv(name, s, 1);
    free(s);
}

/* Append to STRATA_OPTIONS: later options win, so the command line beats the environment. */
void cli_add_options(const char *opts) {
    const char *old = getenv("STRATA_OPTIONS");
    if (!old || !*old) {
        setenv("STRATA_OPTIONS", opts, 1);
        return;
    }
    size_t n = strlen(old) + strlen(opts) + 2;
    char *s = malloc(n);
    if (!s) exit(1);
    snprintf(s, n, "%s,%s", old, opts);
    setenv("STRATA_OPTIONS", s, 1);
    free(s);
}

void cli_preload_library(const char *path) { env_prepend("LD_PRELOAD", path, ':'); }

void cli_preload(void) { cli_preload_library(cli_library()); }

_Noreturn void cli_exec_on_strata(char **argv) {
    cli_preload();
    execvp(argv[0], argv);
    int err = errno;
    fprintf(stderr, "strata: cannot run '%s': %s\n", argv[0], strerror(err));
    exit(err == ENOENT ? 127 : 126);
}

const char *cli_option_value(int argc, char **argv, int *i, const char *shortname, const char *longname) {
    const char *a = argv[*i];
    size_t n = strlen(longname);
    if (!strncmp(a, longname, n) && a[n] == '=') return a + n + 1;
    if ((!shortname || strcmp(a, shortname) != 0) && strcmp(a, longname) != 0) return NULL;
    if (++*i >= argc) cli_usage("%s needs a value", a);
    return argv[*i];
}

const char *cli_tmpdir(void) {
    const char *dir = getenv("TMPDIR");
    return dir && *dir ? dir : "/tmp";
}

int cli_command_start(int argc, char **argv, const char *sub) {
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--options")) {
            if (++i >= argc) cli_usage("%s needs a value", a);
            cli_add_options(argv[i]);
        } else if (!strncmp(a, "--options=", 10)) {
            cli_add_options(a + 10);
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            cli_add_options("verbose=1");
        } else if (a[0] == '-') {
            char msg[64];
            snprintf(msg, sizeof msg, "unknown option '%%s' for %s", sub);
            cli_usage(msg, a);
        } else {
            break;
        }
    }
    if (i >= argc) {
        char msg[64];
        snprintf(msg, sizeof msg, "%s: no command given", sub);
        cli_usage(msg, NULL);
    }
    return i;
}

static const char *const signal_names[] = {
    [SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",       [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
    [SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT",     [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",
    [SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1",     [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
    [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM",     [SIGTERM] = "SIGTERM", [SIGCHLD] = "SIGCHLD",
    [SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP",     [SIGTSTP] = "SIGTSTP", [SIGTTIN] = "SIGTTIN",
    [SIGTTOU] = "SIGTTOU", [SIGURG] = "SIGURG",       [SIGXCPU] = "SIGXCPU", [SIGXFSZ] = "SIGXFSZ",
    [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH", [SIGIO] = "SIGIO",
    [SIGPWR] = "SIGPWR",   [SIGSYS] = "SIGSYS",
};

const char *cli_signal_name(int sig) {
    if (sig > 0 && (size_t)sig < sizeof signal_names / sizeof signal_names[0] && signal_names[sig])
        return signal_names[sig];
    return sig >= SIGRTMIN && sig <= SIGRTMAX ? "a real-time signal" : "unknown";
}

int cli_exit_status(const char *cmd, int status) {
    if (status < 0) return 1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    int sig = WTERMSIG(status);
    fprintf(stderr, "strata: %s killed by signal %d (%s)\n", cmd, sig, cli_signal_name(sig));
    return 128 + sig;
}
