/*
 * diagcmd.h — what strata leaks and strata guard share: their common options, running the command
 * under libstrata-diag.so, and reading and symbolizing the dump it leaves.
 */
#ifndef STRATA_TOOLS_DIAGCMD_H
#define STRATA_TOOLS_DIAGCMD_H

#include <stdbool.h>
#include <stdio.h>

#include "diagrun.h"
#include "dump.h"
#include "symbols.h"

struct diag_cmd {
    const char *sub;    /* "leaks", "guard" */
    char **cmd;
    char *options;      /* for STRATA_OPTIONS, comma-separated */
    const char *output; /* -O FILE, or NULL: stderr */
    FILE *out;
    struct diag_run run;
    struct dump dump;
    struct symbols *sym;
    int status; /* to exit with: the command's */
};

/* Add name=value to the options for STRATA_OPTIONS. */
void diag_cmd_option(struct diag_cmd *c, const char *fmt, const char *value);
/* The options every diag command takes at argv[*i]: -o, -v, -O, --depth. True if it was one;
 * "--" or the first non-option sets c->cmd (then also true, and the caller stops). */
bool diag_arg_common(int argc, char **argv, int *i, struct diag_cmd *c);
/* After the loop: a command must have been given. */
void diag_args_done(struct diag_cmd *c);
/* A number in [min, max] for option `name`, or a usage error. */
long diag_arg_number(const char *sub, const char *name, const char *s, long min, long max);

/* Run the command in `mode`, read its dump and resolve its stacks. False (after a line on stderr)
 * when the command did not run or left no dump; c->status is set either way. */
bool diag_cmd_run(struct diag_cmd *c, const char *mode);
void diag_cmd_done(struct diag_cmd *c);

/* What stopped the program (the dump's error), with its stacks symbolized. */
void guard_explain(struct diag_cmd *c);

int cmd_leaks(int argc, char **argv);
int cmd_guard(int argc, char **argv);

#endif
