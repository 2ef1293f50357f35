/*
 * usage.c — what `strata` says about itself: the table of subcommands with their usage texts,
 * choosing the subcommand, `strata COMMAND --help`, usage errors, `strata help` and `strata version`.
 *
 * Every subcommand's text is here and nowhere else: `strata --help` prints the synopsis lines of
 * all of them, `strata COMMAND --help` (or -h, or `strata help COMMAND`) one command's synopsis
 * and options on stdout, and a usage error the command's on stderr. A subcommand's parser hands
 * any option it does not take to cli_unknown_option, which answers -h and --help.
 * The man page (man/strata.1) describes the same options; tests/man.sh checks it against these texts.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "diagcmd.h"
#include "strata.h"

/* Option lines that several commands share; a description starts at column 27. */
#define OPT_OPTIONS "  -o, --options OPTIONS   add OPTIONS (name=value,...) to STRATA_OPTIONS for CMD\n"
#define OPT_VERBOSE "  -v, --verbose           same as -o verbose=1: say that strata serves CMD, summary at exit\n"
#define OPT_DEPTH   "      --depth N           keep N frames of each call stack (1 to 64, default 16)\n"
#define OPT_HELP    "  -h, --help              print this help and exit\n"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

/* Synopsis lines: what the command does from column 46, or on a line of its own indented so. */
static const struct cli_command commands[] = {
    {"run", cmd_run,
     "strata run [-o OPTIONS] [-v] [--] CMD [ARGS...]\n"
     "                                             run CMD on strata (LD_PRELOAD); exit as CMD did\n",
     OPT_OPTIONS OPT_VERBOSE},
    {"maps", cmd_maps,
     "strata maps [-t] PID                         PID's memory regions, labelled, with RSS and totals\n"
     "strata maps [-t] [-o OPTIONS] [-v] [-O FILE] -- CMD [ARGS...]\n"
     "                                             the same for CMD on strata as it exits (on stderr)\n",
     "  -t, --totals            only the totals per kind, the process and the system summary\n"
     "  -O, --output FILE       write to FILE instead of stdout (stderr with -- CMD)\n"
     OPT_OPTIONS OPT_VERBOSE},
    {"stats", cmd_stats,
     "strata stats [-o OPTIONS] [-v] [--] CMD [ARGS...]\n"
     "                                             run CMD on strata, heap statistics at exit (stderr)\n"
     "strata stats PID [-w N]                      heap statistics of PID, running on strata, now\n",
     OPT_OPTIONS OPT_VERBOSE
     "  -w, --watch N           PID: again every N seconds (1 to 86400), until PID exits\n"},
    {"leaks", cmd_leaks,
     "strata leaks [-o OPTIONS] [-v] [-O FILE] [--depth N] [--sample BYTES] [--lost] [--] CMD [ARGS...]\n"
     "                                             run CMD, then list the blocks it never freed by the\n"
     "                                             stack that allocated them: lost, then reachable\n",
     OPT_OPTIONS OPT_VERBOSE
     "  -O, --output FILE       the list goes to FILE (stderr otherwise)\n"
     OPT_DEPTH
     "      --sample BYTES      take a stack once per BYTES allocated (faster; leaked blocks without\n"
     "                          one are counted, not listed)\n"
     "      --lost              list only the lost blocks\n"},
    {"guard", cmd_guard,
     "strata guard [-o OPTIONS] [-v] [-O FILE] [--depth N] [--sample N] [--align N] [--underflow]\n"
     "             [--quarantine SIZE] [--] CMD [ARGS...]\n"
     "                                             run CMD with a guard page at every block: stop it at\n"
     "                                             the first overflow or use after free, with the stacks\n",
     OPT_OPTIONS OPT_VERBOSE
     "  -O, --output FILE       the stacks go to FILE (stderr otherwise)\n"
     OPT_DEPTH
     "      --sample N          guard one block in N (1 to 1000000)\n"
     "      --align N           a block's end aligned to N bytes against its page (a power of two,\n"
     "                          default 16; 1: exactly at it)\n"
     "      --underflow         the guard page before each block (catches underflows)\n"
     "      --quarantine SIZE   freed blocks' address space kept inaccessible (default 256m)\n"},
    {"report", cmd_report,
     "strata report [-o OPTIONS] [-v] [-O FILE] [--depth N] [--] CMD [ARGS...]\n"
     "                                             run CMD recording every allocation's call stack;\n"
     "                                             an HTML report (heap over time, allocation sites,\n"
     "                                             leaks, sizes) in FILE (strata-report.html)\n"
     "strata report [-O FILE] PID                  the same page for PID, running on strata, from its\n"
     "                                             heap profile: live memory by call stack, statistics\n",
     OPT_OPTIONS OPT_VERBOSE
     "  -O, --output FILE       the page (default strata-report.html)\n"
     OPT_DEPTH
     "      --from-dump DUMP    debugging: draw a dump libstrata-diag.so left (diag_file), run nothing\n"
     "      --stacks            debugging, with --from-dump: print its stacks, symbolized, on stdout\n"},
    {"profile", cmd_profile,
     "strata profile PID [--top N | --folded] [-o FILE.pb.gz] [--save FILE] [-w N]\n"
     "                                             what holds PID's memory, by function or by stack,\n"
     "                                             from its sampled heap profile; a pprof file\n"
     "strata profile [--rate BYTES] [--options OPTIONS] [...] -- CMD [ARGS...]\n"
     "                                             the same for CMD on strata, as it exits\n"
     "strata profile --from FILE [...] | --diff OLD NEW [--top N]\n"
     "                                             a profile saved with --save; what grew between two\n",
     "      --top N             the N functions holding the most live bytes (default 20)\n"
     "      --folded            a line per stack, outermost frame first, and its live bytes\n"
     "                          (for flame graph tools)\n"
     "  -o, --output FILE       a pprof profile (gzip-compressed profile.proto), for go tool pprof\n"
     "      --save FILE         the profile and the process's maps as read, for --from and --diff\n"
     "      --from FILE         a profile saved with --save, instead of a process\n"
     "      --diff OLD NEW      what grew from OLD to NEW (two saved profiles), by function\n"
     "  -w, --watch N           PID: the table again every N seconds, until PID exits\n"
     "      --rate BYTES        -- CMD: one sample per BYTES allocated (profile_rate=BYTES)\n"
     "      --options OPTIONS   -- CMD: add OPTIONS (name=value,...) to STRATA_OPTIONS for CMD\n"},
    {"options", cmd_options,
     "strata options                               list the STRATA_OPTIONS settings, with their values\n",
     NULL},
    {"version", cmd_version,
     "strata version                               print the version (also strata --version)\n", NULL},
    {"help", cmd_help,
     "strata help [COMMAND]                        print this text (also strata --help, -h), or\n"
     "                                             COMMAND's usage and options\n",
     NULL},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static const struct cli_command *current; /* the command being run; NULL before */

static const struct cli_command *command_named(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(name, commands[i].name)) return &commands[i];
    return NULL;
}

