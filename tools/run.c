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

int cmd_run(int argc, char **argv) { cli_exec_on_strata(argv + cli_command_start(argc, argv, "run")); }

int cmd_options(int argc, char **argv) {
    (void)argv;
    if (argc > 1) cli_usage("options takes no arguments", NULL);
    cli_add_options("help");
    dup2(1, 2); /* the library prints the table on stderr */
    char *true_argv[] = {"true", NULL};
    cli_exec_on_strata(true_argv);
}

