/*
 * cli.h — what the subcommands of `strata` share: usage errors, finding libstrata, running a
 * program on it.
 */
#ifndef STRATA_CLI_H
#define STRATA_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

/* A subcommand: `strata NAME ARGS...` calls run(argc, argv) with argv[0] NAME (usage.c). */
struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *synopsis; /* its "strata NAME ..." lines, with what each does */
    const char *options;  /* its option lines, or NULL */
};
/* Run the subcommand argv[0] (strata's own argv + 1). */
int cli_main(int argc, char **argv);

/* Print "strata: " fmt (with arg) and the usage of the subcommand running (of them all before
 * one is chosen) on stderr, exit 2. fmt may be NULL. */
_Noreturn void cli_usage(const char *fmt, const char *arg);
/* An option the subcommand's parser does not take: -h and --help print its usage and options on
 * stdout and exit 0; anything else is a usage error naming it. */
_Noreturn void cli_unknown_option(const char *arg);
/* libstrata.so to preload, as an absolute path; exits with a message if there is none. */
const char *cli_library(void);
/* The same for another library of strata's: `file` (libstrata-diag.so) beside the command or in
 * the installation directory, unless the environment variable `env` names it. */
const char *cli_library_named(const char *file, const char *env);
/* Memory or exit(1) with a message. */
void *cli_alloc(size_t n); /* zeroed */
void *cli_realloc(void *p, size_t n);
char *cli_strdup(const char *s);
/* Add name=value,... to STRATA_OPTIONS (later options win). */
void cli_add_options(const char *opts);
/* Put libstrata (or the library at `path`) in LD_PRELOAD, keeping what is there. */
void cli_preload(void);
void cli_preload_library(const char *path);
/* Read the options of `strata SUB [-o OPTIONS] [-v] [--] CMD ARGS...` (argv[0] is SUB) into the
 * environment; the index of CMD. A bad option or no command is a usage error. */
int cli_command_start(int argc, char **argv, const char *sub);
/* The value of the option at argv[*i] if it is "SHORT VALUE", "LONG VALUE" or "LONG=VALUE"
 * (shortname may be NULL), moving *i past it; NULL if argv[*i] is another option. A missing
 * value is a usage error. */
const char *cli_option_value(int argc, char **argv, int *i, const char *shortname, const char *longname);
/* Where temporary files go: $TMPDIR, else /tmp. */
const char *cli_tmpdir(void);
/* exec argv on strata; never returns (127 if not found, 126 if not runnable). */
_Noreturn void cli_exec_on_strata(char **argv);

/* Run argv on strata, traced, calling at_exit(pid, arg) as it exits, its memory still there (trace.c).
 * Returns the status to exit with: the command's, or 128+N when signal N killed it. */
int cli_run_to_exit(char **argv, void (*at_exit)(pid_t pid, void *arg), void *arg);

/* The status for strata to exit with after CMD's wait status: its exit code, or 128+N after a line
 * "strata: CMD killed by signal N (SIGNAME)"; 1 for a status < 0 (no status). */
int cli_exit_status(const char *cmd, int status);
const char *cli_signal_name(int sig); /* "SIGTERM" */

int cmd_run(int argc, char **argv);
int cmd_options(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_maps(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_profile(int argc, char **argv);

#endif