/* c's synopsis lines, "usage: " before the first when `first`, else 7 spaces. */
static void put_synopsis(FILE *out, const struct cli_command *c, bool first) {
    for (const char *s = c->synopsis; *s;) {
        size_t n = strcspn(s, "\n");
        fprintf(out, "%s%.*s\n", first ? "usage: " : "       ", (int)n, s);
        first = false;
        s += n + (s[n] == '\n');
    }
}

/* A command's usage and options, or (c NULL) every command's synopsis. */
static void put_usage(FILE *out, const struct cli_command *c) {
    if (c) {
        put_synopsis(out, c, true);
        fprintf(out, "\n%s%s", c->options ? c->options : "", OPT_HELP);
        return;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) put_synopsis(out, &commands[i], i == 0);
    fputs("\n'strata COMMAND --help' lists the options of COMMAND. The manual: man strata, man strata-options.\n",
          out);
}

_Noreturn void cli_usage(const char *fmt, const char *arg) {
    if (fmt) {
        fprintf(stderr, "strata: ");
        fprintf(stderr, fmt, arg);
        fprintf(stderr, "\n");
    }
    put_usage(stderr, current);
    exit(2);
}

_Noreturn void cli_unknown_option(const char *arg) {
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
        put_usage(stdout, current);
        exit(fflush(stdout) == 0 ? 0 : 1);
    }
    if (current) {
        char msg[64];
        snprintf(msg, sizeof msg, "unknown option '%%s' for %s", current->name);
        cli_usage(msg, arg);
    }
    cli_usage("unknown option '%s'", arg);
}

/* `strata help [COMMAND]` */
static int cmd_help(int argc, char **argv) {
    const struct cli_command *c = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') cli_unknown_option(argv[i]);
        if (c) cli_usage("help: one command at a time ('%s' is one too many)", argv[i]);
        if (!(c = command_named(argv[i]))) cli_usage("help: unknown command '%s'", argv[i]);
    }
    put_usage(stdout, c);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* `strata version` */
static int cmd_version(int argc, char **argv) {
    if (argc > 1 && argv[1][0] == '-') cli_unknown_option(argv[1]);
    if (argc > 1) cli_usage("version takes no arguments ('%s')", argv[1]);
    printf("strata %s\n", STRATA_VERSION_STRING);
    return fflush(stdout) == 0 ? 0 : 1;
}

int cli_main(int argc, char **argv) {
    if (argc < 1) cli_usage("no command given", NULL);
    const char *word = argv[0];
    if (!strcmp(word, "--version")) word = "version";
    else if (!strcmp(word, "--help") || !strcmp(word, "-h")) word = "help";
    const struct cli_command *c = command_named(word);
    if (!c && word[0] == '-') cli_unknown_option(word);
    if (!c) cli_usage("unknown command '%s'", word);
    current = c;
    return c->run(argc, argv);
}
