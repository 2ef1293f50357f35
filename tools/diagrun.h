/*
 * diagrun.h — run a command under libstrata-diag.so and find the dump it leaves (strata leaks,
 * guard and report).
 */
#ifndef STRATA_TOOLS_DIAGRUN_H
#define STRATA_TOOLS_DIAGRUN_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

struct diag_run {
    char dir[PATH_MAX];  /* a fresh temporary directory for the dumps */
    char dump[PATH_MAX]; /* DIR/diag.PID: the dump of the process started */
    pid_t pid;
    bool ran;    /* the command was exec'd (false: not found, not runnable) */
    int status;  /* its wait status */
};

/* libstrata-diag.so, as an absolute path (STRATA_DIAG_LIBRARY names another); exits with a
 * message when there is none. */
const char *diag_library(void);

/* Run argv with libstrata-diag.so preloaded and STRATA_OPTIONS += options (may be NULL or "")
 * and then diag=MODE,diag_file=DIR/diag; wait for it, SIGINT and SIGQUIT going to it alone.
 * Returns the status to exit with: the command's, 128+N (with a line) when signal N killed it,
 * 127 or 126 (with a line) when it could not be run, 1 when strata could not start it. */
int diag_run(char **argv, const char *mode, const char *options, struct diag_run *r);
/* The same with library `lib` preloaded; mode NULL: no diag= (libstrata.so's sampled guard).
 * quiet: no line when a signal killed the command. */
int diag_run_with(char **argv, const char *lib, const char *mode, const char *options, bool quiet,
                  struct diag_run *r);

/* Remove the temporary directory and the dumps in it. */
void diag_run_cleanup(struct diag_run *r);

#endif
