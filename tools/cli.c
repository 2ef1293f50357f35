/*
 * cli.c — shared by the subcommands: finding libstrata.so, running a program on it (their usage
 * texts and usage errors are in usage.c).
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
            cli_unknown_option(a);
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
