/*
 * strata — the command line: run programs on strata.
 *
 *   strata run [-o OPTIONS] [--] CMD [ARGS...]   run CMD with libstrata preloaded
 *   strata options                               list STRATA_OPTIONS with their values
 *   strata version | help
 *
 * `run` execs the program in place, so its exit status (or the signal that killed it) is the
 * command's own. The library is found next to the command (../lib/libstrata.so), then in the
 * installation directory, or wherever STRATA_LIBRARY points.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"

#ifndef STRATA_LIBDIR
#define STRATA_LIBDIR "/usr/local/lib"
#endif

static const char usage_text[] =
    "usage: strata run [-o OPTIONS] [--] CMD [ARGS...]   run CMD on strata (LD_PRELOAD)\n"
    "       strata options                               list the STRATA_OPTIONS settings\n"
    "       strata version                               print the version\n"
    "       strata help                                  print this text\n"
    "\n"
    "  -o, --options OPTIONS   add OPTIONS (name=value,...) to STRATA_OPTIONS for CMD\n"
    "  -v, --verbose           same as -o verbose=1: say that strata serves CMD, summary at exit\n";

static _Noreturn void usage(const char *fmt, const char *arg) {
    if (fmt) {
        fprintf(stderr, "strata: ");
        fprintf(stderr, fmt, arg);
        fprintf(stderr, "\n");
    }
    fputs(usage_text, stderr);
    exit(2);
}

static int readable(const char *path) { return access(path, R_OK) == 0; }

/* The library to preload, as an absolute path. */
static const char *find_library(void) {
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
static void add_options(const char *opts) {
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

static _Noreturn void exec_on_strata(char **argv) {
    env_prepend("LD_PRELOAD", find_library(), ':');
    execvp(argv[0], argv);
    int err = errno;
    fprintf(stderr, "strata: cannot run '%s': %s\n", argv[0], strerror(err));
    exit(err == ENOENT ? 127 : 126);
}

static int cmd_run(int argc, char **argv) {
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--options")) {
            if (++i >= argc) usage("%s needs a value", a);
            add_options(argv[i]);
        } else if (!strncmp(a, "--options=", 10)) {
            add_options(a + 10);
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            add_options("verbose=1");
        } else if (a[0] == '-') {
            usage("unknown option '%s' for run", a);
        } else {
            break;
        }
    }
    if (i >= argc) usage("run: no command given", NULL);
    exec_on_strata(argv + i);
}

static int cmd_options(int argc, char **argv) {
    (void)argv;
    if (argc > 1) usage("options takes no arguments", NULL);
    add_options("help");
    dup2(1, 2); /* the library prints the table on stderr */
    char *true_argv[] = {"true", NULL};
    exec_on_strata(true_argv);
}

int main(int argc, char **argv) {
    if (argc < 2) usage("no command given", NULL);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "options")) return cmd_options(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("strata %s\n", STRATA_VERSION_STRING);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(usage_text, stdout);
        return 0;
    }
    usage("unknown command '%s'", cmd);
}
