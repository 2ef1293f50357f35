/*
 * strata — the command line: run programs on strata.
 *
 *   strata run [-o OPTIONS] [--] CMD [ARGS...]   run CMD with libstrata preloaded
 *   strata maps PID | strata maps [-o OPTIONS] -- CMD [ARGS...]
 *                                                a process's memory regions, labelled (at CMD's exit)
 *   strata leaks | guard [OPTIONS] [--] CMD [ARGS...]
 *                                                run CMD under libstrata-diag.so: its leaks, or its
 *                                                first overflow or use after free, with the stacks
 *   strata report [-o OPTIONS] [-O FILE] [--depth N] [--] CMD [ARGS...]
 *                                                run CMD under libstrata-diag.so, draw an HTML report
 *   strata stats PID [--watch N] | strata stats [-o OPTIONS] -- CMD [ARGS...]
 *                                                heap statistics of a running process (at CMD's exit)
 *   strata profile PID [--top N | --folded] [-o FILE.pb.gz] [--watch N] | strata profile -- CMD [ARGS...]
 *                                                the sampled heap profile of a running process (at CMD's exit)
 *   strata options                               list STRATA_OPTIONS with their values
 *   strata version | help [COMMAND]              (also --version, --help, -h; COMMAND --help)
 *
 * Each subcommand is a file of tools/ (run.c, maps.c, ...); usage.c holds the table of them with
 * their usage texts, cli.c what they share.
 */
#include "cli.h"

int main(int argc, char **argv) {
    if (argc < 2) cli_usage("no command given", NULL);
    return cli_main(argc - 1, argv + 1);
}
