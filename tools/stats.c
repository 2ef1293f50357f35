/*
 * stats.c — `strata stats [-o OPTIONS] [--] CMD ARGS...`: run CMD on strata with stats=1, so that
 * at its exit the library prints its heap statistics on stderr: totals (calls, bytes requested
 * and allocated, memory reserved, committed and resident, system calls, purged bytes,
 * fragmentation) and, per size class, mallocs, frees, live blocks and bytes, peak and pages.
 *
 * The program is exec'd in place (as with `run`), so its exit status is the command's own.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_stats(int argc, char **argv) {
    int i = cli_command_start(argc, argv, "stats");
    cli_add_options("stats=1");
    cli_exec_on_strata(argv + i);
}
