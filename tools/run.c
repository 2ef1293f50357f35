/*
 * run.c — `strata run [-o OPTIONS] [-v] [--] CMD ARGS...` and `strata options`.
 *
 * `run` execs the program in place, so its exit status (or the signal that killed it) is the
 * command's own.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cmd_run(int argc, char **argv) {
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
            cli_usage("unknown option '%s' for run", a);
        } else {
            break;
        }
    }
    if (i >= argc) cli_usage("run: no command given", NULL);
    cli_exec_on_strata(argv + i);
}

int cmd_options(int argc, char **argv) {
    (void)argv;
    if (argc > 1) cli_usage("options takes no arguments", NULL);
    cli_add_options("help");
    dup2(1, 2); /* the library prints the table on stderr */
    char *true_argv[] = {"true", NULL};
    cli_exec_on_strata(true_argv);
}

