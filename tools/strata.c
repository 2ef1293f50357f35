/*
 * strata — the command line: run programs on strata.
 *
 *   strata run [-o OPTIONS] [--] CMD [ARGS...]   run CMD with libstrata preloaded
 *   strata maps PID | strata maps [-o OPTIONS] -- CMD [ARGS...]
 *                                                a process's memory regions, labelled (at CMD's exit)
 *   strata report [-o OPTIONS] [-O FILE] [--depth N] [--] CMD [ARGS...]
 *                                                run CMD under libstrata-diag.so, draw an HTML report
 *   strata stats PID [--watch N] | strata stats [-o OPTIONS] -- CMD [ARGS...]
 *                                                heap statistics of a running process (at CMD's exit)
 *   strata profile PID [--top N | --folded] [-o FILE.pb.gz] [--watch N] | strata profile -- CMD [ARGS...]
 *                                                the sampled heap profile of a running process (at CMD's exit)
 *   strata options                               list STRATA_OPTIONS with their values
 *   strata version | help
 *
 * Each subcommand is a file of tools/ (run.c, maps.c, ...); cli.c holds what they share.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "diagcmd.h"
#include "strata.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"run", cmd_run},
    {"options", cmd_options},
    {"stats", cmd_stats},
    {"maps", cmd_maps},
    {"leaks", cmd_leaks},
    {"guard", cmd_guard},
    {"report", cmd_report},
    {"profile", cmd_profile},
};

int main(int argc, char **argv) {
    if (argc < 2) cli_usage("no command given", NULL);
    const char *cmd = argv[1];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("strata %s\n", STRATA_VERSION_STRING);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        cli_help(stdout);
        return 0;
    }
    cli_usage("unknown command '%s'", cmd);
}
