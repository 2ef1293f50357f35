/*
 * cli.c — shared by the subcommands: usage, finding libstrata.so, running a program on it.
 *
 * The library is found next to the command (../lib/libstrata.so), then in the installation
 * directory, or wherever STRATA_LIBRARY points.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    "       strata options                               list the STRATA_OPTIONS settings\n"
    "       strata version                               print the version\n"
    "       strata help                                  print this text\n"
    "\n"
    "  -o, --options OPTIONS   add OPTIONS (name=value,...) to STRATA_OPTIONS for CMD\n"
    "  -v, --verbose           same as -o verbose=1: say that strata serves CMD, summary at exit\n"
    "  -t, --totals            maps: only the totals per kind, the process and the system summary\n"
    "  -O, --output FILE       maps: write to FILE instead of stdout (stderr with -- CMD)\n"
    "  -w, --watch N           stats PID: again every N seconds, until PID exits\n";

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

/* The library to preload, as an absolute path. */
const char *cli_library(void) {
    static char path[PATH_MAX + 32], real[PATH_MAX];
    const char *env = getenv("STRATA_LIBRARY");
    if (env && *env) {
        if (!readable(env)) {
            fprintf(stderr, "strata: STRATA_LIBRARY=%s: %s\n", env, strerror(errno));
            exit(1);
        }
        return env;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(path, sizeof path, "%s/../lib/libstrata.so", exe);
            if (readable(path)) return realpath(path, real) ? real : path;
        }
    }
    snprintf(path, sizeof path, "%s/libstrata.so", STRATA_LIBDIR);
    if (readable(path)) return path;
    fprintf(stderr,
            "strata: cannot find libstrata.so (looked beside the command and in %s); "
            "set STRATA_LIBRARY to its path\n",
            STRATA_LIBDIR);
    exit(1);
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

void cli_preload(void) { env_prepend("LD_PRELOAD", cli_library(), ':'); }

_Noreturn void cli_exec_on_strata(char **argv) {
    cli_preload();
    execvp(argv[0], argv);
    int err = errno;
    fprintf(stderr, "strata: cannot run '%s': %s\n", argv[0], strerror(err));
    exit(err == ENOENT ? 127 : 126);
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
